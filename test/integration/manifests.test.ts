// Every manifest hwai renders, accepted by a real kube-apiserver with the real CRDs of KEDA,
// Karpenter and the Load Balancer Controller: server-side apply with dryRun=All, so the
// apiserver runs its OpenAPI and CEL validation without storing anything.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { kubeConfig } from '../harness/clients.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import { DEFAULT_RENDER_OPTIONS, listFiles, renderFleet } from '../../shared/src/render/index.ts';

const MANIFESTS = join(import.meta.dirname, '../../manifests');
const FIELD_MANAGER = 'hwai-manifests-test';

function objectsIn(file: string): KubernetesObject[] {
  return parseAllDocuments(readFileSync(join(MANIFESTS, file), 'utf8'))
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

let client: KubernetesObjectApi;

async function apply(object: KubernetesObject, dryRun: 'All' | undefined): Promise<void> {
  await client.patch(object, undefined, dryRun, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
}

/** Null when accepted, else the apiserver's message. */
async function dryRunApply(object: KubernetesObject): Promise<string | null> {
  try {
    await apply(object, 'All');
    return null;
  } catch (e) {
    const body = (e as { body?: unknown }).body;
    return `${object.kind} ${object.metadata?.name}: ${typeof body === 'string' ? body : JSON.stringify(body ?? String(e))}`;
  }
}

beforeAll(async () => {
  client = KubernetesObjectApi.makeApiClient(kubeConfig('admin', { direct: true }));
  // Namespaced objects need their namespace to exist, even in a dry run.
  for (const ns of objectsIn('namespaces.yaml')) await apply(ns, undefined);
});

describe('manifests/ against kube-apiserver with the real CRDs', () => {
  const files = listFiles(MANIFESTS);

  it('holds every kind a fleet needs', () => {
    const kinds = new Set(files.flatMap((f) => objectsIn(f).map((o) => o.kind)));
    for (const kind of ['Namespace', 'EC2NodeClass', 'NodePool', 'TriggerAuthentication', 'Deployment', 'Service', 'ScaledObject', 'TargetGroupBinding', 'ClusterRole', 'ClusterRoleBinding']) {
      expect(kinds, kind).toContain(kind);
    }
  });

  it.each(files)('%s is accepted by a server-side dry run', async (file) => {
    const rejected = [];
    for (const object of objectsIn(file)) {
      const problem = await dryRunApply(object);
      if (problem) rejected.push(problem);
    }
    expect(rejected).toEqual([]);
  });

  it('a TargetGroupBinding with the ARN the stack resolves is accepted too', async () => {
    const arn = (name: string) => `arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/${name}/0123456789abcdef`;
    const manifests = renderFleet(loadFleetSpec(), { ...DEFAULT_RENDER_OPTIONS, targetGroupArn: (u) => arn(u.name) });
    const problems = await Promise.all(manifests.units.map((u) => dryRunApply(u.targetGroupBinding as KubernetesObject)));
    expect(problems.filter(Boolean)).toEqual([]);
  });

  it('node classes and pools for reserved and spot capacity are accepted too', async () => {
    const spec = loadFleetSpec();
    const units = spec.units.map((u, i) => ({ ...u, capacityType: i % 3 === 0 ? ('reserved' as const) : i % 3 === 1 ? ('spot' as const) : u.capacityType }));
    const manifests = renderFleet({ ...spec, units }, DEFAULT_RENDER_OPTIONS);
    const problems = await Promise.all([...manifests.nodeClasses, ...manifests.nodePools].map((o) => dryRunApply(o as KubernetesObject)));
    expect(problems.filter(Boolean)).toEqual([]);
  });

  it('the dry run does reject what the CRDs forbid (so an acceptance above means something)', async () => {
    const [pool] = objectsIn('karpenter.yaml').filter((o) => o.kind === 'NodePool');
    const broken = structuredClone(pool!) as KubernetesObject & { spec: { disruption: Record<string, unknown> } };
    broken.spec.disruption.consolidationPolicy = 'Sometimes';
    expect(await dryRunApply(broken)).toMatch(/consolidationPolicy/);
  });
});
