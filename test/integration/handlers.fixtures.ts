// The world the handler tests run the Lambda handlers against: the sd21 service deployed on the
// harness as the CDK stack and the operator leave it (ALB rule found by tag, target groups,
// Deployments, ScaledObjects, pods, the state table, the alert topic with an SQS queue
// subscribed), the units' request metrics in moto's CloudWatch, and the environment the
// functions read.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateSubnetCommand, CreateVpcCommand } from '@aws-sdk/client-ec2';
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DescribeRulesCommand,
  ModifyRuleCommand,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { createInsufficientCapacityEvent, createServiceRules } from '../../shared/src/twin/harness-objects.ts';
import type { ControllerState, UnitScaling } from '../../shared/src/core/types.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import type { FleetSpec } from '../../shared/src/spec/schema.ts';
import { awsClients, freshNamespace, harness, kubeConfig } from '../harness/clients.ts';
import { aPod, prepareUnit, readyPods } from './adapters.fixtures.ts';

export const LOOKUP = 'hwai-sd21-rule';
const KEDA = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };

export interface Deployed {
  fleet: FleetSpec;
  namespace: string;
  /** The first service's rule and target groups (fleet order): what the sd21 tests read. */
  ruleArn: string;
  targetGroupArns: string[];
  /** The functions' environment, as the stack sets it (plus KUBECONFIG and keys for the harness). */
  env: NodeJS.ProcessEnv;
  sqs: SQSClient;
  queueUrl: string;
}

/** The default fleet's sd21 as deployed: its rule by lookup, its ScaledObjects in `namespace`. */
export function sd21Fleet(namespace: string): FleetSpec {
  const base = loadFleetSpec();
  return {
    ...base,
    services: { sd21: { ...base.services['sd21']!, listenerRule: { lookup: LOOKUP } } },
    units: base.units.filter((u) => u.service === 'sd21').map((u) => ({ ...u, scaledObject: { namespace, name: u.name } })),
  };
}

/** Deploys sd21 with `ready` ready pods per unit and the rule at `weights` (in fleet order). */
export async function deploySd21(name: string, ready: number[], weights: number[]): Promise<Deployed> {
  const namespace = await freshNamespace(name);
  const fleet = sd21Fleet(namespace);
  const index = new Map(fleet.units.map((u, i) => [u.name, i]));
  return deployFleet(name, namespace, fleet, (u) => ready[index.get(u)!]!, (u) => weights[index.get(u)!]!);
}

/**
 * Deploys a fleet as the CDK stack and the operator leave it: one listener, a rule per service
 * tagged with its lookup, a target group per unit with `ready` healthy targets, a Deployment and
 * ScaledObject per unit with `ready` ready pods; the state table; the alert topic with an SQS
 * queue subscribed. Every service's listenerRule must be a lookup; scaledObjects in `namespace`.
 */
export async function deployFleet(name: string, namespace: string, fleet: FleetSpec, ready: (unit: string) => number, weight: (unit: string) => number): Promise<Deployed> {
  const { ec2, elbv2, dynamodb, sns } = awsClients({ direct: true });
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.2.0.0/16' }))).Vpc!.VpcId!;
  const subnets = await Promise.all(['us-east-1a', 'us-east-1b'].map((az, i) => ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.2.${i}.0/24`, AvailabilityZone: az }))));
  const alb = await elbv2.send(new CreateLoadBalancerCommand({ Name: `hwai-${name}`, Type: 'application', Subnets: subnets.map((s) => s.Subnet!.SubnetId!) }));
  const listener = await elbv2.send(
    new CreateListenerCommand({ LoadBalancerArn: alb.LoadBalancers![0]!.LoadBalancerArn!, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404' } }] }),
  );
  const listenerArn = listener.Listeners![0]!.ListenerArn!;
  const groupArn = new Map<string, string>();
  const deployUnit = async (unit: FleetSpec['units'][number], index: number) => {
    const tg = await elbv2.send(new CreateTargetGroupCommand({ Name: unit.targetGroup?.name ?? unit.name, Protocol: 'HTTP', Port: 8000, VpcId: vpcId, TargetType: 'ip' }));
    groupArn.set(unit.name, tg.TargetGroups![0]!.TargetGroupArn!);
    const targets = Array.from({ length: ready(unit.name) }, (_, k) => ({ Id: `10.2.${index % 250}.${k + 2}`, Port: 8000 }));
    if (targets.length > 0) await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: groupArn.get(unit.name)!, Targets: targets }));
    await prepareUnit(namespace, unit.name, ready(unit.name));
    await readyPods(namespace, unit.name, ready(unit.name));
  };
  // A few units at a time: a large fleet deploys in reasonable time without flooding the harness.
  for (let i = 0; i < fleet.units.length; i += 5) await Promise.all(fleet.units.slice(i, i + 5).map((u, k) => deployUnit(u, i + k)));
  const ruleArns = Object.values(await createServiceRules(elbv2, listenerArn, fleet, (u) => groupArn.get(u)!, weight));
  const table = `hwai-${name}`;
  await dynamodb.send(
    new CreateTableCommand({ TableName: table, KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
  );
  const topic = await sns.send(new CreateTopicCommand({ Name: `hwai-${name}-alerts` }));
  const h = harness();
  const sqs = new SQSClient({ endpoint: h.motoUrl, region: h.region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `hwai-${name}-oncall` }))).QueueUrl!;
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  await sns.send(new SubscribeCommand({ TopicArn: topic.TopicArn!, Protocol: 'sqs', Endpoint: queueArn }));

  const dir = mkdtempSync(join(tmpdir(), `hwai-${name}-`));
  const specFile = join(dir, 'fleet.yaml');
  writeFileSync(specFile, stringify(fleet));
  const kubeconfigFile = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigFile, kubeConfig('controller').exportConfig());
  const env = {
    HWAI_SPEC_FILE: specFile,
    HWAI_STATE_TABLE: table,
    HWAI_ALERT_TOPIC_ARN: topic.TopicArn!,
    HWAI_LISTENER_ARN: listenerArn,
    HWAI_AWS_ENDPOINT: h.awsEndpoint,
    KUBECONFIG: kubeconfigFile,
    AWS_REGION: h.region,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
  const first = fleet.units.filter((u) => u.service === Object.keys(fleet.services)[0]);
  return { fleet, namespace, ruleArn: ruleArns[0]!, targetGroupArns: first.map((u) => groupArn.get(u.name)!), env, sqs, queueUrl };
}

/** Pods the scheduler could not place: waiting for capacity. */
export async function unschedulablePods(namespace: string, unit: string, count: number): Promise<void> {
  const core = kubeConfig('admin').makeApiClient(CoreV1Api);
  for (let i = 0; i < count; i++) {
    const name = `${unit}-pending-${i}`;
    const created = await core.createNamespacedPod({ namespace, body: aPod(name, unit, unit) });
    const status = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/4 nodes are available: 4 Insufficient aws.amazon.com/neuron.' }] };
    await core.replaceNamespacedPodStatus({ namespace, name, body: { ...created, status } });
  }
}

/** Karpenter's event after EC2 refused a launch (reason InsufficientCapacityError); a NodeClaim is cluster-scoped, so its events live in `default`. */
export async function insufficientCapacityEvent(instanceType: string, at: Date): Promise<void> {
  await createInsufficientCapacityEvent(kubeConfig('admin').makeApiClient(CoreV1Api), `neuron-${at.getTime().toString(36)}`, instanceType, at);
}

/**
 * Per-minute request counts and latency of each unit, as the model servers' EMF lines leave
 * them in CloudWatch, for every minute from `fromMs` to `toMs`.
 */
export async function publishRequests(fleet: FleetSpec, rpm: number[], latencyMs: number, fromMs: number, toMs: number): Promise<void> {
  const { cloudwatch } = awsClients({ direct: true });
  const first = Math.floor(fromMs / 60_000) * 60_000;
  for (const [i, unit] of fleet.units.entries()) {
    const data = [];
    for (let minute = first; minute <= toMs; minute += 60_000) {
      const dimensions = [{ Name: 'service', Value: unit.service }, { Name: 'unit', Value: unit.name }];
      data.push({ MetricName: 'RequestCount', Value: rpm[i]!, Unit: 'Count' as const, Timestamp: new Date(minute + 1_000), Dimensions: dimensions });
      data.push({ MetricName: 'Latency', Value: latencyMs, Unit: 'Milliseconds' as const, Timestamp: new Date(minute + 1_000), Dimensions: dimensions });
    }
    for (let k = 0; k < data.length; k += 500) await cloudwatch.send(new PutMetricDataCommand({ Namespace: 'hw-agnostic-infer', MetricData: data.slice(k, k + 500) }));
  }
}

export async function liveWeights(d: Deployed): Promise<Record<string, number>> {
  const { elbv2 } = awsClients({ direct: true });
  const groups = (await elbv2.send(new DescribeRulesCommand({ RuleArns: [d.ruleArn] }))).Rules![0]!.Actions!.find((a) => a.Type === 'forward')!.ForwardConfig!.TargetGroups!;
  return Object.fromEntries(d.fleet.units.map((u, i) => [u.name, groups.find((g) => g.TargetGroupArn === d.targetGroupArns[i])?.Weight ?? 0]));
}

/** Someone edits the rule by hand (or another tool reverts it). */
export async function setLiveWeights(d: Deployed, weights: number[]): Promise<void> {
  const { elbv2 } = awsClients({ direct: true });
  await elbv2.send(new ModifyRuleCommand({ RuleArn: d.ruleArn, Actions: [{ Type: 'forward', ForwardConfig: { TargetGroups: d.targetGroupArns.map((arn, i) => ({ TargetGroupArn: arn, Weight: weights[i]! })) } }] }));
}

export async function liveScaling(d: Deployed): Promise<Record<string, UnitScaling>> {
  const custom = kubeConfig('admin', { direct: true }).makeApiClient(CustomObjectsApi);
  const out: Record<string, UnitScaling> = {};
  for (const u of d.fleet.units) {
    const so = await custom.getNamespacedCustomObject({ ...KEDA, namespace: d.namespace, name: u.name });
    out[u.name] = { minReplicas: so.spec.minReplicaCount, maxReplicas: so.spec.maxReplicaCount, targetRpm: Number(so.spec.triggers[0].metadata.targetMetricValue) };
  }
  return out;
}

/** Someone edits a ScaledObject's floor by hand (and its ceiling, when the floor is above it:
 * KEDA's admission refuses a floor above the ceiling). */
export async function setFloor(d: Deployed, unit: string, minReplicas: number): Promise<void> {
  const custom = kubeConfig('admin', { direct: true }).makeApiClient(CustomObjectsApi);
  const so = await custom.getNamespacedCustomObject({ ...KEDA, namespace: d.namespace, name: unit });
  const maxReplicaCount = Math.max(so.spec.maxReplicaCount, minReplicas);
  await custom.replaceNamespacedCustomObject({ ...KEDA, namespace: d.namespace, name: unit, body: { ...so, spec: { ...so.spec, minReplicaCount: minReplicas, maxReplicaCount } } });
}

export async function storedState(d: Deployed): Promise<{ state: ControllerState; version: number } | null> {
  const { dynamodb } = awsClients({ direct: true });
  const item = (await dynamodb.send(new GetItemCommand({ TableName: d.env.HWAI_STATE_TABLE!, Key: { pk: { S: 'controller-state' } }, ConsistentRead: true }))).Item;
  return item ? { state: JSON.parse(item['state']!.S!) as ControllerState, version: Number(item['version']!.N) } : null;
}

/** The SNS notifications that reached the on-call queue since the last call. */
export async function receivedAlerts(d: Deployed): Promise<Array<{ subject: string; message: string }>> {
  const out: Array<{ subject: string; message: string }> = [];
  for (;;) {
    const got = await d.sqs.send(new ReceiveMessageCommand({ QueueUrl: d.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    const messages = got.Messages ?? [];
    if (messages.length === 0) return out;
    for (const m of messages) {
      const envelope = JSON.parse(m.Body!) as { Subject: string; Message: string };
      out.push({ subject: envelope.Subject, message: envelope.Message });
    }
    await d.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: d.queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
  }
}
