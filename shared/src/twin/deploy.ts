import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateSubnetCommand, CreateVpcCommand } from '@aws-sdk/client-ec2';
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { ApiException, CustomObjectsApi } from '@kubernetes/client-node';
import { SCALED_OBJECTS } from '../adapters/kubernetes/scaled-object.ts';
import { FAMILY_LABEL } from '../adapters/kubernetes/karpenter-signals.ts';
import type { World } from '../sim/world.ts';
import type { FleetSpec, Unit } from '../spec/schema.ts';
import type { TwinClients } from './clients.ts';
import { createServiceRules } from './harness-objects.ts';

/**
 * The fleet as the CDK stack and the operator leave it, on the harness: per service an ALB
 * listener rule tagged for its lookup and forwarding to one IP target group per unit at the
 * world's first weights; per unit a Deployment and a KEDA ScaledObject at the world's first
 * settings; a NodePool per family; the state table and the alert topic. Then the environment
 * the controller Lambda reads (the contract in shared/src/control/config.ts).
 */

export const TWIN_STATE_TABLE = 'hwai-twin-state';
const NODEPOOL_PREFIX = 'twin-';
const ICE_REASON = 'InsufficientCapacityError';

export interface TwinDeployment {
  fleet: FleetSpec;
  namespace: string;
  listenerArn: string;
  ruleArns: Record<string, string>;
  /** Unit name → its target group's ARN. */
  targetGroupArns: Record<string, string>;
  /** The controller Lambda's environment, pointed at the harness. */
  env: NodeJS.ProcessEnv;
}

/** The NodePool Karpenter launches a family's nodes from. */
export function nodePoolOf(unit: Unit): string {
  return `${NODEPOOL_PREFIX}${unit.family}`;
}

/** A fresh namespace for the twin's units; everything the controller reads of them is in it. */
export function twinNamespace(): string {
  return `twin-${randomBytes(3).toString('hex')}`;
}

/** The fleet with each unit's ScaledObject in `namespace` and each service's rule found by lookup. */
export function twinFleet(fleet: FleetSpec, namespace: string): FleetSpec {
  return {
    ...fleet,
    services: Object.fromEntries(Object.entries(fleet.services).map(([name, s]) => [name, { ...s, listenerRule: { lookup: s.listenerRule?.lookup ?? `hwai-${name}-rule` } }])),
    units: fleet.units.map((u) => ({ ...u, scaledObject: { namespace, name: u.name } })),
  };
}

export async function deployTwin(clients: TwinClients, world: World, fleet: FleetSpec, namespace: string, policy: string): Promise<TwinDeployment> {
  const [aws, kubeconfig] = await Promise.all([deployAws(clients, world, fleet), deployCluster(clients, world, fleet, namespace)]);
  return {
    fleet,
    namespace,
    ...aws,
    env: {
      AWS_REGION: clients.endpoints.region,
      HWAI_STATE_TABLE: TWIN_STATE_TABLE,
      HWAI_ALERT_TOPIC_ARN: aws.topicArn,
      HWAI_LISTENER_ARN: aws.listenerArn,
      HWAI_AWS_ENDPOINT: clients.endpoints.awsEndpoint,
      HWAI_POLICY: policy,
      KUBECONFIG: kubeconfig,
    },
  };
}

async function deployAws(clients: TwinClients, world: World, fleet: FleetSpec) {
  const { ec2, elbv2, dynamodb, sns } = clients.aws;
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
  const subnets = await Promise.all(
    ['a', 'b'].map((az, i) => ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.0.${250 + i}.0/24`, AvailabilityZone: `${clients.endpoints.region}${az}` }))),
  );
  const alb = await elbv2.send(new CreateLoadBalancerCommand({ Name: 'hwai-twin', Type: 'application', Subnets: subnets.map((s) => s.Subnet!.SubnetId!) }));
  const targetGroupArns: Record<string, string> = {};
  for (const unit of fleet.units) {
    const tg = await elbv2.send(new CreateTargetGroupCommand({ Name: unit.targetGroup?.name ?? unit.name, Protocol: 'HTTP', Port: 8000, VpcId: vpcId, TargetType: 'ip' }));
    targetGroupArns[unit.name] = tg.TargetGroups![0]!.TargetGroupArn!;
  }
  const listener = await elbv2.send(
    new CreateListenerCommand({ LoadBalancerArn: alb.LoadBalancers![0]!.LoadBalancerArn!, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404' } }] }),
  );
  const listenerArn = listener.Listeners![0]!.ListenerArn!;
  const ruleArns = await createServiceRules(elbv2, listenerArn, fleet, (u) => targetGroupArns[u]!, (u) => world.units.get(u)!.weight);
  await dynamodb.send(
    new CreateTableCommand({
      TableName: TWIN_STATE_TABLE,
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  const topicArn = (await sns.send(new CreateTopicCommand({ Name: 'hwai-twin-alerts' }))).TopicArn!;
  return { listenerArn, ruleArns, targetGroupArns, topicArn };
}

/** Returns the path of the controller's kubeconfig (its restricted token, through the fault injector). */
async function deployCluster(clients: TwinClients, world: World, fleet: FleetSpec, namespace: string): Promise<string> {
  const { core, apps, custom } = clients.kube;
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'hwai.dev/twin': 'true' } } } });
  // No controller-manager runs on the harness to create the namespace's ServiceAccount.
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'default' } } });
  // The twin is the only Karpenter: refusals left by others would read as the twin's signals.
  const stale = await core.listEventForAllNamespaces({ fieldSelector: `reason=${ICE_REASON}` });
  for (const e of stale.items) await core.deleteNamespacedEvent({ namespace: e.metadata.namespace!, name: e.metadata.name! });

  for (const family of new Set(fleet.units.map((u) => u.family))) {
    const name = `${NODEPOOL_PREFIX}${family}`;
    await ignoreConflict(() =>
      custom.createClusterCustomObject({
        group: 'karpenter.sh',
        version: 'v1',
        plural: 'nodepools',
        body: {
          apiVersion: 'karpenter.sh/v1',
          kind: 'NodePool',
          metadata: { name },
          spec: {
            template: {
              metadata: { labels: { [FAMILY_LABEL]: family } },
              spec: { nodeClassRef: { group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: 'default' }, requirements: [{ key: FAMILY_LABEL, operator: 'In', values: [family] }] },
            },
          },
        },
      }),
    );
  }
  for (const unit of fleet.units) {
    const labels = { app: unit.name };
    const scaling = world.units.get(unit.name)!.scaling;
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: unit.name },
        spec: { replicas: 0, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'server', image: `hwai/${unit.service}:${unit.framework}` }] } } },
      },
    });
    await custom.createNamespacedCustomObject({
      ...SCALED_OBJECTS,
      namespace,
      body: {
        apiVersion: 'keda.sh/v1alpha1',
        kind: 'ScaledObject',
        metadata: { name: unit.name },
        spec: {
          scaleTargetRef: { name: unit.name },
          minReplicaCount: scaling.minReplicas,
          maxReplicaCount: scaling.maxReplicas,
          triggers: [
            {
              type: 'aws-cloudwatch',
              metadata: {
                namespace: fleet.services[unit.service]!.metricNamespace,
                metricName: 'RequestCount',
                dimensionName: 'unit',
                dimensionValue: unit.name,
                metricStat: 'Sum',
                targetMetricValue: String(scaling.targetRpm),
                awsRegion: clients.endpoints.region,
              },
            },
          ],
        },
      },
    });
  }
  await untilServed(clients);
  const dir = mkdtempSync(join(tmpdir(), 'hwai-twin-'));
  const file = join(dir, 'kubeconfig');
  writeFileSync(file, clients.controllerKubeConfig.exportConfig(), { mode: 0o600 });
  return file;
}

/**
 * A just-started apiserver answers 429 "storage is (re)initializing" for a new CRD's objects for
 * a moment after it is Established; the first tick must not read that as missing signals.
 */
async function untilServed(clients: TwinClients, timeoutMs = 60_000): Promise<void> {
  const custom = clients.controllerKubeConfig.makeApiClient(CustomObjectsApi);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await Promise.all(['nodeclaims', 'nodepools'].map((plural) => custom.listClusterCustomObject({ group: 'karpenter.sh', version: 'v1', plural })));
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`twin: Karpenter's objects not served ${timeoutMs / 1000} s after the start`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function ignoreConflict(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (error) {
    if (!(error instanceof ApiException && error.code === 409)) throw error;
  }
}
