// Fixtures the adapter tests share: a unit's Deployment, ScaledObject and pods on the harness
// apiserver, written by the admin as an operator, the kubelet and the scheduler would; and the
// sd21 service deployed on moto and the apiserver as the CDK stack and the operator leave it.
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateSubnetCommand, CreateVpcCommand } from '@aws-sdk/client-ec2';
import { AddTagsCommand, CreateListenerCommand, CreateLoadBalancerCommand, CreateRuleCommand, CreateTargetGroupCommand, RegisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { RULE_TAG } from '../../shared/src/adapters/aws/elbv2-router.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import type { FleetSpec } from '../../shared/src/spec/schema.ts';
import { awsClients, freshNamespace, kubeConfig } from '../harness/clients.ts';

const KEDA = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };

/** A unit's Deployment and its ScaledObject as an operator writes them (KEDA aws-cloudwatch trigger). */
export async function prepareUnit(namespace: string, name: string, replicas = 3): Promise<void> {
  const labels = { app: name };
  const admin = kubeConfig('admin');
  await admin.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace,
    body: { metadata: { name }, spec: { replicas, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'server', image: 'public.ecr.aws/hwai/sd21:test' }] } } } },
  });
  await admin.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    ...KEDA,
    namespace,
    body: {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name, labels: { 'team.example.com/owner': 'platform' } },
      spec: {
        scaleTargetRef: { name },
        minReplicaCount: 1,
        maxReplicaCount: 20,
        cooldownPeriod: 300,
        triggers: [
          {
            type: 'aws-cloudwatch',
            metadata: { namespace: 'hw-agnostic-infer', metricName: 'requests', dimensionName: 'unit', dimensionValue: name, targetMetricValue: '105', awsRegion: 'us-east-1' },
          },
        ],
      },
    },
  });
}

export function aPod(name: string, app: string, owner: string): V1Pod {
  return { metadata: { name, labels: { app }, annotations: { 'hwai.dev/owner': owner } }, spec: { containers: [{ name: 'server', image: 'public.ecr.aws/hwai/sd21:test' }] } };
}

/** `ready` pods of a unit's Deployment, Running and Ready on a node. */
export async function readyPods(namespace: string, unit: string, ready: number): Promise<void> {
  const core = kubeConfig('admin').makeApiClient(CoreV1Api);
  for (let i = 0; i < ready; i++) {
    const name = `${unit}-${i}`;
    const created = await core.createNamespacedPod({ namespace, body: aPod(name, unit, unit) });
    const status = { phase: 'Running', conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True' }] };
    await core.replaceNamespacedPodStatus({ namespace, name, body: { ...created, status } });
  }
}

/** The `hwai:rule` tag value of the sd21 rule, as the stack tags it. */
export const SD21_LOOKUP = 'hwai-sd21-rule';

export interface DeployedSd21 {
  /** The default fleet's sd21, its rule by lookup, its ScaledObjects in `namespace`. */
  fleet: FleetSpec;
  namespace: string;
  listenerArn: string;
  ruleArn: string;
  targetGroupArns: string[];
  /** The state table (pk `controller-state`, `controller-lease`) and the alert topic. */
  table: string;
  topicArn: string;
}

/**
 * sd21 deployed as the stack and the operator leave it: an ALB listener whose rule (tagged
 * `hwai:rule`) forwards to the five units' IP target groups at `weights` (fleet order), `ready`
 * registered targets and ready pods per unit with their Deployments and ScaledObjects, the state
 * table and the alert topic. `name` keeps resources of several calls in one file apart; `octet`
 * picks the VPC 10.<octet>.0.0/16.
 */
export async function deploySd21(name: string, ready: number[], weights: number[], octet = 1): Promise<DeployedSd21> {
  const namespace = await freshNamespace(name);
  const base = loadFleetSpec();
  const fleet: FleetSpec = {
    ...base,
    services: { sd21: { ...base.services['sd21']!, listenerRule: { lookup: SD21_LOOKUP } } },
    units: base.units.filter((u) => u.service === 'sd21').map((u) => ({ ...u, scaledObject: { namespace, name: u.name } })),
  };
  const { ec2, elbv2, dynamodb, sns } = awsClients({ direct: true });
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: `10.${octet}.0.0/16` }))).Vpc!.VpcId!;
  const subnets = await Promise.all(['us-east-1a', 'us-east-1b'].map((az, i) => ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.${octet}.${i}.0/24`, AvailabilityZone: az }))));
  const alb = await elbv2.send(new CreateLoadBalancerCommand({ Name: `hwai-${name}`, Type: 'application', Subnets: subnets.map((s) => s.Subnet!.SubnetId!) }));
  const targetGroupArns: string[] = [];
  for (const [i, unit] of fleet.units.entries()) {
    const tg = await elbv2.send(new CreateTargetGroupCommand({ Name: unit.targetGroup!.name!, Protocol: 'HTTP', Port: 8000, VpcId: vpcId, TargetType: 'ip' }));
    targetGroupArns.push(tg.TargetGroups![0]!.TargetGroupArn!);
    const targets = Array.from({ length: ready[i]! }, (_, k) => ({ Id: `10.${octet}.${i}.${10 + k}`, Port: 8000 }));
    if (targets.length > 0) await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: targetGroupArns[i]!, Targets: targets }));
    await prepareUnit(namespace, unit.name, ready[i]!);
    await readyPods(namespace, unit.name, ready[i]!);
  }
  const listener = await elbv2.send(
    new CreateListenerCommand({ LoadBalancerArn: alb.LoadBalancers![0]!.LoadBalancerArn!, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404' } }] }),
  );
  const listenerArn = listener.Listeners![0]!.ListenerArn!;
  const rule = await elbv2.send(
    new CreateRuleCommand({
      ListenerArn: listenerArn,
      Priority: 10,
      Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/sd21/*'] } }],
      Actions: [{ Type: 'forward', ForwardConfig: { TargetGroups: targetGroupArns.map((arn, i) => ({ TargetGroupArn: arn, Weight: weights[i]! })) } }],
    }),
  );
  const ruleArn = rule.Rules![0]!.RuleArn!;
  await elbv2.send(new AddTagsCommand({ ResourceArns: [ruleArn], Tags: [{ Key: RULE_TAG, Value: SD21_LOOKUP }] }));
  const table = `hwai-${name}`;
  await dynamodb.send(
    new CreateTableCommand({ TableName: table, KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
  );
  const topic = await sns.send(new CreateTopicCommand({ Name: `hwai-${name}-alerts` }));
  return { fleet, namespace, listenerArn, ruleArn, targetGroupArns, table, topicArn: topic.TopicArn! };
}
