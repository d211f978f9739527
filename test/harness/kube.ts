// A real Kubernetes control plane for the integration tests: etcd + kube-apiserver on loopback,
// static tokens for an admin and for the hwai controller (RBAC from manifests/rbac), and the
// KEDA, Karpenter and Load Balancer Controller CRDs installed and Established.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freePort, runToCompletion, startProcess, step, waitUntil, type Running } from './processes.ts';

/** The identity the restricted token authenticates as; manifests/rbac binds the group. */
export const CONTROLLER_USER = 'hwai-controller-lambda';
export const CONTROLLER_GROUP = 'hwai:controller';

export interface KubeCredentials {
  /** PEM of the CA that signed the apiserver's (and the fault injector's) serving certificate. */
  readonly caPem: string;
  readonly adminToken: string;
  readonly controllerToken: string;
}

export interface Tls {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface KubeControlPlane {
  /** https://127.0.0.1:port of kube-apiserver itself (the fault injector fronts it). */
  readonly apiserverUrl: string;
  readonly credentials: KubeCredentials;
  readonly tls: Tls;
  stop(): Promise<void>;
}

export interface KubeBinaries {
  readonly etcd: string;
  readonly kubeApiserver: string;
}

async function openssl(args: string[]): Promise<void> {
  await runToCompletion('openssl', args);
}

/** A throwaway CA, a serving certificate for 127.0.0.1/localhost, and service-account keys. */
export async function makePki(dir: string): Promise<Tls> {
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=hwai-harness-ca']);
  await openssl(['req', ...ec, '-keyout', p('serving.key'), '-out', p('serving.csr'), '-subj', '/CN=kube-apiserver']);
  await writeFile(p('serving.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await openssl(['x509', '-req', '-in', p('serving.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('serving.crt'), '-days', '2', '-extfile', p('serving.ext')]);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', p('sa.key')]);
  await openssl(['pkey', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
  return {
    caPem: await readFile(p('ca.crt'), 'utf8'),
    certPem: await readFile(p('serving.crt'), 'utf8'),
    keyPem: await readFile(p('serving.key'), 'utf8'),
  };
}

/** One request over TLS trusting only our CA; resolves with the status code and body. */
export function httpsJson(method: string, url: string, caPem: string, token: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    const req = request(url, { method, ca: caPem, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A KubeConfig for `server` with a bearer token, trusting the harness CA. */
export function kubeConfigFor(server: string, caPem: string, token: string, name: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'hwai-harness', server, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name, token }],
    contexts: [{ name, cluster: 'hwai-harness', user: name }],
    currentContext: name,
  });
  return kc;
}

export async function readManifests(file: string): Promise<KubernetesObject[]> {
  const docs = parseAllDocuments(await readFile(file, 'utf8'));
  return docs.map((d) => d.toJS() as KubernetesObject | null).filter((o): o is KubernetesObject => o !== null);
}

async function createAll(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const object of objects) await client.create(object);
}

/**
 * CRDs go in as raw JSON: client-node's typed serializer would drop schema keys such as
 * `x-kubernetes-int-or-string` and the apiserver would then reject the CRD.
 */
async function installCrds(apiserverUrl: string, caPem: string, token: string, crds: KubernetesObject[]): Promise<void> {
  const collection = `${apiserverUrl}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`;
  for (const crd of crds) {
    const res = await httpsJson('POST', collection, caPem, token, crd);
    if (res.status !== 201) throw new Error(`installing CRD ${crd.metadata?.name}: ${res.status} ${res.body}`);
  }
  const deadline = Date.now() + 60_000;
  for (const crd of crds) {
    for (;;) {
      const res = await httpsJson('GET', `${collection}/${crd.metadata?.name}`, caPem, token);
      const conditions = (JSON.parse(res.body) as { status?: { conditions?: Array<{ type: string; status: string }> } }).status?.conditions ?? [];
      if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${crd.metadata?.name} not Established after 60 s: ${JSON.stringify(conditions)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export interface StartKubeOptions {
  readonly binaries: KubeBinaries;
  readonly workDir: string;
  readonly rbacManifest: string;
  readonly crdsDir: string;
}

export async function startKube(options: StartKubeOptions): Promise<KubeControlPlane> {
  const { binaries, workDir, rbacManifest, crdsDir } = options;
  const running: Running[] = [];
  const stop = async () => {
    for (const r of running.reverse()) await r.stop();
  };
  try {
    const tls = await makePki(workDir);
    const adminToken = randomBytes(24).toString('hex');
    const controllerToken = randomBytes(24).toString('hex');
    // token,user,uid,"group1,group2"
    await writeFile(
      join(workDir, 'tokens.csv'),
      `${adminToken},hwai-harness-admin,hwai-harness-admin,"system:masters"\n` +
        `${controllerToken},${CONTROLLER_USER},${CONTROLLER_USER},"${CONTROLLER_GROUP}"\n`,
    );

    const etcdClient = await freePort();
    const etcdPeer = await freePort();
    const etcd = startProcess('etcd', binaries.etcd, [
      '--name=hwai-harness',
      `--data-dir=${join(workDir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=hwai-harness=http://127.0.0.1:${etcdPeer}`,
      '--log-level=warn',
      // Test data is thrown away with the run; fsync only slows the apiserver down.
      '--unsafe-no-fsync',
    ], join(workDir, 'etcd.log'));
    running.push(etcd);
    await step('starting etcd', () =>
      waitUntil(etcd, 'etcd /health', async () => {
        const res = await fetch(`http://127.0.0.1:${etcdClient}/health`);
        return res.ok && (await res.text()).includes('"health":"true"');
      }, 60_000),
    );

    const port = await freePort();
    const apiserverUrl = `https://127.0.0.1:${port}`;
    const apiserver = startProcess('kube-apiserver', binaries.kubeApiserver, [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(workDir, 'apiserver-certs')}`,
      `--tls-cert-file=${join(workDir, 'serving.crt')}`,
      `--tls-private-key-file=${join(workDir, 'serving.key')}`,
      `--token-auth-file=${join(workDir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(workDir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(workDir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // The kubernetes Service's endpoints may not be loopback; nothing in the tests needs them.
      '--endpoint-reconciler-type=none',
      '--profiling=false',
    ], join(workDir, 'kube-apiserver.log'));
    running.push(apiserver);
    await step('starting kube-apiserver', () =>
      waitUntil(apiserver, '/readyz', async () => (await httpsJson('GET', `${apiserverUrl}/readyz`, tls.caPem, adminToken)).status === 200, 180_000),
    );

    const admin = kubeConfigFor(apiserverUrl, tls.caPem, adminToken, 'admin');
    await step(`applying ${rbacManifest}`, async () => {
      await createAll(admin, await readManifests(rbacManifest));
    });
    await step(`installing CRDs from ${crdsDir}`, async () => {
      const files = (await readdir(crdsDir)).filter((f) => /\.ya?ml$/.test(f)).sort();
      if (files.length === 0) throw new Error(`no CRD files in ${crdsDir} (set HWAI_CRDS_DIR)`);
      const crds = (await Promise.all(files.map((f) => readManifests(join(crdsDir, f))))).flat();
      await installCrds(apiserverUrl, tls.caPem, adminToken, crds);
    });

    return { apiserverUrl, tls, credentials: { caPem: tls.caPem, adminToken, controllerToken }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
