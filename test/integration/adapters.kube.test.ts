// The Kubernetes adapters against the real apiserver, as the controller: every adapter call uses
// the restricted token of manifests/rbac/hwai-controller.yaml; the admin only prepares fixtures.
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { KubernetesCallError } from '../../shared/src/adapters/kubernetes/call.ts';
import { KubernetesCluster, selects } from '../../shared/src/adapters/kubernetes/cluster.ts';
import { FIELD_MANAGER, KedaAutoscaler } from '../../shared/src/adapters/kubernetes/keda-autoscaler.ts';
import { KarpenterSignals } from '../../shared/src/adapters/kubernetes/karpenter-signals.ts';
import { eksKubeConfig } from '../../shared/src/adapters/kubernetes/kubeconfig.ts';
import { UnitSchema, type Unit } from '../../shared/src/spec/schema.ts';
import { faults, freshNamespace, harness, kubeConfig, kubeFailure } from '../harness/clients.ts';
import { aPod, prepareUnit } from './adapters.fixtures.ts';

const KEDA = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };
const NODECLAIMS = { group: 'karpenter.sh', version: 'v1', plural: 'nodeclaims' };
const NODEPOOLS = { group: 'karpenter.sh', version: 'v1', plural: 'nodepools' };

const admin = kubeConfig('admin');
const adminCustom = admin.makeApiClient(CustomObjectsApi);
const adminCore = admin.makeApiClient(CoreV1Api);
const controller = kubeConfig('controller');

function aUnit(name: string, namespace: string, family = 'inf2'): Unit {
  return UnitSchema.parse({
    name,
    service: 'sd21',
    model: 'stable-diffusion-2-1',
    family,
    instanceType: `${family}.xlarge`,
    framework: family === 'inf2' ? 'neuron' : 'cuda',
    pricePerHour: 0.76,
    maxRpm: 105,
    latencySeconds: 0.85,
    scaledObject: { namespace, name },
  });
}

async function liveScaledObject(namespace: string, name: string) {
  return adminCustom.getNamespacedCustomObject({ ...KEDA, namespace, name });
}

describe('KedaAutoscaler: the ScaledObject fields hwai owns', () => {
  const autoscaler = new KedaAutoscaler(controller);
  let namespace: string;
  let unit: Unit;

  beforeAll(async () => {
    namespace = await freshNamespace('keda');
    await prepareUnit(namespace, 'sd21-inf2-neuron');
    unit = aUnit('sd21-inf2-neuron', namespace);
  });

  it('reads floor, ceiling and per-pod target of each unit, and leaves out units without a ScaledObject', async () => {
    // Act
    const scaling = await autoscaler.readScaling([unit, { ...unit, name: 'unmanaged', scaledObject: undefined }]);

    // Assess: KEDA's string target becomes a number.
    expect(scaling).toEqual({ 'sd21-inf2-neuron': { minReplicas: 1, maxReplicas: 20, targetRpm: 105 } });
  });

  it('changes floor, ceiling and target and leaves every other field as the operator wrote it', async () => {
    // Prepare
    const before = await liveScaledObject(namespace, unit.name);

    // Act: make before break — raise the floor, the ceiling and the target.
    await autoscaler.setScaling(unit, { minReplicas: 4, maxReplicas: 30, targetRpm: 94.5 });

    // Assess: read back through the API, as the controller and as the admin.
    expect(await autoscaler.readScaling([unit])).toEqual({ [unit.name]: { minReplicas: 4, maxReplicas: 30, targetRpm: 94.5 } });
    const after = await liveScaledObject(namespace, unit.name);
    expect(after.spec.triggers).toEqual([{ ...before.spec.triggers[0], metadata: { ...before.spec.triggers[0].metadata, targetMetricValue: '94.5' } }]);
    expect(after.spec.cooldownPeriod).toBe(300);
    expect(after.spec.scaleTargetRef).toEqual(before.spec.scaleTargetRef);
    expect(after.metadata.labels).toEqual({ 'team.example.com/owner': 'platform' });
    expect((after.metadata.managedFields as Array<{ manager: string }>).map((f) => f.manager)).toContain(FIELD_MANAGER);
  });

  it('writes nothing when the live fields already hold the wanted values', async () => {
    // Prepare
    await autoscaler.setScaling(unit, { minReplicas: 2, maxReplicas: 25, targetRpm: 100 });
    const before = await liveScaledObject(namespace, unit.name);
    const patchKey = `kube:PATCH /apis/keda.sh/v1alpha1/namespaces/${namespace}/scaledobjects/${unit.name}`;
    const patchesBefore = (await faults.counts())[patchKey] ?? 0;

    // Act
    await autoscaler.setScaling(unit, { minReplicas: 2, maxReplicas: 25, targetRpm: 100 });

    // Assess: no PATCH reached the apiserver and the object's version did not move.
    expect((await faults.counts())[patchKey] ?? 0).toBe(patchesBefore);
    expect((await liveScaledObject(namespace, unit.name)).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it('surfaces a 503 on the patch as an error naming the ScaledObject, and the object keeps its values', async () => {
    // Prepare
    const before = await autoscaler.readScaling([unit]);
    await faults.kube({ method: 'PATCH', path: /\/scaledobjects\/sd21-inf2-neuron$/, fault: { kind: 'server-error', status: 503 } });

    // Act
    const failure = autoscaler.setScaling(unit, { minReplicas: 9, maxReplicas: 40, targetRpm: 80 });

    // Assess
    await expect(failure).rejects.toThrow(KubernetesCallError);
    await expect(failure).rejects.toThrow(`patch ScaledObject ${namespace}/sd21-inf2-neuron (unit sd21-inf2-neuron): HTTP 503`);
    expect(await autoscaler.readScaling([unit])).toEqual(before);
  });

  it('keeps an edit made between its read and its write, and still applies its own fields', async () => {
    // Prepare: hwai's first patch is held in flight while an operator edits the ScaledObject.
    await faults.kube({ method: 'PATCH', path: /\/scaledobjects\/sd21-inf2-neuron$/, fault: { kind: 'delay', ms: 800 } });

    // Act
    const write = autoscaler.setScaling(unit, { minReplicas: 6, maxReplicas: 30, targetRpm: 100 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await kubeConfig('admin', { direct: true })
      .makeApiClient(CustomObjectsApi)
      .patchNamespacedCustomObject({ ...KEDA, namespace, name: unit.name, body: { spec: { cooldownPeriod: 120 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await write;

    // Assess: the stale patch was refused and retried on the new version; both writes stand.
    const live = await liveScaledObject(namespace, unit.name);
    expect(live.spec.cooldownPeriod).toBe(120);
    expect(await autoscaler.readScaling([unit])).toEqual({ [unit.name]: { minReplicas: 6, maxReplicas: 30, targetRpm: 100 } });
    const patches = (await faults.calls()).filter((c) => c.operation === `PATCH /apis/keda.sh/v1alpha1/namespaces/${namespace}/scaledobjects/${unit.name}`);
    expect(patches.slice(-2).map((c) => c.fault ?? 'none')).toEqual(['delay', 'none']);
  });

  it('does not retry a patch the apiserver refuses as invalid', async () => {
    // Prepare
    const patchKey = `kube:PATCH /apis/keda.sh/v1alpha1/namespaces/${namespace}/scaledobjects/${unit.name}`;
    const patchesBefore = (await faults.counts())[patchKey] ?? 0;

    // Act: a floor above the ceiling breaks KEDA's CEL rule.
    const refused = autoscaler.setScaling(unit, { minReplicas: 50, maxReplicas: 10, targetRpm: 100 });

    // Assess: one PATCH, refused with the apiserver's reason.
    await expect(refused).rejects.toThrow(/HTTP 422 .*minReplicaCount must be less than or equal to maxReplicaCount/);
    expect((await faults.counts())[patchKey]).toBe(patchesBefore + 1);
  });

  it('abandons a read in flight when the tick is aborted', async () => {
    // Prepare: the apiserver answers the ScaledObject list only after 5 s.
    await faults.kube({ method: 'GET', path: new RegExp(`/namespaces/${namespace}/scaledobjects$`), fault: { kind: 'delay', ms: 5000 } });
    const before = (await faults.calls()).length;
    const deadline = new AbortController();

    // Act: abort once the request has reached the apiserver's front.
    const read = autoscaler.readScaling([unit], { signal: deadline.signal });
    read.catch(() => undefined);
    while ((await faults.calls()).slice(before).every((c) => c.fault !== 'delay')) await new Promise((r) => setTimeout(r, 20));
    deadline.abort();

    // Assess
    await expect(read).rejects.toThrow(/aborted/i);
  });

  it('sends nothing when the tick is already aborted, from any Kubernetes adapter', async () => {
    // Prepare
    const call = { signal: AbortSignal.abort() };
    const before = (await faults.calls()).length;

    // Act
    const outcomes = await Promise.allSettled([
      autoscaler.readScaling([unit], call),
      autoscaler.setScaling(unit, { minReplicas: 3, maxReplicas: 30, targetRpm: 100 }, call),
      new KubernetesCluster(controller, { now: () => Date.now() }).readPods([unit], call),
      new KarpenterSignals(controller).readSignals(['inf2'], 0, call),
    ]);

    // Assess
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    for (const o of outcomes) expect(String((o as PromiseRejectedResult).reason)).toMatch(/abort/i);
    expect((await faults.calls()).slice(before)).toEqual([]);
  });
});

const UNSCHEDULABLE_SINCE = Math.floor(Date.now() / 1000) * 1000 - 600_000;

describe('KubernetesCluster: pods of each unit', () => {
  let namespace: string;
  let now = 0;
  const cluster = new KubernetesCluster(controller, { now: () => now });

  beforeAll(async () => {
    // Prepare: two units, their pods' statuses written as the kubelet and scheduler would.
    namespace = await freshNamespace('pods');
    await prepareUnit(namespace, 'sd21-inf2-neuron', 8);
    await prepareUnit(namespace, 'sd21-g5-cuda', 2);
    const scheduled = { type: 'PodScheduled', status: 'True' };
    const unschedulable = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient aws.amazon.com/neuron.' };
    const pods: Array<[string, string, V1Pod['status']]> = [
      ['inf2-ready-1', 'sd21-inf2-neuron', { phase: 'Running', conditions: [scheduled, { type: 'Ready', status: 'True' }] }],
      ['inf2-ready-2', 'sd21-inf2-neuron', { phase: 'Running', conditions: [scheduled, { type: 'Ready', status: 'True' }] }],
      // On a node, pulling a multi-GB image: starting, not short of capacity.
      ['inf2-pulling', 'sd21-inf2-neuron', { phase: 'Pending', conditions: [scheduled, { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady' }] }],
      // Running, loading the model: starting.
      ['inf2-loading', 'sd21-inf2-neuron', { phase: 'Running', conditions: [scheduled, { type: 'Ready', status: 'False' }] }],
      // The scheduler found no node: waiting for capacity.
      // The scheduler first said Unschedulable 10 minutes ago (the pod was recreated since).
      ['inf2-unschedulable-1', 'sd21-inf2-neuron', { phase: 'Pending', conditions: [{ ...unschedulable, lastTransitionTime: new Date(UNSCHEDULABLE_SINCE) }] }],
      ['inf2-unschedulable-2', 'sd21-inf2-neuron', { phase: 'Pending', conditions: [unschedulable] }],
      // Not looked at by the scheduler yet, and a pod that failed: neither.
      ['inf2-new', 'sd21-inf2-neuron', { phase: 'Pending' }],
      ['inf2-failed', 'sd21-inf2-neuron', { phase: 'Failed', conditions: [scheduled] }],
      ['g5-ready', 'sd21-g5-cuda', { phase: 'Running', conditions: [scheduled, { type: 'Ready', status: 'True' }] }],
    ];
    for (const [name, app, status] of pods) {
      const created = await adminCore.createNamespacedPod({ namespace, body: aPod(name, app, app) });
      await adminCore.replaceNamespacedPodStatus({ namespace, name, body: { ...created, status } });
    }
  });

  it('counts ready pods, pods waiting for capacity (unschedulable) and how long, and pods still starting', async () => {
    // Prepare: the clock stands 700 s after the first pod was found unschedulable; the second,
    // with no transition time, counts from its creation (just now), so the oldest is the first.
    now = UNSCHEDULABLE_SINCE + 700_000;

    // Act
    const pods = await cluster.readPods([aUnit('sd21-inf2-neuron', namespace), aUnit('sd21-g5-cuda', namespace, 'g5')]);

    // Assess: read back through the controller's RBAC, as the apiserver stores the statuses.
    expect(pods['sd21-inf2-neuron']).toEqual({ readyPods: 2, desiredPods: 8, pendingPods: 2, oldestPendingSeconds: 700, startingPods: 2 });
    expect(pods['sd21-g5-cuda']).toEqual({ readyPods: 1, desiredPods: 2, pendingPods: 0, oldestPendingSeconds: 0, startingPods: 0 });
  });

  it('lists ScaledObjects, Deployments and pods once for the namespace, however many units', async () => {
    // Prepare
    const before = (await faults.calls()).length;

    // Act
    await cluster.readPods([aUnit('sd21-inf2-neuron', namespace), aUnit('sd21-g5-cuda', namespace, 'g5')]);

    // Assess
    const calls = (await faults.calls()).slice(before).map((c) => c.operation).sort();
    expect(calls).toEqual([`GET /api/v1/namespaces/${namespace}/pods`, `GET /apis/apps/v1/namespaces/${namespace}/deployments`, `GET /apis/keda.sh/v1alpha1/namespaces/${namespace}/scaledobjects`]);
  });

  it('fails, naming it, when a unit’s ScaledObject is not there', async () => {
    await expect(cluster.readPods([aUnit('sd21-gone', namespace)])).rejects.toThrow(`ScaledObject ${namespace}/sd21-gone (unit sd21-gone): not found`);
  });
});

describe('the controller’s RBAC: reads by list, never watches', () => {
  it('is forbidden to watch the pods it lists', async () => {
    const namespace = await freshNamespace('watch');

    const status = await kubeFailure(controller.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, watch: true, timeoutSeconds: 1 }));

    expect(status).toMatchObject({ code: 403, reason: 'Forbidden' });
    expect(status.message).toContain('cannot watch resource "pods"');
  });
});

describe('selects: a Deployment selector against pod labels', () => {
  it.each([
    ['matchLabels, all equal', { matchLabels: { app: 'a', tier: 'x' } }, { app: 'a', tier: 'x', extra: '1' }, true],
    ['matchLabels, one differs', { matchLabels: { app: 'a', tier: 'x' } }, { app: 'a', tier: 'y' }, false],
    ['In', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['x', 'y'] }] }, { tier: 'y' }, true],
    ['In, label absent', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['x'] }] }, {}, false],
    ['NotIn, label absent', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['x'] }] }, {}, true],
    ['NotIn, excluded value', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['x'] }] }, { tier: 'x' }, false],
    ['Exists', { matchExpressions: [{ key: 'canary', operator: 'Exists' }] }, { canary: '' }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'canary', operator: 'DoesNotExist' }] }, { canary: '' }, false],
    ['labels and expressions together', { matchLabels: { app: 'a' }, matchExpressions: [{ key: 'canary', operator: 'DoesNotExist' }] }, { app: 'a' }, true],
    ['an unknown operator', { matchExpressions: [{ key: 'app', operator: 'Near', values: ['a'] }] }, { app: 'a' }, false],
  ])('%s', (_what, selector, labels, expected) => {
    expect(selects(selector, labels as Record<string, string>)).toBe(expected);
  });
});

describe('KarpenterSignals: pools Karpenter could not get capacity for', () => {
  const signals = new KarpenterSignals(controller);
  const since = Date.now() - 60_000;

  async function aNodeClaim(name: string, labels: Record<string, string>, requirements: unknown[]) {
    return adminCustom.createClusterCustomObject({
      ...NODECLAIMS,
      body: { apiVersion: 'karpenter.sh/v1', kind: 'NodeClaim', metadata: { name, labels }, spec: { nodeClassRef: { group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: 'default' }, requirements } },
    });
  }

  async function anIceEvent(nodeClaim: string, message: string, at: Date) {
    await adminCore.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { name: `${nodeClaim}.${at.getTime().toString(16)}` },
        involvedObject: { apiVersion: 'karpenter.sh/v1', kind: 'NodeClaim', name: nodeClaim },
        reason: 'InsufficientCapacityError',
        type: 'Warning',
        message: `NodeClaim ${nodeClaim} event: ${message}`,
        source: { component: 'karpenter' },
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
      },
    });
  }

  beforeAll(async () => {
    // Prepare: the NodePools Karpenter launches from.
    for (const [pool, family] of [['gpu-g5', 'g5'], ['neuron', 'inf2']] as const) {
      await adminCustom.createClusterCustomObject({
        ...NODEPOOLS,
        body: {
          apiVersion: 'karpenter.sh/v1',
          kind: 'NodePool',
          metadata: { name: pool },
          spec: { template: { spec: { nodeClassRef: { group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: 'default' }, requirements: [{ key: 'karpenter.k8s.aws/instance-family', operator: 'In', values: [family] }] } } },
        },
      });
    }
  });

  it('maps an InsufficientCapacityError event naming an instance type to its family', async () => {
    // Prepare: Karpenter v1's event after a CreateFleet refusal; the NodeClaim is already deleted.
    const at = new Date(Math.floor(Date.now() / 1000) * 1000);
    await anIceEvent(
      'gpu-g5-x7k2p',
      'creating instance, insufficient capacity, with fleet error(s), InsufficientInstanceCapacity: We currently do not have sufficient g5.12xlarge capacity in the Availability Zone you requested (us-east-1a).',
      at,
    );

    // Act
    const found = await signals.readSignals(['g5', 'inf2'], since);

    // Assess
    expect(found).toContainEqual(expect.objectContaining({ family: 'g5', kind: 'insufficient-capacity', at: at.getTime() }));
    expect(found.filter((s) => s.detail?.includes('gpu-g5-x7k2p')).map((s) => s.family)).toEqual(['g5']);
  });

  it('maps an event that names no instance type to the family of the NodePool the NodeClaim came from', async () => {
    // Prepare
    const at = new Date(Math.floor(Date.now() / 1000) * 1000);
    await anIceEvent('neuron-q8w4z', 'creating instance, insufficient capacity, all requested instance types were unavailable during launch', at);

    // Act
    const found = await signals.readSignals(['g5', 'inf2'], since);

    // Assess
    expect(found.filter((s) => s.detail?.includes('neuron-q8w4z')).map((s) => [s.family, s.at])).toEqual([['inf2', at.getTime()]]);
  });

  it('reports a NodeClaim whose launch failed for want of capacity, with the family of its label', async () => {
    // Prepare: a NodeClaim with Launched=False, its status written as Karpenter would.
    const claim = await aNodeClaim('neuron-m3n9v', { 'karpenter.k8s.aws/instance-family': 'inf2', 'karpenter.sh/nodepool': 'neuron' }, [
      { key: 'node.kubernetes.io/instance-type', operator: 'In', values: ['inf2.xlarge', 'inf2.8xlarge'] },
    ]);
    const transition = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
    await adminCustom.replaceClusterCustomObjectStatus({
      ...NODECLAIMS,
      name: 'neuron-m3n9v',
      body: {
        ...claim,
        status: { conditions: [{ type: 'Launched', status: 'False', reason: 'InsufficientCapacity', message: 'all requested instance types were unavailable during launch', lastTransitionTime: transition }] },
      },
    });

    // Act
    const found = await signals.readSignals(['g5', 'inf2'], since);

    // Assess
    expect(found).toContainEqual({ family: 'inf2', kind: 'insufficient-capacity', at: Date.parse(transition), detail: expect.stringContaining('NodeClaim neuron-m3n9v not launched') });
  });

  it('ignores launched NodeClaims, older refusals and families it was not asked about', async () => {
    // Prepare: a healthy g6 NodeClaim, and an ICE event from before `since`.
    const claim = await aNodeClaim('gpu-g6-p2r5t', {}, [{ key: 'karpenter.k8s.aws/instance-family', operator: 'In', values: ['g6'] }]);
    await adminCustom.replaceClusterCustomObjectStatus({
      ...NODECLAIMS,
      name: 'gpu-g6-p2r5t',
      body: { ...claim, status: { conditions: [{ type: 'Launched', status: 'True', reason: 'Launched', message: '', lastTransitionTime: new Date().toISOString() }] } },
    });
    await anIceEvent('gpu-g5-old11', 'creating instance, insufficient capacity, InsufficientInstanceCapacity: We currently do not have sufficient g5.xlarge capacity', new Date(since - 600_000));

    // Act
    const found = await signals.readSignals(['inf2'], since);

    // Assess
    expect(found.every((s) => s.family === 'inf2')).toBe(true);
    expect(found.some((s) => s.detail?.includes('gpu-g6-p2r5t') || s.detail?.includes('gpu-g5-old11'))).toBe(false);
  });
});

describe('eksKubeConfig: an EKS cluster reached with a token provider', () => {
  it('asks the provider for a token on every request', async () => {
    // Prepare: the harness apiserver stands in for the EKS endpoint; the provider hands out the controller's token.
    const h = harness();
    let asked = 0;
    const kc = eksKubeConfig({
      name: 'hwai-harness',
      endpoint: h.kubeEndpoint,
      certificateAuthorityData: Buffer.from(h.kubeCaPem).toString('base64'),
      token: async () => (asked++, h.controllerToken),
    });
    const namespace = await freshNamespace('eks');
    await prepareUnit(namespace, 'sd21-inf2-neuron');

    // Act
    const autoscaler = new KedaAutoscaler(kc);
    await autoscaler.readScaling([aUnit('sd21-inf2-neuron', namespace)]);
    await autoscaler.readScaling([aUnit('sd21-inf2-neuron', namespace)]);

    // Assess
    expect(asked).toBe(2);
  });
});
