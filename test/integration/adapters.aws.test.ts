// The AWS adapters against moto, through the real SDK clients and the fault injector: what the
// controller reads and writes on the ALB, CloudWatch, DynamoDB, SNS and EC2.
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { PutMetricDataCommand, type MetricDatum } from '@aws-sdk/client-cloudwatch';
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateSubnetCommand, CreateVpcCommand } from '@aws-sdk/client-ec2';
import {
  AddTagsCommand,
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DescribeListenersCommand,
  DescribeRulesCommand,
  RegisterTargetsCommand,
  type ModifyRuleCommandInput,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { beforeAll, describe, expect, it } from 'vitest';
import { CloudWatchMetrics } from '../../shared/src/adapters/aws/cloudwatch-metrics.ts';
import { DynamoDbLease } from '../../shared/src/adapters/aws/dynamodb-lease.ts';
import { DynamoDbStateStore } from '../../shared/src/adapters/aws/dynamodb-state.ts';
import { Ec2CapacitySignals } from '../../shared/src/adapters/aws/ec2-capacity.ts';
import { Elbv2TrafficRouter, ListenerRuleNotFoundError, RULE_TAG, UnresolvedListenerRuleError } from '../../shared/src/adapters/aws/elbv2-router.ts';
import { SnsNotifier } from '../../shared/src/adapters/aws/sns-notifier.ts';
import { combineSignals } from '../../shared/src/adapters/signals.ts';
import { initialControllerState } from '../../shared/src/core/state.ts';
import type { Alert, UnitScaling } from '../../shared/src/core/types.ts';
import type { Ports } from '../../shared/src/reconcile/ports.ts';
import { runTick } from '../../shared/src/reconcile/tick.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import { UnitSchema, type FleetSpec } from '../../shared/src/spec/schema.ts';
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

  it('refuses a lookup when it was given no listener to search, without calling AWS', async () => {
    // Prepare: the default fleet as written (rules by lookup), and no HWAI_LISTENER_ARN.
    const router = new Elbv2TrafficRouter(awsClients().elbv2, sd21Fleet({ lookup: 'hwai-sd21-rule' }).services);
    await faults.reset();

    // Act / Assess
    await expect(router.readRoute('sd21', SEED.units)).rejects.toThrow(UnresolvedListenerRuleError);
    await expect(router.setWeights('sd21', SEED.units, byUnit([1, 1, 1, 1, 1]))).rejects.toThrow(/"hwai-sd21-rule" needs the listener .*HWAI_LISTENER_ARN/);
    expect(await faults.calls()).toEqual([]);
  });

  it('finds a lookup’s rule under the listener by its hwai:rule tag, once, and writes that rule only', async () => {
    // Prepare: the listener holds another service's rule too; only ours carries the tag value.
    const { elbv2 } = awsClients();
    const { ruleArn, listenerArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const other = await elbv2.send(
      new CreateRuleCommand({ ListenerArn: listenerArn, Priority: 20, Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/vit/*'] } }], Actions: forward([0, 0, 0, 0, 100]) }),
    );
    const otherArn = other.Rules![0]!.RuleArn!;
    await elbv2.send(new AddTagsCommand({ ResourceArns: [otherArn], Tags: [{ Key: RULE_TAG, Value: 'hwai-vit-rule' }] }));
    await elbv2.send(new AddTagsCommand({ ResourceArns: [ruleArn], Tags: [{ Key: RULE_TAG, Value: 'hwai-sd21-rule' }, { Key: 'team', Value: 'ml' }] }));
    const router = new Elbv2TrafficRouter(elbv2, sd21Fleet({ lookup: 'hwai-sd21-rule' }).services, { listenerArn });
    await faults.reset();

    // Act: two reads and a write, as two ticks would.
    const first = await router.readRoute('sd21', SEED.units);
    await router.readRoute('sd21', SEED.units);
    await router.setWeights('sd21', SEED.units, byUnit([0, 50, 50, 0, 0]));

    // Assess: the tagged rule was read and written; the other rule is as it was; tags read once.
    expect(first.weights).toEqual(byUnit([40, 20, 15, 10, 15]));
    const rules = (await elbv2.send(new DescribeRulesCommand({ RuleArns: [ruleArn, otherArn] }))).Rules!;
    const weightsOf = (arn: string) => rules.find((r) => r.RuleArn === arn)!.Actions![0]!.ForwardConfig!.TargetGroups!.map((g) => g.Weight);
    expect(weightsOf(ruleArn)).toEqual([0, 50, 50, 0, 0]);
    expect(weightsOf(otherArn)).toEqual([0, 0, 0, 0, 100]);
    expect((await faults.counts())['elasticloadbalancing:DescribeTags']).toBe(1);
  });

  it('reads every looked-up rule of a listener with one DescribeRules when services read together', async () => {
    // Prepare: two services' rules under one listener, tagged; their lookups resolved by a first read.
    const { elbv2 } = awsClients();
    const { ruleArn, listenerArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const other = await elbv2.send(
      new CreateRuleCommand({ ListenerArn: listenerArn, Priority: 20, Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/vit/*'] } }], Actions: forward([0, 0, 0, 0, 100]) }),
    );
    await elbv2.send(new AddTagsCommand({ ResourceArns: [ruleArn], Tags: [{ Key: RULE_TAG, Value: 'hwai-sd21-rule' }] }));
    await elbv2.send(new AddTagsCommand({ ResourceArns: [other.Rules![0]!.RuleArn!], Tags: [{ Key: RULE_TAG, Value: 'hwai-vit-rule' }] }));
    const services = { sd21: { sloSeconds: 0.9, metricNamespace: 'x', listenerRule: { lookup: 'hwai-sd21-rule' } }, vit: { sloSeconds: 0.3, metricNamespace: 'x', listenerRule: { lookup: 'hwai-vit-rule' } } };
    const router = new Elbv2TrafficRouter(elbv2, services, { listenerArn });
    await router.readRoute('sd21', SEED.units);
    await faults.reset();

    // Act: a tick's observation reads both routes at once.
    const [sd21, vit] = await Promise.all([router.readRoute('sd21', SEED.units), router.readRoute('vit', SEED.units)]);

    // Assess
    expect(sd21.weights).toEqual(byUnit([40, 20, 15, 10, 15]));
    expect(vit.weights).toEqual(byUnit([0, 0, 0, 0, 100]));
    expect((await faults.counts())['elasticloadbalancing:DescribeRules']).toBe(1);
  });

  it('fails a lookup no rule carries with an error naming the tag and the listener', async () => {
    // Prepare
    const { listenerArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const router = new Elbv2TrafficRouter(awsClients().elbv2, sd21Fleet({ lookup: 'hwai-nothing-rule' }).services, { listenerArn });

    // Act / Assess
    const error = await router.readRoute('sd21', SEED.units).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnresolvedListenerRuleError);
    expect((error as Error).message).toBe(`sd21: no rule under listener ${listenerArn} carries the tag hwai:rule=hwai-nothing-rule`);
  });

  it('keeps an OIDC action and the stickiness of a rule it rewrites, keeping the client secret it cannot read', async () => {
    // Prepare: the stack's rule — authenticate with OIDC, then forward with group stickiness.
    const { elbv2 } = awsClients();
    const { listenerArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const oidc = {
      Issuer: 'https://idp.example.com',
      AuthorizationEndpoint: 'https://idp.example.com/authorize',
      TokenEndpoint: 'https://idp.example.com/token',
      UserInfoEndpoint: 'https://idp.example.com/userinfo',
      ClientId: 'hwai-sd21',
      ClientSecret: 'not-for-hwai',
      SessionCookieName: 'AWSELBAuthSessionCookie',
      Scope: 'openid',
      SessionTimeout: 3600,
      OnUnauthenticatedRequest: 'authenticate' as const,
    };
    const stickiness = { Enabled: true, DurationSeconds: 600 };
    const created = await elbv2.send(
      new CreateRuleCommand({
        ListenerArn: listenerArn,
        Priority: 30,
        Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/private/sd21/*'] } }],
        Actions: [
          { Type: 'authenticate-oidc', Order: 1, AuthenticateOidcConfig: oidc },
          { Type: 'forward', Order: 2, ForwardConfig: { TargetGroups: forward([40, 20, 15, 10, 15])[0]!.ForwardConfig.TargetGroups, TargetGroupStickinessConfig: stickiness } },
        ],
      }),
    );
    const ruleArn = created.Rules![0]!.RuleArn!;
    const sent: ModifyRuleCommandInput[] = [];
    elbv2.middlewareStack.add((next) => async (args) => ((args.input as { RuleArn?: string }).RuleArn === ruleArn && 'Actions' in (args.input as object) && sent.push(args.input as ModifyRuleCommandInput), next(args)), { step: 'initialize' });
    const router = new Elbv2TrafficRouter(elbv2, sd21Fleet({ ruleArn }).services);

    // Act
    await router.setWeights('sd21', SEED.units, byUnit([0, 35, 25, 40, 0]));

    // Assess: what ModifyRule was sent — the OIDC action whole but for the secret, told to keep
    // the existing one (DescribeRules never returns it); then the rule as the ALB holds it.
    const { ClientSecret: _secret, ...withoutSecret } = oidc;
    expect(sent).toHaveLength(1);
    expect(sent[0]!.Actions![0]).toEqual({ Type: 'authenticate-oidc', Order: 1, AuthenticateOidcConfig: { ...withoutSecret, UseExistingClientSecret: true } });
    expect(sent[0]!.Actions![1]!.ForwardConfig!.TargetGroupStickinessConfig).toEqual(stickiness);
    const after = (await elbv2.send(new DescribeRulesCommand({ RuleArns: [ruleArn] }))).Rules![0]!;
    expect(after.Actions!.map((a) => [a.Type, a.Order])).toEqual([['authenticate-oidc', 1], ['forward', 2]]);
    expect(after.Actions![0]!.AuthenticateOidcConfig).toMatchObject(withoutSecret);
    expect(after.Actions![1]!.ForwardConfig!.TargetGroupStickinessConfig).toEqual(stickiness);
    expect(after.Actions![1]!.ForwardConfig!.TargetGroups!.map((g) => g.Weight)).toEqual([0, 35, 25, 40, 0]);
    expect(after.Conditions).toEqual(created.Rules![0]!.Conditions);
  });

  it('surfaces ModifyRule throttling as an error once the SDK retries are spent, leaving the weights as they were', async () => {
    // Prepare: ELBv2 throttles more ModifyRule calls than the client attempts.
    const { ruleArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const router = new Elbv2TrafficRouter(awsClients({ maxAttempts: 2 }).elbv2, sd21Fleet({ ruleArn }).services);
    await faults.reset();
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
    const clock = { now: () => Date.UTC(2030, 0, 1, 12, 0) };
    const ports: Ports = {
      metrics: new CloudWatchMetrics(clients.cloudwatch, fleet.services, { latencyStat: 'Maximum' }),
      signals: new Ec2CapacitySignals(clients.ec2),
      cluster: { readPods: async (units) => Object.fromEntries(units.map((u) => [u.name, { readyPods: 2, desiredPods: 2, pendingPods: 0, oldestPendingSeconds: 0, startingPods: 0 }])) },
      router: new Elbv2TrafficRouter(clients.elbv2, fleet.services),
      autoscaler: {
        readScaling: async (units) => Object.fromEntries(units.filter((u) => scaling[u.name]).map((u) => [u.name, scaling[u.name]!])),
        setScaling: async (unit, s) => void (scaling[unit.name] = s),
      },
      store: new DynamoDbStateStore(clients.dynamodb, { tableName: 'hwai-tick' }),
      lease: new DynamoDbLease(clients.dynamodb, clock, { tableName: 'hwai-tick' }),
      notifier: new SnsNotifier(clients.sns, topic.TopicArn!),
      clock,
    };
    const first = await runTick(fleet, ports, { policy: 'static-cost' });
    await faults.reset();

    // Act
    const second = await runTick(fleet, ports, { policy: 'static-cost' });

    // Assess: the first tick moved the weights; the second observed the rule and wrote nothing:
    // no ModifyRule, no lease, no state write, no SNS message.
    expect(first.errors).toEqual([]);
    expect(first.outcome).toBe('applied');
    expect(first.applied.weights).toEqual(['sd21']);
    expect(first.recorded).toBe(true);
    expect(second.outcome).toBe('unchanged');
    expect(second.applied.weights).toEqual([]);
    const counts = await faults.counts();
    expect(counts['elasticloadbalancing:DescribeRules']).toBeGreaterThan(0);
    expect(Object.keys(counts).filter((op) => /ModifyRule|PutItem|DeleteItem|UpdateItem|Publish/.test(op))).toEqual([]);
  });
});

describe('CloudWatch metrics', () => {
  const MINUTE = 60_000;
  /** A tick 30 s into a minute; with the 2-minute lag the last minute read starts 3.5 minutes before it. */
  const at = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE + 30_000;
  const last = Math.floor((at - 120_000) / MINUTE) * MINUTE - MINUTE;
  const dims = (service: string, unit: string) => [{ Name: 'service', Value: service }, { Name: 'unit', Value: unit }];
  const request = (service: string, unit: string, value: number, t: number): MetricDatum => ({ MetricName: 'RequestCount', Value: value, Unit: 'Count', Timestamp: new Date(t), Dimensions: dims(service, unit) });
  const latency = (service: string, unit: string, ms: number, t: number): MetricDatum => ({ MetricName: 'Latency', Value: ms, Unit: 'Milliseconds', Timestamp: new Date(t), Dimensions: dims(service, unit) });

  async function publish(data: MetricDatum[]): Promise<void> {
    const { cloudwatch } = awsClients({ direct: true });
    for (let i = 0; i < data.length; i += 500) await cloudwatch.send(new PutMetricDataCommand({ Namespace: 'hw-agnostic-infer', MetricData: data.slice(i, i + 500) }));
  }

  it('reads the last complete, lagged minute and 30 minutes of history for every unit in one call', async () => {
    // Prepare: EMF-shaped datapoints. inf2 in the minute read and two minutes before it; g5-triton
    // in the minute read; g6-triton only in a minute too recent to be complete (inside the lag).
    await publish([
      ...[40, 30, 35].map((v, i) => request('sd21', 'sd21-inf2-neuron', v, last + i * 1000)),
      ...[600, 640, 710].map((v, i) => latency('sd21', 'sd21-inf2-neuron', v, last + i * 1000)),
      request('sd21', 'sd21-inf2-neuron', 80, last - 2 * MINUTE + 5_000),
      ...[20, 22].map((v, i) => request('sd21', 'sd21-g5-triton', v, last + i * 1000)),
      ...[650, 900].map((v, i) => latency('sd21', 'sd21-g5-triton', v, last + i * 1000)),
      request('sd21', 'sd21-g6-triton', 99, last + MINUTE + 1000),
      request('sd21', 'sd21-g6-triton', 99, at - 1000),
    ]);
    // moto computes no percentiles (p99 reads as an error): this harness reads the Maximum.
    const metrics = new CloudWatchMetrics(awsClients().cloudwatch, SEED.services, { latencyStat: 'Maximum' });
    await faults.reset();

    // Act
    const read = await metrics.readUnitMetrics(SEED.units, at);

    // Assess: one call; a unit without requests in a complete minute had none (0 rpm) and no latency.
    expect(await faults.counts()).toEqual({ 'monitoring:GetMetricData': 1 });
    expect(Object.fromEntries(Object.entries(read).map(([u, m]) => [u, { rpm: m.rpm, p99Seconds: m.p99Seconds }]))).toEqual({
      'sd21-inf2-neuron': { rpm: 105, p99Seconds: 0.71 },
      'sd21-trn1-neuron': { rpm: 0, p99Seconds: null },
      'sd21-g5-triton': { rpm: 42, p99Seconds: 0.9 },
      'sd21-g6-triton': { rpm: 0, p99Seconds: null },
      'sd21-g5-cuda': { rpm: 0, p99Seconds: null },
    });
    const history = read['sd21-inf2-neuron']!.rpmHistory;
    expect(history).toHaveLength(30);
    expect(history[0]![0]).toBe(last - 29 * MINUTE);
    expect(history.at(-1)).toEqual([last, 105]);
    expect(history.filter(([, rpm]) => rpm > 0)).toEqual([[last - 2 * MINUTE, 80], [last, 105]]);
  });

  it('reads a minute without requests as not observed when told to', async () => {
    // Prepare: an hour earlier, trn1 served 7 requests five minutes before the minute read.
    const earlier = last - 60 * MINUTE;
    await publish([request('sd21', 'sd21-trn1-neuron', 7, earlier - 5 * MINUTE)]);
    const metrics = new CloudWatchMetrics(awsClients().cloudwatch, SEED.services, { latencyStat: 'Maximum', requestsWithoutData: 'null' });

    // Act
    const read = await metrics.readUnitMetrics(SEED.units, at - 60 * MINUTE);

    // Assess: only the minute with data is in the history; the minute read is unknown.
    expect(read['sd21-trn1-neuron']).toEqual({ rpm: null, p99Seconds: null, rpmHistory: [[earlier - 5 * MINUTE, 7]] });
  });

  it('reads 300 units in ceil(600 queries / 500) = 2 calls, every unit answered', async () => {
    // Prepare: one service of 300 units, each with its own request count in the minute read.
    const big = Array.from({ length: 300 }, (_, i) =>
      UnitSchema.parse({ name: `big-${i}`, service: 'big', model: 'm', family: 'inf2', instanceType: 'inf2.xlarge', framework: 'neuron', pricePerHour: 1, maxRpm: 100, latencySeconds: 1 }),
    );
    await publish(big.flatMap((u, i) => [request('big', u.name, i + 1, last + 1000), latency('big', u.name, 100 + i, last + 1000)]));
    const metrics = new CloudWatchMetrics(awsClients().cloudwatch, { big: { sloSeconds: 1, metricNamespace: 'hw-agnostic-infer' } }, { latencyStat: 'Maximum' });
    await faults.reset();

    // Act
    const read = await metrics.readUnitMetrics(big, at);

    // Assess
    expect(await faults.counts()).toEqual({ 'monitoring:GetMetricData': 2 });
    expect(big.map((u) => read[u.name]!.rpm)).toEqual(big.map((_, i) => i + 1));
    expect(big.map((u) => read[u.name]!.p99Seconds)).toEqual(big.map((_, i) => (100 + i) / 1000));
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

describe('DynamoDB tick lease', () => {
  it('has one holder at a time, is refused while held, taken again once expired, and freed only by its holder', async () => {
    // Prepare: the state table, and a clock the test moves.
    const { dynamodb } = awsClients();
    await dynamodb.send(stateTable('hwai-lease'));
    let now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const lease = new DynamoDbLease(dynamodb, { now: () => now }, { tableName: 'hwai-lease' });

    // Act / Assess: two ticks at once, exactly one gets it.
    const both = await Promise.all([lease.acquire('tick-a', 48_000), lease.acquire('tick-b', 48_000)]);
    expect(both.filter(Boolean)).toHaveLength(1);
    const [holder, other] = both[0] ? ['tick-a', 'tick-b'] : ['tick-b', 'tick-a'];
    const item = (await dynamodb.send(new GetItemCommand({ TableName: 'hwai-lease', Key: { pk: { S: 'controller-lease' } }, ConsistentRead: true }))).Item!;
    expect(item).toEqual({ pk: { S: 'controller-lease' }, holder: { S: holder }, expiresAtMs: { N: String(now + 48_000) }, expiresAt: { N: String((now + 48_000) / 1000) } });

    // The other's release changes nothing; 47 s later it is still held.
    await lease.release(other);
    now += 47_000;
    expect(await lease.acquire(other, 48_000)).toBe(false);
    // Past its expiry anyone takes it.
    now += 1_000;
    expect(await lease.acquire(other, 48_000)).toBe(true);
    // Released by its holder, it is free at once.
    await lease.release(other);
    expect(await lease.acquire(holder, 48_000)).toBe(true);
  });
});

describe('the abort signal reaches every AWS call', () => {
  it('a call made with an aborted signal fails before anything is sent', async () => {
    // Prepare: every AWS adapter, a table, a topic and a rule to talk to.
    const clients = awsClients();
    await clients.dynamodb.send(stateTable('hwai-abort'));
    const topic = await clients.sns.send(new CreateTopicCommand({ Name: 'hwai-abort' }));
    const { ruleArn, listenerArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const clock = { now: () => Date.now() };
    const call = { signal: AbortSignal.abort() };
    const router = new Elbv2TrafficRouter(clients.elbv2, sd21Fleet({ ruleArn }).services);
    const lookup = new Elbv2TrafficRouter(clients.elbv2, sd21Fleet({ lookup: 'hwai-sd21-rule' }).services, { listenerArn });
    const calls = [
      () => router.readRoute('sd21', SEED.units, call),
      () => router.setWeights('sd21', SEED.units, byUnit([1, 1, 1, 1, 1]), call),
      () => lookup.readRoute('sd21', SEED.units, call),
      () => new CloudWatchMetrics(clients.cloudwatch, SEED.services).readUnitMetrics(SEED.units, Date.now(), call),
      () => new DynamoDbStateStore(clients.dynamodb, { tableName: 'hwai-abort' }).load(call),
      () => new DynamoDbStateStore(clients.dynamodb, { tableName: 'hwai-abort' }).save({ version: 1, services: {} }, null, call),
      () => new DynamoDbLease(clients.dynamodb, clock, { tableName: 'hwai-abort' }).acquire('t', 1000, call),
      () => new DynamoDbLease(clients.dynamodb, clock, { tableName: 'hwai-abort' }).release('t', call),
      () => new SnsNotifier(clients.sns, topic.TopicArn!).notify([{ kind: 'mode-changed', service: 'sd21', message: 'm' }], call),
      () => new Ec2CapacitySignals(clients.ec2).readSignals(['inf2'], 0, call),
    ];
    await faults.reset();

    // Act
    const outcomes = await Promise.allSettled(calls.map((c) => c()));

    // Assess
    expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).name : o.status))).toEqual(calls.map(() => 'AbortError'));
    expect(await faults.calls()).toEqual([]);
  });

  it('a call in flight is abandoned when its signal aborts', async () => {
    // Prepare: ELBv2 answers DescribeRules only after 5 s (the harness clients have no timeout).
    const { ruleArn } = await sd21Rule([40, 20, 15, 10, 15]);
    const router = new Elbv2TrafficRouter(awsClients().elbv2, sd21Fleet({ ruleArn }).services);
    await faults.reset();
    await faults.aws({ operation: 'DescribeRules', fault: { kind: 'delay', ms: 5_000 } });
    const deadline = new AbortController();

    // Act: abort once the request has reached the (delaying) service.
    const read = router.readRoute('sd21', SEED.units, { signal: deadline.signal });
    read.catch(() => undefined);
    while (!(await faults.calls()).some((c) => c.operation === 'DescribeRules')) await new Promise((r) => setTimeout(r, 20));
    deadline.abort();

    // Assess
    await expect(read).rejects.toMatchObject({ name: 'AbortError' });
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
