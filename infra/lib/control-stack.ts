import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import type { Construct } from 'constructs';
import type { FleetSpec } from '../../shared/src/spec/schema.ts';
import { ControlFunction } from './control/control-function.ts';
import { Observability } from './control/observability.ts';
import { controllerStatements, overrideStatements, type ControlResources } from './control/policies.ts';
import { Alerts, ControllerState } from './control/state-and-alerts.ts';
import { TickTriggers } from './control/triggers.ts';

/** The Kubernetes group manifests/rbac/hwai-controller.yaml binds to the controller's ClusterRole. */
export const CONTROLLER_GROUP = 'hwai:controller';
export const CONTROLLER_SERVICE_NAME = 'hwai-controller';
export const OVERRIDE_SERVICE_NAME = 'hwai-override';

export interface ControlStackProps extends StackProps {
  spec: FleetSpec;
  /** Names the functions: `<clusterName>-controller`, `<clusterName>-override` (the CLI's default is hwai-override). */
  clusterName: string;
  cluster: { name: string; endpoint: string; certificateAuthorityData: string };
  listenerArn: string;
  ruleArns: string[];
  loadBalancerFullName: string;
  entries: { controller: string; override: string };
  projectRoot: string;
  alertEmail?: string;
  servicesPerSchedule: number;
}

/** The control plane: the two functions, what triggers them, their state, alerts and alarms. */
export class ControlStack extends Stack {
  readonly controller: ControlFunction;
  readonly override: ControlFunction;

  constructor(scope: Construct, id: string, props: ControlStackProps) {
    super(scope, id, props);
    const { spec } = props;
    const state = new ControllerState(this, 'State');
    const alerts = new Alerts(this, 'Alerts', { email: props.alertEmail });
    const resources: ControlResources = { tableArn: state.table.tableArn, topicArn: alerts.topic.topicArn, topicKeyArn: alerts.key.keyArn, ruleArns: props.ruleArns };
    const common = {
      HWAI_STATE_TABLE: state.table.tableName,
      HWAI_ALERT_TOPIC_ARN: alerts.topic.topicArn,
      HWAI_LISTENER_ARN: props.listenerArn,
      HWAI_DRY_RUN: 'false',
    };

    this.controller = new ControlFunction(this, 'Controller', {
      functionName: `${props.clusterName}-controller`,
      entry: props.entries.controller,
      projectRoot: props.projectRoot,
      serviceName: CONTROLLER_SERVICE_NAME,
      spec,
      environment: {
        ...common,
        HWAI_CLUSTER_NAME: props.cluster.name,
        HWAI_CLUSTER_ENDPOINT: props.cluster.endpoint,
        HWAI_CLUSTER_CA: props.cluster.certificateAuthorityData,
      },
      statements: controllerStatements(resources),
      // A tick must end before the next one starts; one tick at a time, whatever triggers it.
      timeout: Duration.seconds(50),
      memorySize: 512,
      reservedConcurrentExecutions: 1,
    });
    // Schedules and EventBridge invoke asynchronously: Lambda queues a tick that meets the
    // concurrency of 1 and retries it, but a tick older than a minute is superseded by the next
    // one, and a failed tick is not repeated (the next one starts from fresh observations).
    this.controller.function.configureAsyncInvoke({ maxEventAge: Duration.minutes(1), retryAttempts: 0 });
    this.override = new ControlFunction(this, 'Override', {
      functionName: `${props.clusterName}-override`,
      entry: props.entries.override,
      projectRoot: props.projectRoot,
      serviceName: OVERRIDE_SERVICE_NAME,
      spec,
      environment: common,
      statements: overrideStatements(resources),
      timeout: Duration.seconds(30),
      memorySize: 256,
    });

    // The controller's role in Kubernetes: exactly the RBAC of manifests/rbac, through its group.
    new eks.CfnAccessEntry(this, 'ControllerAccess', {
      clusterName: props.cluster.name,
      principalArn: this.controller.role.roleArn,
      kubernetesGroups: [CONTROLLER_GROUP],
      type: 'STANDARD',
    });

    new TickTriggers(this, 'Triggers', { controller: this.controller.function, services: Object.keys(spec.services), servicesPerSchedule: props.servicesPerSchedule });
    const metricNamespaces = [...new Set(Object.values(spec.services).map((s) => s.metricNamespace))];
    const observability = new Observability(this, 'Observability', {
      controller: this.controller.function,
      override: this.override.function,
      controllerServiceName: CONTROLLER_SERVICE_NAME,
      modelMetricsNamespace: metricNamespaces[0]!,
      loadBalancerFullName: props.loadBalancerFullName,
      topic: alerts.topic,
    });

    new CfnOutput(this, 'OverrideFunctionName', { value: this.override.function.functionName, description: 'invoke with an override payload (hwai override)' });
    new CfnOutput(this, 'StateTableName', { value: state.table.tableName });
    new CfnOutput(this, 'DashboardName', { value: observability.dashboard.dashboardName });
  }
}
