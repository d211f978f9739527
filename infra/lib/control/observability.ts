import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from './control-function.ts';

export interface ObservabilityProps {
  controller: lambda.IFunction;
  override: lambda.IFunction;
  /** The `service` dimension Powertools puts on the controller's EMF metrics. */
  controllerServiceName: string;
  /** The model servers' EMF namespace (hw-agnostic-infer). */
  modelMetricsNamespace: string;
  /** The ALB's full name (app/name/id), to find its metrics. */
  loadBalancerFullName: string;
  topic: sns.ITopic;
}

const MINUTE = Duration.minutes(1);

function search(expression: string, statistic: string, label: string): cw.MathExpression {
  return new cw.MathExpression({ expression: `SEARCH('${expression}', '${statistic}', 60)`, usingMetrics: {}, period: MINUTE, label });
}

/**
 * What an operator watches: a dashboard of demand and served requests, weights, mode, pods,
 * p99 and 5xx per unit, and the alarms that page (through the alerts topic) when actuation keeps
 * failing, the controller errors, or no tick has succeeded for 5 minutes.
 */
export class Observability extends Construct {
  readonly alarms: cw.Alarm[];
  readonly dashboard: cw.Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const controllerMetric = (metricName: string, statistic: string, period: Duration) =>
      new cw.Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { service: props.controllerServiceName }, statistic, period });

    const errorsAtLeastOnce = { comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, threshold: 1, treatMissingData: cw.TreatMissingData.NOT_BREACHING };
    const alarm = (id: string, alarmDescription: string, props: Omit<cw.AlarmProps, 'alarmDescription'>) => new cw.Alarm(this, id, { alarmDescription, ...props });
    this.alarms = [
      alarm('NoSuccessfulTick', 'No successful hwai tick for 5 minutes: weights and floors are frozen.', {
        metric: controllerMetric('TickSucceeded', 'Sum', Duration.minutes(5)),
        comparisonOperator: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        threshold: 1,
        evaluationPeriods: 1,
        treatMissingData: cw.TreatMissingData.BREACHING,
      }),
      alarm('ActuationFailures', 'hwai could not apply its decision (ALB weights or KEDA fields) in 3 of the last 5 minutes.', {
        metric: controllerMetric('ActuationErrors', 'Sum', MINUTE),
        ...errorsAtLeastOnce,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
      }),
      alarm('ControllerErrors', 'The hwai controller Lambda failed in 2 of the last 3 minutes.', {
        metric: props.controller.metricErrors({ period: MINUTE, statistic: 'Sum' }),
        ...errorsAtLeastOnce,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
      }),
      alarm('OverrideErrors', 'The hwai override Lambda failed: an operator override may not have been recorded.', {
        metric: props.override.metricErrors({ period: MINUTE, statistic: 'Sum' }),
        ...errorsAtLeastOnce,
        evaluationPeriods: 1,
      }),
    ];
    for (const alarm of this.alarms) alarm.addAlarmAction(new cwActions.SnsAction(props.topic));

    const lb = props.loadBalancerFullName;
    const model = props.modelMetricsNamespace;
    const perTargetGroup = (metric: string) => `{AWS/ApplicationELB,LoadBalancer,TargetGroup} MetricName="${metric}" LoadBalancer="${lb}"`;
    const widget = (title: string, left: cw.IMetric[], width = 12) => new cw.GraphWidget({ title, left, width, height: 6, period: MINUTE });
    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(6),
      widgets: [
        [new cw.AlarmStatusWidget({ title: 'hwai alarms', alarms: this.alarms, width: 24, height: 3 })],
        [
          widget('Demand (ALB requests, all services) and served per unit (2xx, rpm)', [
            new cw.Metric({ namespace: 'AWS/ApplicationELB', metricName: 'RequestCount', dimensionsMap: { LoadBalancer: lb }, statistic: 'Sum', period: MINUTE, label: 'demand' }),
            search(`{${model},service,unit} MetricName="RequestCount"`, 'Sum', 'served'),
          ]),
          widget('Forward weight per unit', [search(`Namespace="${METRICS_NAMESPACE}" MetricName="Weight"`, 'Maximum', 'weight')]),
        ],
        [
          widget('Mode per service (0 cost, 1 capacity, 2 override)', [search(`Namespace="${METRICS_NAMESPACE}" MetricName="Mode"`, 'Maximum', 'mode')]),
          widget('Pods in service per unit (healthy targets)', [search(perTargetGroup('HealthyHostCount'), 'Minimum', 'healthy')]),
        ],
        [
          widget('p99 latency per unit (ms)', [search(`{${model},service,unit} MetricName="Latency"`, 'p99', 'p99')]),
          widget('5xx per unit and at the ALB', [
            search(perTargetGroup('HTTPCode_Target_5XX_Count'), 'Sum', 'target 5xx'),
            new cw.Metric({ namespace: 'AWS/ApplicationELB', metricName: 'HTTPCode_ELB_5XX_Count', dimensionsMap: { LoadBalancer: lb }, statistic: 'Sum', period: MINUTE, label: 'ALB 5xx' }),
          ]),
        ],
        [
          widget('Controller: ticks, actuation errors, decisions', [
            controllerMetric('TickSucceeded', 'Sum', MINUTE),
            controllerMetric('ActuationErrors', 'Sum', MINUTE),
            controllerMetric('Decisions', 'Sum', MINUTE),
          ]),
          widget('Controller Lambda', [props.controller.metricInvocations({ period: MINUTE }), props.controller.metricErrors({ period: MINUTE }), props.controller.metricThrottles({ period: MINUTE })]),
        ],
      ],
    });
  }
}
