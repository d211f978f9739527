// Whole ticks through the production ports (portsFromEnv) on the real parts: moto's ALB,
// CloudWatch, DynamoDB and SNS, and the apiserver with KEDA's CRDs as the restricted controller.
// Writes are counted at the fault injector, where every call passes.
import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeRulesCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { portsFromEnv, PortsConfigError, type ProductionPortsConfig } from '../../shared/src/adapters/production-ports.ts';
import type { Ports } from '../../shared/src/reconcile/ports.ts';
import { runTick } from '../../shared/src/reconcile/tick.ts';
import type { FleetSpec } from '../../shared/src/spec/schema.ts';
import { awsClients, faults, harness, kubeConfig } from '../harness/clients.ts';
import { deploySd21 } from './adapters.fixtures.ts';
import { publishRequests } from './handlers.fixtures.ts';

let fleet: FleetSpec;
let config: ProductionPortsConfig;
let ruleArn: string;
let table: string;

beforeAll(async () => {
  // Prepare: sd21 as the stack and the operator leave it, two ready pods and targets per unit,
  // its rule split evenly (not what static-cost wants).
  const world = await deploySd21('tick', [2, 2, 2, 2, 2], [20, 20, 20, 20, 20]);
  ({ fleet, ruleArn, table } = world);
  // The model servers' counters: 40 requests a minute on each unit for the last 40 minutes.
  await publishRequests(fleet, fleet.units.map(() => 40), 500, Date.now() - 40 * 60_000, Date.now());
  config = { stateTable: table, alertTopicArn: world.topicArn, listenerArn: world.listenerArn, awsEndpoint: harness().awsEndpoint };
});

/** One controller Lambda container: its own SDK clients and cluster client. */
function aController(): { ports: Ports; stateWrites: () => number } {
  const clients = awsClients();
  let stateWrites = 0;
  clients.dynamodb.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { Item?: Record<string, { S?: string }> };
      if (input.Item?.['pk']?.S === 'controller-state') stateWrites++;
      return next(args);
    },
    { step: 'build' },
  );
  return { ports: portsFromEnv(config, clients, kubeConfig('controller'), fleet), stateWrites: () => stateWrites };
}

const WRITES = /ModifyRule|ModifyListener|^kube:(PATCH|PUT|POST|DELETE)|PutItem|UpdateItem|DeleteItem|Publish/;

async function writeCalls(): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await faults.counts()).filter(([op]) => WRITES.test(op)));
}

async function storedItem(dynamodb: DynamoDBClient, pk: string) {
  return (await dynamodb.send(new GetItemCommand({ TableName: table, Key: { pk: { S: pk } }, ConsistentRead: true }))).Item;
}

describe('two controller ticks started together', () => {
  it('exactly one acts; the other changes nothing on the ALB, KEDA or the state; the next tick writes nothing', async () => {
    // Prepare: two Lambda containers, the same world.
    const a = aController();
    const b = aController();
    await faults.reset();

    // Act
    const results = await Promise.all([runTick(fleet, a.ports, { policy: 'static-cost' }), runTick(fleet, b.ports, { policy: 'static-cost' })]);

    // Assess: one applied; the other found the lease held or the state moved, and applied nothing.
    const outcomes = results.map((r) => r.outcome);
    const winner = results.find((r) => r.outcome === 'applied')!;
    const loser = results.find((r) => r !== winner)!;
    expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
    expect(['lease-held', 'state-moved']).toContain(loser.outcome);
    expect(winner.errors).toEqual([]);
    expect(winner.applied.weights).toEqual(['sd21']);
    expect(loser.applied).toEqual({ weights: [], scaling: [] });
    // At the fault injector: one ModifyRule, the winner's ScaledObject patches only, one state
    // write (the losing container wrote no state), the lease given back.
    const writes = await writeCalls();
    expect(writes['elasticloadbalancing:ModifyRule']).toBe(1);
    const patches = Object.entries(writes).filter(([op]) => op.startsWith('kube:PATCH /apis/keda.sh/'));
    expect(patches.reduce((n, [, c]) => n + c, 0)).toBe(winner.applied.scaling.length);
    expect([a.stateWrites(), b.stateWrites()].sort()).toEqual([0, 1]);
    expect(writes['sns:Publish'] ?? 0).toBe(winner.alerts.length > 0 ? 1 : 0);
    const { dynamodb, elbv2 } = awsClients({ direct: true });
    expect((await storedItem(dynamodb, 'controller-state'))?.['version']).toEqual({ N: '1' });
    expect(await storedItem(dynamodb, 'controller-lease')).toBeUndefined();
    const live = (await elbv2.send(new DescribeRulesCommand({ RuleArns: [ruleArn] }))).Rules![0]!.Actions![0]!.ForwardConfig!.TargetGroups!.map((g) => g.Weight);
    expect(live).toEqual(fleet.units.map((u) => winner.decision.services[0]!.weights[u.name]));

    // Act: ticks in the same container, the world unchanged, until the shift has settled (the
    // floors raised for it come down once it is done), then one more.
    for (let i = 0; i < 5 && (await runTick(fleet, a.ports, { policy: 'static-cost' })).outcome !== 'unchanged'; i++);
    await faults.reset();
    const next = await runTick(fleet, a.ports, { policy: 'static-cost' });

    // Assess: nothing to change, so no write of any kind, not even the lease; and the reads of a
    // steady tick for one service of five units: 13 calls, 5 of them target health (one per group).
    expect(next.outcome, JSON.stringify({ plan: next.plan, reasons: next.decision.services[0]!.reasons })).toBe('unchanged');
    expect(next.errors).toEqual([]);
    expect(await writeCalls()).toEqual({});
    const namespace = fleet.units[0]!.scaledObject!.namespace;
    expect(await faults.counts()).toEqual({
      'dynamodb:GetItem': 1,
      'monitoring:GetMetricData': 1,
      'ec2:DescribeCapacityReservations': 1,
      'elasticloadbalancing:DescribeRules': 1,
      'elasticloadbalancing:DescribeTargetHealth': 5,
      'kube:GET /api/v1/events': 1,
      'kube:GET /apis/karpenter.sh/v1/nodeclaims': 1,
      [`kube:GET /apis/keda.sh/v1alpha1/namespaces/${namespace}/scaledobjects`]: 1,
      [`kube:GET /apis/apps/v1/namespaces/${namespace}/deployments`]: 1,
      [`kube:GET /api/v1/namespaces/${namespace}/pods`]: 1,
    });
  });

  it('the ScaledObjects hold what the winner decided', async () => {
    const custom = kubeConfig('admin', { direct: true }).makeApiClient(CustomObjectsApi);
    const { ports } = aController();
    const result = await runTick(fleet, ports, { policy: 'static-cost', dryRun: true });

    const live = await ports.autoscaler.readScaling(fleet.units);
    for (const u of fleet.units) expect(live[u.name]).toEqual(result.decision.services[0]!.scaling[u.name]);
    const so = await custom.getNamespacedCustomObject({ group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects', namespace: fleet.units[0]!.scaledObject!.namespace, name: fleet.units[0]!.name });
    expect(so.spec.triggers[0].metadata.metricName).toBe('requests');
  });
});

describe('portsFromEnv', () => {
  it('refuses a fleet that looks rules up when HWAI_LISTENER_ARN is not set, naming the services', () => {
    const { listenerArn: _, ...noListener } = config;

    expect(() => portsFromEnv(noListener, awsClients(), kubeConfig('controller'), fleet)).toThrow(PortsConfigError);
    expect(() => portsFromEnv(noListener, awsClients(), kubeConfig('controller'), fleet)).toThrow('HWAI_LISTENER_ARN: required, since services sd21 name their listener rule by lookup');
  });
});
