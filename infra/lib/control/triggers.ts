import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { CAPACITY_DETAIL_TYPES } from '../../../shared/src/control/events.ts';


/** Services in groups of `size`, in the spec's order: one schedule per group. */
export function shards(services: string[], size: number): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < services.length; i += size) out.push(services.slice(i, i + size));
  return out;
}

export interface TickTriggersProps {
  controller: lambda.IFunction;
  services: string[];
  servicesPerSchedule: number;
}

/**
 * What makes the controller tick: an EventBridge Scheduler schedule at rate(1 minute) per shard
 * of services, and an EventBridge rule for the capacity events. A tick that is late is worthless
 * (the next one comes within the minute): no retries beyond the minute.
 */
export class TickTriggers extends Construct {
  readonly schedules: scheduler.Schedule[] = [];
  readonly capacityRule: events.Rule;

  constructor(scope: Construct, id: string, props: TickTriggersProps) {
    super(scope, id);
    for (const shard of shards(props.services, props.servicesPerSchedule)) {
      this.schedules.push(
        new scheduler.Schedule(this, `Tick-${shard[0]}`, {
          schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
          description: `hwai tick: ${shard.join(', ')}`,
          target: new schedulerTargets.LambdaInvoke(props.controller, {
            input: scheduler.ScheduleTargetInput.fromObject({ kind: 'scheduled-tick', services: shard }),
            retryAttempts: 1,
            maxEventAge: Duration.seconds(60),
          }),
        }),
      );
    }
    // Exactly the EC2 events the controller parses (shared/src/control/events.ts); each ticks at once.
    this.capacityRule = new events.Rule(this, 'CapacityEvents', {
      description: 'EC2 capacity events: tick at once',
      eventPattern: { source: ['aws.ec2'], detailType: [...CAPACITY_DETAIL_TYPES] },
      targets: [new targets.LambdaFunction(props.controller, { retryAttempts: 2, maxEventAge: Duration.minutes(5) })],
    });
  }
}
