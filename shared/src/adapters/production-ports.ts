import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock, Ports } from '../reconcile/ports.ts';
import type { FleetSpec } from '../spec/schema.ts';
import type { AwsClients } from './aws/clients.ts';
import { CloudWatchMetrics, type CloudWatchMetricsOptions } from './aws/cloudwatch-metrics.ts';
import { DynamoDbLease } from './aws/dynamodb-lease.ts';
import { DynamoDbStateStore } from './aws/dynamodb-state.ts';
import { Ec2CapacitySignals } from './aws/ec2-capacity.ts';
import { Elbv2TrafficRouter } from './aws/elbv2-router.ts';
import { SnsNotifier } from './aws/sns-notifier.ts';
import { KarpenterSignals } from './kubernetes/karpenter-signals.ts';
import { KedaAutoscaler } from './kubernetes/keda-autoscaler.ts';
import { KubernetesCluster } from './kubernetes/cluster.ts';
import { combineSignals } from './signals.ts';

/**
 * The reconcile ports of the controller Lambda, built from its environment contract (already
 * validated by the handler's config), the SDK clients and the cluster's KubeConfig:
 *
 *   const clients = awsClientsFromEnv({ endpoint: config.awsEndpoint });
 *   const kubeConfig = eksKubeConfig(eksAccess(config.cluster, process.env.AWS_REGION!));
 *   const ports = portsFromEnv(config, clients, kubeConfig, spec);
 *
 * - HWAI_STATE_TABLE → `stateTable`: the state (pk `controller-state`) and the tick lease
 *   (pk `controller-lease`) in the one table.
 * - HWAI_ALERT_TOPIC_ARN → `alertTopicArn`: SNS alerts.
 * - HWAI_LISTENER_ARN → `listenerArn`: where `listenerRule.lookup` rules are found.
 * - HWAI_AWS_ENDPOINT → `awsEndpoint`: set only against an emulator (moto), which computes no
 *   percentiles, so latency is then read as the Maximum unless `options.metrics` says otherwise.
 */

export interface ProductionPortsConfig {
  stateTable: string;
  alertTopicArn: string;
  listenerArn?: string;
  awsEndpoint?: string;
}

export interface ProductionPortsOptions {
  /** Default: the wall clock. */
  clock?: Clock;
  metrics?: CloudWatchMetricsOptions;
}

export class PortsConfigError extends Error {
  override name = 'PortsConfigError';
}

export function portsFromEnv(config: ProductionPortsConfig, clients: AwsClients, kubeConfig: KubeConfig, spec: FleetSpec, options: ProductionPortsOptions = {}): Ports {
  const lookups = Object.entries(spec.services).filter(([, s]) => s.listenerRule?.lookup && !s.listenerRule.ruleArn && !s.listenerRule.listenerArn);
  if (lookups.length > 0 && !config.listenerArn) {
    throw new PortsConfigError(`HWAI_LISTENER_ARN: required, since services ${lookups.map(([name]) => name).join(', ')} name their listener rule by lookup`);
  }
  const clock = options.clock ?? { now: () => Date.now() };
  const metrics: CloudWatchMetricsOptions = { ...(config.awsEndpoint ? { latencyStat: 'Maximum' } : {}), ...options.metrics };
  return {
    clock,
    metrics: new CloudWatchMetrics(clients.cloudwatch, spec.services, metrics),
    signals: combineSignals(new Ec2CapacitySignals(clients.ec2), new KarpenterSignals(kubeConfig)),
    cluster: new KubernetesCluster(kubeConfig, clock),
    router: new Elbv2TrafficRouter(clients.elbv2, spec.services, config.listenerArn ? { listenerArn: config.listenerArn } : {}),
    autoscaler: new KedaAutoscaler(kubeConfig),
    store: new DynamoDbStateStore(clients.dynamodb, { tableName: config.stateTable }),
    lease: new DynamoDbLease(clients.dynamodb, clock, { tableName: config.stateTable }),
    notifier: new SnsNotifier(clients.sns, config.alertTopicArn),
  };
}
