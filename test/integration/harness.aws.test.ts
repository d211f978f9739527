// The AWS half of the harness is real: moto answers through the unchanged SDK clients, and the
// EC2 operations moto lacks are answered by the stub behind the same client.
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DescribeRulesCommand,
  ModifyRuleCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetMetricDataCommand, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeCapacityReservationsCommand,
  DescribeInstanceTypeOfferingsCommand,
  GetSpotPlacementScoresCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { awsClients, ec2Stub, faults } from '../harness/clients.ts';

const UNITS = ['sd21-inf2-neuron', 'sd21-trn1-neuron', 'sd21-g5-triton', 'sd21-g6-triton', 'sd21-g5-cuda'];

describe('ELBv2 in moto', () => {
  it('creates an ALB with a listener, a rule and five target groups, and reads back the weights ModifyRule wrote', async () => {
    // Prepare: a VPC with two subnets, the ALB, one IP target group per unit, a listener and
    // the service's rule forwarding to the seed's cost-optimized weights.
    const { ec2, elbv2 } = awsClients();
    const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
    const vpcId = vpc.Vpc!.VpcId!;
    const subnets = await Promise.all(
      ['us-east-1a', 'us-east-1b'].map((az, i) => ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.0.${i}.0/24`, AvailabilityZone: az }))),
    );
    const alb = await elbv2.send(new CreateLoadBalancerCommand({ Name: 'hwai', Type: 'application', Subnets: subnets.map((s) => s.Subnet!.SubnetId!) }));
    const albArn = alb.LoadBalancers![0]!.LoadBalancerArn!;
    const targetGroupArns: string[] = [];
    for (const unit of UNITS) {
      const tg = await elbv2.send(new CreateTargetGroupCommand({ Name: unit, Protocol: 'HTTP', Port: 8000, VpcId: vpcId, TargetType: 'ip' }));
      targetGroupArns.push(tg.TargetGroups![0]!.TargetGroupArn!);
    }
    const listener = await elbv2.send(
      new CreateListenerCommand({
        LoadBalancerArn: albArn,
        Protocol: 'HTTP',
        Port: 80,
        DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404' } }],
      }),
    );
    const forward = (weights: number[]) => [
      { Type: 'forward' as const, ForwardConfig: { TargetGroups: targetGroupArns.map((arn, i) => ({ TargetGroupArn: arn, Weight: weights[i]! })) } },
    ];
    const rule = await elbv2.send(
      new CreateRuleCommand({
        ListenerArn: listener.Listeners![0]!.ListenerArn!,
        Priority: 10,
        Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/sd21/*'] } }],
        Actions: forward([40, 20, 15, 10, 15]),
      }),
    );
    const ruleArn = rule.Rules![0]!.RuleArn!;

    // Act: move traffic off inf2 (a failover's weights).
    await elbv2.send(new ModifyRuleCommand({ RuleArn: ruleArn, Actions: forward([0, 35, 25, 20, 20]) }));

    // Assess: the rule forwards with exactly the weights written, per target group.
    const described = await elbv2.send(new DescribeRulesCommand({ RuleArns: [ruleArn] }));
    const live = described.Rules![0]!.Actions![0]!.ForwardConfig!.TargetGroups!;
    const weightByArn = Object.fromEntries(live.map((tg) => [tg.TargetGroupArn, tg.Weight]));
    expect(targetGroupArns.map((arn) => weightByArn[arn])).toEqual([0, 35, 25, 20, 20]);
  });
});

describe('CloudWatch in moto', () => {
  it('round-trips PutMetricData and GetMetricData over the pinned awsQuery protocol', async () => {
    // Prepare: a model server's per-unit request counts, as EMF would publish them.
    const { cloudwatch } = awsClients();
    const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 120_000);
    const dimensions = [
      { Name: 'service', Value: 'sd21' },
      { Name: 'unit', Value: 'sd21-inf2-neuron' },
    ];
    await cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: 'hw-agnostic-infer',
        MetricData: [40, 30, 35].map((v, i) => ({ MetricName: 'requests', Dimensions: dimensions, Timestamp: new Date(minute.getTime() + i * 1000), Value: v, Unit: 'Count' })),
      }),
    );

    // Act: read the sum for that minute back.
    const data = await cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: new Date(minute.getTime() - 60_000),
        EndTime: new Date(minute.getTime() + 120_000),
        MetricDataQueries: [
          { Id: 'rpm', MetricStat: { Metric: { Namespace: 'hw-agnostic-infer', MetricName: 'requests', Dimensions: dimensions }, Period: 60, Stat: 'Sum' } },
        ],
      }),
    );

    // Assess: the minute's 105 requests come back, and both calls went out as awsQuery.
    const rpm = data.MetricDataResults!.find((r) => r.Id === 'rpm')!;
    expect(rpm.Values!.reduce((a, b) => a + b, 0)).toBe(105);
    const protocols = (await faults.calls()).filter((c) => c.service === 'monitoring').map((c) => `${c.operation}:${c.protocol}`);
    expect(protocols).toEqual(['PutMetricData:query', 'GetMetricData:query']);
  });
});

describe('EC2: moto where it can, the stub where moto cannot', () => {
  it('answers DescribeCapacityReservations and GetSpotPlacementScores from the stub, in the SDK shape', async () => {
    // Prepare: an inf2 Capacity Block with 2 of 4 instances free, and spot scores per zone.
    const { ec2 } = awsClients();
    await ec2Stub.setCapacityReservations([
      {
        CapacityReservationId: 'cr-0123456789abcdef0',
        InstanceType: 'inf2.xlarge',
        AvailabilityZone: 'us-east-1a',
        TotalInstanceCount: 4,
        AvailableInstanceCount: 2,
        State: 'active',
        ReservationType: 'capacity-block',
        EndDate: new Date('2030-01-01T00:00:00Z'),
        Tags: [{ Key: 'hwai/pool', Value: 'inf2-reserved' }],
      },
    ]);
    await ec2Stub.setSpotPlacementScores([
      { AvailabilityZoneId: 'use1-az1', Region: 'us-east-1', Score: 9 },
      { AvailabilityZoneId: 'use1-az2', Region: 'us-east-1', Score: 3 },
    ]);

    // Act
    const reservations = await ec2.send(new DescribeCapacityReservationsCommand({}));
    const scores = await ec2.send(
      new GetSpotPlacementScoresCommand({ InstanceTypes: ['g5.xlarge'], TargetCapacity: 4, SingleAvailabilityZone: true, RegionNames: ['us-east-1'] }),
    );

    // Assess: what a capacity signal reader needs, parsed by the real client.
    const [reservation] = reservations.CapacityReservations!;
    expect(reservation).toMatchObject({ InstanceType: 'inf2.xlarge', AvailableInstanceCount: 2, TotalInstanceCount: 4, State: 'active', ReservationType: 'capacity-block' });
    expect(reservation!.EndDate).toEqual(new Date('2030-01-01T00:00:00Z'));
    expect(reservation!.Tags).toEqual([{ Key: 'hwai/pool', Value: 'inf2-reserved' }]);
    expect(scores.SpotPlacementScores!.map((s) => [s.AvailabilityZoneId, s.Score])).toEqual([['use1-az1', 9], ['use1-az2', 3]]);
  });

  it('forwards every other EC2 action to moto, and moto itself still lacks the stubbed ones', async () => {
    // Act: a real moto answer through the stub, and the stubbed operation asked of moto directly.
    const offerings = await awsClients().ec2.send(
      new DescribeInstanceTypeOfferingsCommand({ LocationType: 'availability-zone', Filters: [{ Name: 'instance-type', Values: ['inf2.xlarge'] }] }),
    );
    const direct = awsClients({ direct: true, maxAttempts: 1 }).ec2.send(new DescribeCapacityReservationsCommand({}));

    // Assess: moto knows where inf2 is offered; when moto learns DescribeCapacityReservations,
    // this fails and the stub can go.
    expect(offerings.InstanceTypeOfferings!.map((o) => o.Location)).toContain('us-east-1a');
    await expect(direct).rejects.toThrow();
  });
});
