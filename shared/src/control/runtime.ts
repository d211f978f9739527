import { AwsQueryProtocol } from '@aws-sdk/core/protocols';
import { KubeConfig } from '@kubernetes/client-node';
import { awsClientsFromEnv, type AwsClients } from '../adapters/aws/clients.ts';
import { CloudWatchMetrics } from '../adapters/aws/cloudwatch-metrics.ts';
import { DynamoDbLease } from '../adapters/aws/dynamodb-lease.ts';
import { DynamoDbStateStore } from '../adapters/aws/dynamodb-state.ts';
import { Ec2CapacitySignals } from '../adapters/aws/ec2-capacity.ts';
import { EksTokenProvider } from '../adapters/aws/eks-token.ts';
import { Elbv2TrafficRouter } from '../adapters/aws/elbv2-router.ts';
import { SnsNotifier } from '../adapters/aws/sns-notifier.ts';
import { KubernetesCluster } from '../adapters/kubernetes/cluster.ts';
import { KarpenterSignals } from '../adapters/kubernetes/karpenter-signals.ts';
import { KedaAutoscaler } from '../adapters/kubernetes/keda-autoscaler.ts';
import { eksKubeConfig } from '../adapters/kubernetes/kubeconfig.ts';
import { combineSignals } from '../adapters/signals.ts';
import type { Clock, Ports } from '../reconcile/ports.ts';
import { systemClock } from './override-runtime.ts';
import { loadFleetSpec } from '../spec/load.ts';
import type { FleetSpec } from '../spec/schema.ts';
import type { ClusterAccess, CommonConfig, ControllerConfig } from './config.ts';
import { Ec2InstanceTypes, type InstanceTypeLookup } from './instance-types.ts';

/**
 * The composition root: from a validated configuration to the spec, the SDK clients and the
 * ports, built once per Lambda container (cold start) and reused by every invoke.
 */

export interface ControllerRuntime {
  spec: FleetSpec;
  ports: Ports;
  instanceTypes: InstanceTypeLookup;
  dryRun: boolean;
  policy?: ControllerConfig['policy'];
}

/** What a test or the local harness supplies instead of the environment's. */
export interface RuntimeParts {
  clients?: AwsClients;
  kubeConfig?: KubeConfig;
  clock?: Clock;
  spec?: FleetSpec;
}

/**
 * An emulator (moto) speaks CloudWatch's awsQuery protocol only and computes no percentiles, so
 * against one the metrics read awsQuery and the Maximum latency instead of p99.
 */
function clientsFor(config: CommonConfig): AwsClients {
  return awsClientsFromEnv(config.awsEndpoint ? { endpoint: config.awsEndpoint, cloudWatchProtocol: AwsQueryProtocol } : {});
}

export function kubeConfigFor(access: ClusterAccess, region: string | undefined): KubeConfig {
  if (access.kind === 'kubeconfig') {
    const kc = new KubeConfig();
    kc.loadFromFile(access.path);
    return kc;
  }
  if (!region) throw new Error('no AWS region for the EKS token: expected AWS_REGION (Lambda sets it)');
  const tokens = new EksTokenProvider({ clusterName: access.name, region });
  return eksKubeConfig({ name: access.name, endpoint: access.endpoint, certificateAuthorityData: access.certificateAuthorityData, token: () => tokens.token() });
}

export function controllerRuntime(config: ControllerConfig, parts: RuntimeParts = {}, env: NodeJS.ProcessEnv = process.env): ControllerRuntime {
  const spec = parts.spec ?? loadFleetSpec(config.specFile);
  const clients = parts.clients ?? clientsFor(config);
  const kubeConfig = parts.kubeConfig ?? kubeConfigFor(config.cluster, env.AWS_REGION ?? env.AWS_DEFAULT_REGION);
  const clock = parts.clock ?? systemClock;
  const ports: Ports = {
    metrics: new CloudWatchMetrics(clients.cloudwatch, spec.services, config.awsEndpoint ? { latencyStat: 'Maximum' } : {}),
    signals: combineSignals(new Ec2CapacitySignals(clients.ec2), new KarpenterSignals(kubeConfig)),
    cluster: new KubernetesCluster(kubeConfig, clock),
    router: new Elbv2TrafficRouter(clients.elbv2, spec.services, config.listenerArn ? { listenerArn: config.listenerArn } : {}),
    autoscaler: new KedaAutoscaler(kubeConfig),
    store: new DynamoDbStateStore(clients.dynamodb, { tableName: config.stateTable }),
    lease: new DynamoDbLease(clients.dynamodb, clock, { tableName: config.stateTable }),
    notifier: new SnsNotifier(clients.sns, config.alertTopicArn),
    clock,
  };
  return { spec, ports, instanceTypes: new Ec2InstanceTypes(clients.ec2), dryRun: config.dryRun, ...(config.policy ? { policy: config.policy } : {}) };
}
