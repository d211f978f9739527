import { AwsQueryProtocol } from '@aws-sdk/core/protocols';
import { KubeConfig } from '@kubernetes/client-node';
import { awsClientsFromEnv, type AwsClients } from '../adapters/aws/clients.ts';
import { eksAccess, eksKubeConfig } from '../adapters/kubernetes/kubeconfig.ts';
import { portsFromEnv } from '../adapters/production-ports.ts';
import type { Clock, Ports } from '../reconcile/ports.ts';
import { systemClock } from './override-runtime.ts';
import { loadFleetSpec } from '../spec/load.ts';
import type { FleetSpec } from '../spec/schema.ts';
import type { ClusterAccess, CommonConfig, ControllerConfig } from './config.ts';
import { Ec2InstanceTypes, type InstanceTypeLookup } from '../adapters/aws/ec2-instance-types.ts';

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

/** An emulator (moto) speaks CloudWatch's awsQuery protocol for sure; production keeps the SDK's default. */
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
  return eksKubeConfig(eksAccess({ name: access.name, endpoint: access.endpoint, certificateAuthorityData: access.certificateAuthorityData }, region));
}

export function controllerRuntime(config: ControllerConfig, parts: RuntimeParts = {}, env: NodeJS.ProcessEnv = process.env): ControllerRuntime {
  const spec = parts.spec ?? loadFleetSpec(config.specFile);
  const clients = parts.clients ?? clientsFor(config);
  const kubeConfig = parts.kubeConfig ?? kubeConfigFor(config.cluster, env.AWS_REGION ?? env.AWS_DEFAULT_REGION);
  const ports = portsFromEnv(config, clients, kubeConfig, spec, { clock: parts.clock ?? systemClock });
  return { spec, ports, instanceTypes: new Ec2InstanceTypes(clients.ec2), dryRun: config.dryRun, ...(config.policy ? { policy: config.policy } : {}) };
}
