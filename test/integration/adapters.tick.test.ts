// Whole ticks through the production ports (portsFromEnv) on the real parts: moto's ALB,
// CloudWatch, DynamoDB and SNS, and the apiserver with KEDA's CRDs as the restricted controller.
// Writes are counted at the fault injector, where every call passes.
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { CreateTableCommand, GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateSubnetCommand, CreateVpcCommand } from '@aws-sdk/client-ec2';
import {
  AddTagsCommand,
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DescribeRulesCommand,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { portsFromEnv, PortsConfigError, type ProductionPortsConfig } from '../../shared/src/adapters/production-ports.ts';
import { RULE_TAG } from '../../shared/src/adapters/aws/elbv2-router.ts';
import type { Ports } from '../../shared/src/reconcile/ports.ts';
import { runTick } from '../../shared/src/reconcile/tick.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import type { FleetSpec } from '../../shared/src/spec/schema.ts';
import { awsClients, faults, freshNamespace, harness, kubeConfig } from '../harness/clients.ts';
import { prepareUnit, readyPods } from './adapters.fixtures.ts';

const TABLE = 'hwai-state';
const LOOKUP = 'hwai-sd21-rule';

/** The default fleet's sd21 as deployed: its rule by lookup, its ScaledObjects in `namespace`. */
function sd21Fleet(namespace: string): FleetSpec {
  const spec = loadFleetSpec();
  return {
    ...spec,
    services: { sd21: { ...spec.services['sd21']!, listenerRule: { lookup: LOOKUP } } },
    units: spec.units.filter((u) => u.service === 'sd21').map((u) => ({ ...u, scaledObject: { namespace, name: u.name } })),
  };
}

let fleet: FleetSpec;
let config: ProductionPortsConfig;
let ruleArn: string;

beforeAll(async () => {
  // Prepare, as the CDK stack and the operator leave them: an ALB listener whose sd21 rule is
  // tagged for the lookup and splits evenly (not what static-cost wants); the five units'
  // Deployments, ScaledObjects and two ready pods each; the state table; the alert topic.
  const namespace = await freshNamespace('tick');
  fleet = sd21Fleet(namespace);
  const { ec2, elbv2, dynamodb, sns } = awsClients({ direct: true });
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.1.0.0/16' }))).Vpc!.VpcId!;
  const subnets = await Promise.all(['us-east-1a', 'us-east-1b'].map((az, i) => ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.1.${i}.0/24`, AvailabilityZone: az }))));
  const alb = await elbv2.send(new CreateLoadBalancerCommand({ Name: 'hwai-tick', Type: 'application', Subnets: subnets.map((s) => s.Subnet!.SubnetId!) }));
  const groups: string[] = [];
  for (const [i, unit] of fleet.units.entries()) {
    const tg = await elbv2.send(new CreateTargetGroupCommand({ Name: unit.targetGroup!.name!, Protocol: 'HTTP', Port: 8000, VpcId: vpcId, TargetType: 'ip' }));
    groups.push(tg.TargetGroups![0]!.TargetGroupArn!);
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: groups[i]!, Targets: [0, 1].map((k) => ({ Id: `10.1.${i}.${10 + k}`, Port: 8000 })) }));
    await prepareUnit(namespace, unit.name, 2);
    await readyPods(namespace, unit.name, 2);
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
      Actions: [{ Type: 'forward', ForwardConfig: { TargetGroups: groups.map((arn) => ({ TargetGroupArn: arn, Weight: 20 })) } }],
    }),
  );
  ruleArn = rule.Rules![0]!.RuleArn!;
  await elbv2.send(new AddTagsCommand({ ResourceArns: [ruleArn], Tags: [{ Key: RULE_TAG, Value: LOOKUP }] }));
  await dynamodb.send(
    new CreateTableCommand({ TableName: TABLE, KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
  );
  const topic = await sns.send(new CreateTopicCommand({ Name: 'hwai-alerts' }));
  config = { stateTable: TABLE, alertTopicArn: topic.TopicArn!, listenerArn, awsEndpoint: harness().awsEndpoint };
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
  return (await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: pk } }, ConsistentRead: true }))).Item;
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

    // Act: the next tick, the world unchanged.
    await faults.reset();
    const next = await runTick(fleet, aController().ports, { policy: 'static-cost' });

    // Assess: nothing to change, so no write of any kind, not even the lease.
    expect(next.outcome).toBe('unchanged');
    expect(next.errors).toEqual([]);
    expect(await writeCalls()).toEqual({});
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
