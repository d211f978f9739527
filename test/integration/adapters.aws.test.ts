// The AWS adapters against moto, through the real SDK clients and the fault injector: what the
// controller reads and writes on the ALB, CloudWatch, DynamoDB, SNS and EC2.
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateSubnetCommand, CreateVpcCommand } from '@aws-sdk/client-ec2';
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DescribeListenersCommand,
  DescribeRulesCommand,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { beforeAll, describe, expect, it } from 'vitest';
import { CloudWatchMetrics } from '../../shared/src/adapters/aws/cloudwatch-metrics.ts';
import { DynamoDbStateStore } from '../../shared/src/adapters/aws/dynamodb-state.ts';
import { Ec2CapacitySignals } from '../../shared/src/adapters/aws/ec2-capacity.ts';
import { Elbv2TrafficRouter, ListenerRuleNotFoundError, UnresolvedListenerRuleError } from '../../shared/src/adapters/aws/elbv2-router.ts';
import { SnsNotifier } from '../../shared/src/adapters/aws/sns-notifier.ts';
import { combineSignals } from '../../shared/src/adapters/signals.ts';
import { initialControllerState } from '../../shared/src/core/state.ts';
import type { Alert, UnitScaling } from '../../shared/src/core/types.ts';
import type { Ports } from '../../shared/src/reconcile/ports.ts';
import { runTick } from '../../shared/src/reconcile/tick.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import type { FleetSpec } from '../../shared/src/spec/schema.ts';
import { awsClients, ec2Stub, faults } from '../harness/clients.ts';

/** The default fleet's sd21 service, its rule named by ARN (the deployed form of the spec). */
function sd21Fleet(listenerRule: FleetSpec['services'][string]['listenerRule']): FleetSpec {
  const spec = loadFleetSpec();
  return { ...spec, services: { sd21: { ...spec.services['sd21']!, listenerRule } }, units: spec.units.filter((u) => u.service === 'sd21') };
}

const SEED = sd21Fleet(undefined);
const UNIT_NAMES = SEED.units.map((u) => u.name);
/** Registered targets per unit (IP targets: moto reports them healthy); g5-cuda has none yet. */
const TARGETS = [2, 1, 3, 1, 0];
const PATH_CONDITION = [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/sd21/*'] } }];

interface Alb {
  albArn: string;
  targetGroupArns: string[];
}

let alb: Alb;
let nextPort = 8080;

beforeAll(async () => {
  // An ALB and the stack's five IP target groups, named as the default fleet names them.
  const { ec2, elbv2 } = awsClients();
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
  const subnets = await Promise.all(
    ['us-east-1a', 'us-east-1b'].map((az, i) => ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.0.${i}.0/24`, AvailabilityZone: az }))),
  );
  const created = await elbv2.send(new CreateLoadBalancerCommand({ Name: 'hwai', Type: 'application', Subnets: subnets.map((s) => s.Subnet!.SubnetId!) }));
  const targetGroupArns: string[] = [];
  for (const [i, unit] of SEED.units.entries()) {
    const tg = await elbv2.send(new CreateTargetGroupCommand({ Name: unit.targetGroup!.name!, Protocol: 'HTTP', Port: 8000, VpcId: vpcId, TargetType: 'ip' }));
    const arn = tg.TargetGroups![0]!.TargetGroupArn!;
    targetGroupArns.push(arn);
    const targets = Array.from({ length: TARGETS[i]! }, (_, k) => ({ Id: `10.0.${i}.${10 + k}`, Port: 8000 }));
    if (targets.length > 0) await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: targets }));
  }
  alb = { albArn: created.LoadBalancers![0]!.LoadBalancerArn!, targetGroupArns };
});

const forward = (weights: number[]) => [
  { Type: 'forward' as const, ForwardConfig: { TargetGroups: alb.targetGroupArns.map((arn, i) => ({ TargetGroupArn: arn, Weight: weights[i]! })) } },
];

/** A fresh listener (its own port) with the sd21 rule forwarding at `weights`. */
async function sd21Rule(weights: number[]): Promise<{ ruleArn: string; listenerArn: string }> {
  const { elbv2 } = awsClients();
  const listener = await elbv2.send(
    new CreateListenerCommand({ LoadBalancerArn: alb.albArn, Protocol: 'HTTP', Port: nextPort++, DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404' } }] }),
  );
  const listenerArn = listener.Listeners![0]!.ListenerArn!;
  const rule = await elbv2.send(new CreateRuleCommand({ ListenerArn: listenerArn, Priority: 10, Conditions: PATH_CONDITION, Actions: forward(weights) }));
  return { ruleArn: rule.Rules![0]!.RuleArn!, listenerArn };
}

const byUnit = (values: number[]) => Object.fromEntries(UNIT_NAMES.map((u, i) => [u, values[i]!]));

describe('ELBv2 traffic router', () => {
  it('reads the live forward weights and each unit’s target health from the rule', async () => {
    // Prepare: the rule at the seed's cost-optimized weights.
    const { ruleArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const fleet = sd21Fleet({ ruleArn });
    const router = new Elbv2TrafficRouter(awsClients().elbv2, fleet.services);

    // Act
    const route = await router.readRoute('sd21', fleet.units);

    // Assess: weights per unit, and a unit with no registered targets reads 0 of 0.
    expect(route.weights).toEqual(byUnit([40, 20, 15, 10, 15]));
    expect(route.health).toEqual(Object.fromEntries(UNIT_NAMES.map((u, i) => [u, { healthy: TARGETS[i], registered: TARGETS[i] }])));
  });

  it('writes the full forward config, reads it back, and leaves the rule’s conditions as they were', async () => {
    // Prepare: a rule that forwards to only two of the five units.
    const { elbv2 } = awsClients();
    const { ruleArn } = await sd21Rule([60, 40, 0, 0, 0]);
    const rule = await elbv2.send(new DescribeRulesCommand({ RuleArns: [ruleArn] }));
    const before = rule.Rules![0]!;
    const router = new Elbv2TrafficRouter(elbv2, sd21Fleet({ ruleArn }).services);

    // Act: a failover's weights, with sd21-g5-cuda left out of the map (it counts as 0).
    const { 'sd21-g5-cuda': _, ...weights } = byUnit([0, 35, 25, 40, 0]);
    await router.setWeights('sd21', SEED.units, weights);

    // Assess: all five target groups are in the rule at the written weights; conditions untouched.
    expect((await router.readRoute('sd21', SEED.units)).weights).toEqual(byUnit([0, 35, 25, 40, 0]));
    const after = (await elbv2.send(new DescribeRulesCommand({ RuleArns: [ruleArn] }))).Rules![0]!;
    expect(after.Actions![0]!.ForwardConfig!.TargetGroups).toHaveLength(5);
    expect(after.Conditions).toEqual(before.Conditions);
    expect(after.Priority).toBe(before.Priority);
  });

  it('writes a listener’s default action with ModifyListener when the spec names only the listener', async () => {
    // Prepare: a listener whose default action forwards to the five units.
    const { elbv2 } = awsClients();
    const listener = await elbv2.send(new CreateListenerCommand({ LoadBalancerArn: alb.albArn, Protocol: 'HTTP', Port: nextPort++, DefaultActions: forward([40, 20, 15, 10, 15]) }));
    const listenerArn = listener.Listeners![0]!.ListenerArn!;
    const router = new Elbv2TrafficRouter(elbv2, sd21Fleet({ listenerArn }).services);
    await faults.reset();

    // Act
    const before = await router.readRoute('sd21', SEED.units);
    await router.setWeights('sd21', SEED.units, byUnit([0, 50, 50, 0, 0]));

    // Assess
    expect(before.weights).toEqual(byUnit([40, 20, 15, 10, 15]));
    const live = (await elbv2.send(new DescribeListenersCommand({ ListenerArns: [listenerArn] }))).Listeners![0]!.DefaultActions![0]!;
    expect(live.ForwardConfig!.TargetGroups!.map((g) => g.Weight)).toEqual([0, 50, 50, 0, 0]);
    const counts = await faults.counts();
    expect(counts['elasticloadbalancing:ModifyListener']).toBe(1);
    expect(counts['elasticloadbalancing:ModifyRule']).toBeUndefined();
  });

  it('resolves target group names once, then reuses them', async () => {
    // Prepare
    const { ruleArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const router = new Elbv2TrafficRouter(awsClients().elbv2, sd21Fleet({ ruleArn }).services);
    await faults.reset();

    // Act: three reads, as three ticks would.
    for (let i = 0; i < 3; i++) await router.readRoute('sd21', SEED.units);

    // Assess
    expect((await faults.counts())['elasticloadbalancing:DescribeTargetGroups']).toBe(1);
  });

  it('fails with ListenerRuleNotFoundError, carrying the SDK error, when the rule is gone', async () => {
    // Prepare: a rule ARN of the right shape that moto has never seen.
    const { ruleArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const missing = ruleArn.replace(/\/[0-9a-f]+$/, '/0000000000000000');
    const router = new Elbv2TrafficRouter(awsClients().elbv2, sd21Fleet({ ruleArn: missing }).services);

    // Act
    const error = await router.readRoute('sd21', SEED.units).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ListenerRuleNotFoundError);
    expect((error as Error).message).toContain(missing);
    expect((error as Error).cause).toMatchObject({ name: 'RuleNotFoundException' });
  });

  it('refuses a deploy-time lookup it cannot resolve, without calling AWS', async () => {
    // Prepare: the default fleet as written, before the stack resolves its lookups.
    const router = new Elbv2TrafficRouter(awsClients().elbv2, sd21Fleet({ lookup: 'hwai-sd21-rule' }).services);
    await faults.reset();

    // Act / Assess
    await expect(router.readRoute('sd21', SEED.units)).rejects.toThrow(UnresolvedListenerRuleError);
    await expect(router.setWeights('sd21', SEED.units, byUnit([1, 1, 1, 1, 1]))).rejects.toThrow(/hwai-sd21-rule/);
    expect(await faults.calls()).toEqual([]);
  });

  it('surfaces ModifyRule throttling as an error once the SDK retries are spent, leaving the weights as they were', async () => {
    // Prepare: ELBv2 throttles more ModifyRule calls than the client attempts.
    const { ruleArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const router = new Elbv2TrafficRouter(awsClients({ maxAttempts: 2 }).elbv2, sd21Fleet({ ruleArn }).services);
    await faults.aws({ operation: 'ModifyRule', fault: { kind: 'throttle' }, times: 5 });

    // Act
    const error = await router.setWeights('sd21', SEED.units, byUnit([0, 35, 25, 20, 20])).catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({ name: 'Throttling', $metadata: { attempts: 2 } });
    expect((await faults.counts())['elasticloadbalancing:ModifyRule']).toBe(2);
    await faults.reset();
    expect((await router.readRoute('sd21', SEED.units)).weights).toEqual(byUnit([40, 20, 15, 10, 15]));
  });
});

describe('a tick through the AWS adapters', () => {
  it('writes the weights once, and a tick that changes nothing makes no ModifyRule call', async () => {
    // Prepare: the rule at weights static-cost will not keep; pods ready in every unit; state
    // in DynamoDB; alerts to SNS.
    await faults.reset();
    const clients = awsClients();
    const { ruleArn } = await sd21Rule([20, 20, 20, 20, 20]);
    const fleet = sd21Fleet({ ruleArn });
    await clients.dynamodb.send(stateTable('hwai-tick'));
    const topic = await clients.sns.send(new CreateTopicCommand({ Name: 'hwai-tick' }));
    const scaling: Record<string, UnitScaling> = {};
    const ports: Ports = {
      metrics: new CloudWatchMetrics(clients.cloudwatch, fleet.services, { latencyStat: 'Maximum' }),
      signals: new Ec2CapacitySignals(clients.ec2),
      cluster: { readPods: async (units) => Object.fromEntries(units.map((u) => [u.name, { readyPods: 2, desiredPods: 2, pendingPods: 0, oldestPendingSeconds: 0 }])) },
      router: new Elbv2TrafficRouter(clients.elbv2, fleet.services),
      autoscaler: {
        readScaling: async (units) => Object.fromEntries(units.filter((u) => scaling[u.name]).map((u) => [u.name, scaling[u.name]!])),
        setScaling: async (unit, s) => void (scaling[unit.name] = s),
      },
      store: new DynamoDbStateStore(clients.dynamodb, { tableName: 'hwai-tick' }),
      notifier: new SnsNotifier(clients.sns, topic.TopicArn!),
      clock: { now: () => Date.UTC(2030, 0, 1, 12, 0) },
    };
    const first = await runTick(fleet, ports, { policy: 'static-cost' });
    await faults.reset();

    // Act
    const second = await runTick(fleet, ports, { policy: 'static-cost' });

    // Assess: the first tick moved the weights; the second observed the rule and wrote nothing.
    expect(first.errors).toEqual([]);
    expect(first.applied.weights).toEqual(['sd21']);
    expect(first.recorded).toBe(true);
    expect(second.applied.weights).toEqual([]);
    expect(second.recorded).toBe(true);
    const counts = await faults.counts();
    expect(counts['elasticloadbalancing:DescribeRules']).toBeGreaterThan(0);
    expect(counts['elasticloadbalancing:ModifyRule']).toBeUndefined();
  });
});

describe('CloudWatch metrics', () => {
  it('reads every unit’s rpm and latency in one GetMetricData call, and null where nothing was published', async () => {
    // Prepare: EMF-shaped datapoints for two units in the last full minute, nothing for the rest.
    const { cloudwatch } = awsClients();
    const at = Math.floor(Date.now() / 60_000) * 60_000 + 5_000;
    const minute = at - 5_000 - 60_000;
    const publish = (unit: string, requests: number[], latencyMs: number[]) =>
      cloudwatch.send(
        new PutMetricDataCommand({
          Namespace: 'hw-agnostic-infer',
          MetricData: [
            ...requests.map((v, i) => ({ MetricName: 'RequestCount', Value: v, Unit: 'Count' as const, Timestamp: new Date(minute + i * 1000) })),
            ...latencyMs.map((v, i) => ({ MetricName: 'Latency', Value: v, Unit: 'Milliseconds' as const, Timestamp: new Date(minute + i * 1000) })),
          ].map((d) => ({ ...d, Dimensions: [{ Name: 'service', Value: 'sd21' }, { Name: 'unit', Value: unit }] })),
        }),
      );
    await publish('sd21-inf2-neuron', [40, 30, 35], [600, 640, 710]);
    await publish('sd21-g5-triton', [20, 22], [650, 900]);
    // Outside the minute: a datapoint of the minute still in progress must not count.
    await cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: 'hw-agnostic-infer',
        MetricData: [{ MetricName: 'RequestCount', Value: 99, Unit: 'Count', Timestamp: new Date(at - 1_000), Dimensions: [{ Name: 'service', Value: 'sd21' }, { Name: 'unit', Value: 'sd21-g6-triton' }] }],
      }),
    );
    // moto computes no percentiles (p99 reads as an error): this harness reads the Maximum.
    const metrics = new CloudWatchMetrics(cloudwatch, SEED.services, { latencyStat: 'Maximum' });
    await faults.reset();

    // Act
    const read = await metrics.readUnitMetrics(SEED.units, at);

    // Assess
    expect(read).toEqual({
      'sd21-inf2-neuron': { rpm: 105, p99Seconds: 0.71 },
      'sd21-trn1-neuron': { rpm: null, p99Seconds: null },
      'sd21-g5-triton': { rpm: 42, p99Seconds: 0.9 },
      'sd21-g6-triton': { rpm: null, p99Seconds: null },
      'sd21-g5-cuda': { rpm: null, p99Seconds: null },
    });
    expect(await faults.counts()).toEqual({ 'monitoring:GetMetricData': 1 });
  });
});

function stateTable(name: string) {
  return new CreateTableCommand({
    TableName: name,
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  });
}

describe('DynamoDB state store', () => {
  it('starts empty, and of two saves from the same version exactly one wins', async () => {
    // Prepare: an empty table; two ticks that both loaded the first saved state.
    const { dynamodb } = awsClients();
    await dynamodb.send(stateTable('hwai-state'));
    const store = new DynamoDbStateStore(dynamodb, { tableName: 'hwai-state' });
    const empty = await store.load();
    expect(empty).toEqual({ state: initialControllerState(), version: null });
    expect(await store.save({ version: 1, services: {} }, null)).toBe(true);
    const loaded = await store.load();

    // Act: both write from the version they read, and a late first-ever save.
    const results = await Promise.all([
      store.save({ version: 2, services: { sd21: { ...aServiceState(), mode: 'capacity' } } }, loaded.version),
      store.save({ version: 2, services: { sd21: { ...aServiceState(), mode: 'cost' } } }, loaded.version),
    ]);
    const lateFirst = await store.save({ version: 1, services: {} }, null);

    // Assess: one winner, and what is stored is the winner's state.
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(lateFirst).toBe(false);
    const stored = await store.load();
    expect(stored.version).toBe(loaded.version! + 1);
    expect(stored.state.services['sd21']!.mode).toBe(results[0] ? 'capacity' : 'cost');
  });

  it('throws, rather than reporting a lost race, when the table does not exist', async () => {
    const store = new DynamoDbStateStore(awsClients().dynamodb, { tableName: 'no-such-table' });

    await expect(store.save({ version: 1, services: {} }, null)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});

function aServiceState() {
  return { mode: 'cost' as const, since: 0, badTicks: 0, override: null, pools: {}, lastGoodWeights: null, demandHistory: [], floors: {}, actuationFailures: 0 };
}

describe('SNS notifier', () => {
  it('publishes one message per batch of alerts, and nothing for an empty batch', async () => {
    // Prepare
    const { sns } = awsClients();
    const topic = await sns.send(new CreateTopicCommand({ Name: 'hwai-alerts' }));
    const sent: Array<{ Subject?: string; Message?: string }> = [];
    sns.middlewareStack.add((next) => async (args) => (sent.push(args.input as (typeof sent)[number]), next(args)), { step: 'initialize' });
    const notifier = new SnsNotifier(sns, topic.TopicArn!);
    const alerts: Alert[] = [
      { kind: 'mode-changed', service: 'sd21', message: 'sd21: cost → capacity after 2 ticks with sd21-inf2-neuron short' },
      { kind: 'actuation-failing', service: 'sd21', message: `sd21: ${'x'.repeat(300)}` },
    ];
    await faults.reset();

    // Act
    await notifier.notify(alerts);
    await notifier.notify([]);

    // Assess: one Publish that moto accepted; a subject SNS accepts (≤ 100 characters, which moto
    // does not check), each alert as a line an on-call reads, and the alerts as JSON.
    expect(await faults.counts()).toEqual({ 'sns:Publish': 1 });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.Subject).toBe('hwai: 2 alerts (sd21)');
    const message = sent[0]!.Message!;
    expect(message).toContain('[mode-changed] sd21: cost → capacity after 2 ticks with sd21-inf2-neuron short');
    expect(JSON.parse(message.slice(message.indexOf('{')))).toEqual({ alerts });
  });
});

describe('EC2 capacity signals', () => {
  it('reports a family with an active reservation that has instances free, and combines with other sources', async () => {
    // Prepare: inf2 has 2 of 4 free; g5's reservation is full; trn1's is expired.
    await ec2Stub.setCapacityReservations([
      { CapacityReservationId: 'cr-inf2', InstanceType: 'inf2.xlarge', AvailabilityZone: 'us-east-1a', TotalInstanceCount: 4, AvailableInstanceCount: 2, State: 'active' },
      { CapacityReservationId: 'cr-g5', InstanceType: 'g5.xlarge', AvailabilityZone: 'us-east-1a', TotalInstanceCount: 2, AvailableInstanceCount: 0, State: 'active' },
      { CapacityReservationId: 'cr-trn1', InstanceType: 'trn1.2xlarge', AvailabilityZone: 'us-east-1b', TotalInstanceCount: 1, AvailableInstanceCount: 1, State: 'expired' },
    ]);
    const kube = { readSignals: async () => [{ family: 'g5', kind: 'insufficient-capacity' as const, at: 2_000 }] };
    const signals = combineSignals(new Ec2CapacitySignals(awsClients().ec2), kube);

    // Act
    const read = await signals.readSignals(['inf2', 'trn1', 'g5'], 1_000);

    // Assess
    expect(read).toEqual([
      { family: 'inf2', kind: 'reservation-available', at: 1_000, detail: 'cr-inf2: 2/4 inf2.xlarge free in us-east-1a' },
      { family: 'g5', kind: 'insufficient-capacity', at: 2_000 },
    ]);
  });
});
