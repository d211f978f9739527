// What an integration test uses: real SDK clients and Kubernetes configs pointed at the running
// harness, the fault injector's controls and the EC2 stub's answers.
//
//   import { awsClients, kubeConfig, faults, ec2Stub, freshNamespace } from '../harness/clients.ts';
//   const { elbv2, cloudwatch, ec2, sns, dynamodb } = awsClients();
//   const kc = kubeConfig('controller');          // or 'admin'
import { randomBytes } from 'node:crypto';
import { AwsQueryProtocol } from '@aws-sdk/core/protocols';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client, type CapacityReservation, type SpotPlacementScore } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { SNSClient } from '@aws-sdk/client-sns';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import type { Fault, HarnessContext, RecordedCall } from './contract.ts';

export type { Fault, RecordedCall } from './contract.ts';

export function harness(): HarnessContext {
  const context = inject('hwaiHarness');
  if (!context) throw new Error('the harness is not running: run integration tests with `npx vitest run --project integration`');
  return context;
}

export interface AwsClientOptions {
  /** SDK attempts per call, retries included (SDK default 3). */
  readonly maxAttempts?: number;
  /**
   * Per-attempt timeout in ms (SDK default: none). Thrown as TimeoutError: this SDK only warns on
   * a request timeout unless `throwOnRequestTimeout` is set, which production clients need too.
   */
  readonly requestTimeoutMs?: number;
  /** Bypass the fault injector and the EC2 stub (talk to moto directly). */
  readonly direct?: boolean;
}

function awsConfig(options: AwsClientOptions) {
  const h = harness();
  return {
    endpoint: options.direct ? h.motoUrl : h.awsEndpoint,
    region: h.region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestHandler: { requestTimeout: options.requestTimeoutMs, throwOnRequestTimeout: true } } : {}),
  };
}

/**
 * CloudWatch over the awsQuery protocol. Current SDKs default CloudWatch to AWS JSON 1.0 and are
 * moving to Smithy RPCv2 CBOR; moto speaks awsQuery for CloudWatch without doubt, so the harness
 * pins it (harness.aws.test.ts checks the wire protocol).
 */
export function cloudWatchClient(options: AwsClientOptions = {}): CloudWatchClient {
  return new CloudWatchClient({ ...awsConfig(options), protocol: AwsQueryProtocol });
}

/** Every AWS client hwai uses, configured for the harness. */
export function awsClients(options: AwsClientOptions = {}) {
  const config = awsConfig(options);
  return {
    elbv2: new ElasticLoadBalancingV2Client(config),
    cloudwatch: cloudWatchClient(options),
    ec2: new EC2Client(config),
    sns: new SNSClient(config),
    dynamodb: new DynamoDBClient(config),
  };
}

export type Identity = 'admin' | 'controller';

/**
 * A KubeConfig for the harness apiserver: `admin` is system:masters; `controller` holds exactly
 * the RBAC of manifests/rbac/hwai-controller.yaml. Through the fault injector unless `direct`.
 */
export function kubeConfig(identity: Identity, options: { direct?: boolean } = {}): KubeConfig {
  const h = harness();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'hwai-harness', server: options.direct ? h.apiserverUrl : h.kubeEndpoint, caData: Buffer.from(h.kubeCaPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: identity, token: identity === 'admin' ? h.adminToken : h.controllerToken }],
    contexts: [{ name: identity, cluster: 'hwai-harness', user: identity }],
    currentContext: identity,
  });
  return kc;
}

/**
 * A new namespace with its `default` ServiceAccount (there is no controller-manager to create
 * it). Namespaces are never deleted: nothing would finalise them, and etcd lives only for the run.
 */
export async function freshNamespace(prefix = 'test'): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  const core = kubeConfig('admin', { direct: true }).makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels: { 'hwai.dev/test': 'true' } } } });
  await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } });
  return name;
}

async function control(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${harness().controlUrl}${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  });
  if (!res.ok) throw new Error(`fault injector control ${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

export type AwsFaultOptions = { readonly operation: string; readonly service?: string; readonly fault: Fault; readonly times?: number };
export type KubeFaultOptions = { readonly method?: string; readonly path: RegExp | string; readonly fault: Fault; readonly times?: number };

/** The fault injector in front of moto and kube-apiserver. Rules and counts reset per test file. */
export const faults = {
  /** Fails the next `times` (default 1) AWS calls of `operation`. */
  async aws(options: AwsFaultOptions): Promise<void> {
    await control('POST', '/faults', { target: 'aws', ...options });
  },
  /** Fails the next `times` (default 1) Kubernetes calls whose method and path match. */
  async kube(options: KubeFaultOptions): Promise<void> {
    const path = options.path instanceof RegExp ? options.path.source : options.path;
    await control('POST', '/faults', { target: 'kube', ...options, path });
  },
  /** Every call seen since the last reset, in order. */
  async calls(): Promise<RecordedCall[]> {
    return (await control('GET', '/calls')) as RecordedCall[];
  },
  /** How many calls per operation (`elasticloadbalancing:ModifyRule`, `kube:PATCH /apis/...`). */
  async counts(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const call of await faults.calls()) {
      const key = `${call.service}:${call.operation}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  },
  /** Forgets rules, recorded calls and EC2 stub answers. */
  async reset(): Promise<void> {
    await control('POST', '/reset');
  },
};

/** Answers of the EC2 operations moto lacks; they stay until the next reset. */
export const ec2Stub = {
  async setSpotPlacementScores(scores: SpotPlacementScore[]): Promise<void> {
    await control('PUT', '/ec2-stub/GetSpotPlacementScores', { SpotPlacementScores: scores });
  },
  async setCapacityReservations(reservations: CapacityReservation[]): Promise<void> {
    await control('PUT', '/ec2-stub/DescribeCapacityReservations', { CapacityReservations: reservations });
  },
};

/** Cluster-scoped kinds that test files create and that must not leak into the next file. */
const CLUSTER_SCOPED_CUSTOM = [
  { group: 'karpenter.sh', version: 'v1', plural: 'nodepools' },
  { group: 'karpenter.sh', version: 'v1', plural: 'nodeclaims' },
  { group: 'karpenter.k8s.aws', version: 'v1', plural: 'ec2nodeclasses' },
];

/** Puts the harness back to empty: moto's state, fault rules and counts, cluster-scoped CRs. */
export async function resetHarness(): Promise<void> {
  const h = harness();
  const res = await fetch(`${h.motoUrl}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`moto reset: ${res.status} ${await res.text()}`);
  await faults.reset();
  const custom = kubeConfig('admin', { direct: true }).makeApiClient(CustomObjectsApi);
  for (const kind of CLUSTER_SCOPED_CUSTOM) await custom.deleteCollectionClusterCustomObject(kind);
  // Events are read cluster-wide (Karpenter's refusals): another file's would read as this one's.
  const core = kubeConfig('admin', { direct: true }).makeApiClient(CoreV1Api);
  for (const ns of (await core.listNamespace()).items) await core.deleteCollectionNamespacedEvent({ namespace: ns.metadata!.name! });
}

export interface KubeStatus {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

/**
 * The Kubernetes Status a call failed with (client-node's ApiException carries it as a JSON
 * string); fails the test if the call succeeded.
 */
export async function kubeFailure(call: Promise<unknown>): Promise<KubeStatus> {
  try {
    await call;
  } catch (error) {
    const { code, body } = error as { code?: number; body?: unknown };
    if (typeof code !== 'number') throw error;
    const status = (typeof body === 'string' ? JSON.parse(body) : body) as Partial<KubeStatus> | undefined;
    return { code, reason: status?.reason ?? '', message: status?.message ?? '' };
  }
  throw new Error('expected the Kubernetes call to fail, but it succeeded');
}
