// Vitest global setup of the `integration` project: builds (when cold) and starts the harness of
// real parts — moto, etcd + kube-apiserver with the CRDs, the fault injector with the EC2 stub —
// hands their endpoints to the test files (inject('hwaiHarness')), and stops them afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import type { HarnessContext } from './contract.ts';
import { FaultInjector } from './fault-injector.ts';
import { startKube } from './kube.ts';
import { startMoto } from './moto.ts';
import { runToCompletion, step } from './processes.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const REGION = 'us-east-1';

function parseEnvLines(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function required(env: Record<string, string>, key: string): string {
  const value = env[key];
  if (!value) throw new Error(`tools/harness/build.sh did not report ${key}`);
  return value;
}

export interface StartedHarness {
  readonly context: HarnessContext;
  /** Stops every part; keeps the logs folder when `keepLogs` (default: HWAI_KEEP_HARNESS_LOGS). */
  stop(keepLogs?: boolean): Promise<void>;
}

/**
 * Builds (when cold) and starts the harness: what the integration tests run on, and what
 * `hwai twin` starts for itself.
 */
export async function startHarness(): Promise<StartedHarness> {
  const started = Date.now();
  const built = parseEnvLines(await step('building the harness if needed (tools/harness/build.sh)', () => runToCompletion('bash', [join(ROOT, 'tools/harness/build.sh')], { showStderr: true })));
  const workDir = await mkdtemp(join(tmpdir(), 'hwai-harness-'));
  const crdsDir = resolve(ROOT, process.env.HWAI_CRDS_DIR ?? '../shared/crds');

  const stops: Array<() => Promise<void>> = [];
  const teardown = async (keepLogs = Boolean(process.env.HWAI_KEEP_HARNESS_LOGS)) => {
    for (const stop of stops.reverse()) await stop();
    if (keepLogs) process.stderr.write(`[harness] logs kept in ${workDir}\n`);
    else await rm(workDir, { recursive: true, force: true });
  };
  try {
    // moto and the control plane start side by side; each prints its own progress line.
    const [moto, kube] = await Promise.all([
      startMoto(required(built, 'MOTO_SERVER'), workDir).then((m) => (stops.push(m.stop), m)),
      startKube({
        binaries: { etcd: required(built, 'ETCD'), kubeApiserver: required(built, 'KUBE_APISERVER') },
        workDir,
        rbacManifest: join(ROOT, 'manifests/rbac/hwai-controller.yaml'),
        crdsDir,
      }).then((k) => (stops.push(k.stop), k)),
    ]);
    const injector = await new FaultInjector(moto.url, kube.apiserverUrl, kube.tls).start();
    stops.push(injector.stop);

    const context: HarnessContext = {
      motoUrl: moto.url,
      awsEndpoint: injector.awsEndpoint,
      apiserverUrl: kube.apiserverUrl,
      kubeEndpoint: injector.kubeEndpoint,
      kubeCaPem: kube.credentials.caPem,
      adminToken: kube.credentials.adminToken,
      controllerToken: kube.credentials.controllerToken,
      controlUrl: injector.controlUrl,
      region: REGION,
    };
    process.stderr.write(
      `[harness] ready in ${((Date.now() - started) / 1000).toFixed(1)} s: kube-apiserver ${built.KUBE_VERSION} + etcd ${built.ETCD_VERSION}, ` +
        `moto, fault injector (logs in ${workDir}; HWAI_KEEP_HARNESS_LOGS=1 keeps them)\n`,
    );
    return { context, stop: teardown };
  } catch (error) {
    await teardown(true);
    throw error;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const harness = await startHarness();
  project.provide('hwaiHarness', harness.context);
  return () => harness.stop();
}
