// The Kubernetes half of the harness is real: kube-apiserver enforces the KEDA, Karpenter and
// Load Balancer Controller schemas (OpenAPI and CEL), and RBAC from manifests/rbac.
import { AppsV1Api, CoreV1Api, CustomObjectsApi, EventsV1Api, PatchStrategy, setHeaderOptions, type V1Deployment } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig, kubeFailure } from '../harness/clients.ts';

const KEDA = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };
const NODEPOOLS = { group: 'karpenter.sh', version: 'v1', plural: 'nodepools' };
const NODECLAIMS = { group: 'karpenter.sh', version: 'v1', plural: 'nodeclaims' };
const TGB = { group: 'elbv2.k8s.aws', version: 'v1beta1', plural: 'targetgroupbindings' };

function scaledObject(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', metadata: { name }, spec };
}

const validScaledObjectSpec = {
  scaleTargetRef: { name: 'sd21-inf2-neuron' },
  minReplicaCount: 1,
  maxReplicaCount: 20,
  triggers: [
    {
      type: 'aws-cloudwatch',
      metadata: { namespace: 'hw-agnostic-infer', metricName: 'requests', dimensionName: 'unit', dimensionValue: 'sd21-inf2-neuron', targetMetricValue: '105', awsRegion: 'us-east-1' },
    },
  ],
};

function nodePool(name: string, requirements: unknown[]) {
  return {
    apiVersion: 'karpenter.sh/v1',
    kind: 'NodePool',
    metadata: { name },
    spec: { template: { spec: { nodeClassRef: { group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: 'default' }, requirements } } },
  };
}

function deployment(name: string): V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'server', image: 'public.ecr.aws/hwai/sd21:test' }] } } },
  };
}

describe('CRD schemas are enforced by the apiserver', () => {
  const custom = kubeConfig('admin').makeApiClient(CustomObjectsApi);
  let namespace: string;
  beforeAll(async () => {
    namespace = await freshNamespace('schemas');
  });

  it('rejects a ScaledObject that violates the KEDA schema and accepts a valid one', async () => {
    // Act: a negative floor and no triggers, then the seed's inf2 unit.
    const invalid = await kubeFailure(custom.createNamespacedCustomObject({ ...KEDA, namespace, body: scaledObject('broken', { scaleTargetRef: { name: 'x' }, minReplicaCount: -1 }) }));
    const created = await custom.createNamespacedCustomObject({ ...KEDA, namespace, body: scaledObject('sd21-inf2-neuron', validScaledObjectSpec) });

    // Assess: 422 naming both violations; the valid one reads back as written.
    expect(invalid).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(invalid.message).toContain('spec.minReplicaCount in body should be greater than or equal to 0');
    expect(invalid.message).toContain('spec.triggers: Required value');
    expect(created.metadata.name).toBe('sd21-inf2-neuron');
    const read = await custom.getNamespacedCustomObject({ ...KEDA, namespace, name: 'sd21-inf2-neuron' });
    expect(read.spec.triggers[0].metadata.targetMetricValue).toBe('105');
  });

  it('validates a Karpenter v1 NodePool, including its CEL rules', async () => {
    // Act
    const valid = await custom.createClusterCustomObject({
      ...NODEPOOLS,
      body: nodePool('inf2', [{ key: 'karpenter.k8s.aws/instance-family', operator: 'In', values: ['inf2'] }]),
    });
    const invalid = await kubeFailure(
      custom.createClusterCustomObject({ ...NODEPOOLS, body: nodePool('empty-in', [{ key: 'karpenter.k8s.aws/instance-family', operator: 'In', values: [] }]) }),
    );

    // Assess
    expect(valid.metadata.name).toBe('inf2');
    expect(invalid).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(invalid.message).toContain("requirements with operator 'In' must have a value defined");
  });

  it('validates a TargetGroupBinding (v1beta1) and rejects an unknown target type', async () => {
    const binding = (name: string, targetType: string) => ({
      apiVersion: 'elbv2.k8s.aws/v1beta1',
      kind: 'TargetGroupBinding',
      metadata: { name },
      spec: { serviceRef: { name: 'sd21-inf2-neuron', port: 80 }, targetGroupARN: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/sd21-inf2-neuron/0123456789abcdef', targetType },
    });

    // Act
    const valid = await custom.createNamespacedCustomObject({ ...TGB, namespace, body: binding('sd21-inf2-neuron', 'ip') });
    const invalid = await kubeFailure(custom.createNamespacedCustomObject({ ...TGB, namespace, body: binding('bad', 'pod') }));

    // Assess
    expect(valid.spec.targetType).toBe('ip');
    expect(invalid).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(invalid.message).toContain('spec.targetType: Unsupported value: "pod"');
  });
});

describe('the controller token holds exactly the RBAC of manifests/rbac/hwai-controller.yaml', () => {
  const admin = kubeConfig('admin');
  const controller = kubeConfig('controller');
  let namespace: string;

  beforeAll(async () => {
    // Prepare: a unit's Deployment and ScaledObject, created by an administrator.
    namespace = await freshNamespace('rbac');
    await admin.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace, body: deployment('sd21-inf2-neuron') });
    await admin.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ ...KEDA, namespace, body: scaledObject('sd21-inf2-neuron', validScaledObjectSpec) });
  });

  const denied: Array<[string, () => Promise<unknown>]> = [
    ['delete a Deployment', () => controller.makeApiClient(AppsV1Api).deleteNamespacedDeployment({ namespace, name: 'sd21-inf2-neuron' })],
    ['scale a Deployment', () =>
      controller.makeApiClient(AppsV1Api).patchNamespacedDeploymentScale({ namespace, name: 'sd21-inf2-neuron', body: { spec: { replicas: 5 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))],
    ['create a ScaledObject', () => controller.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ ...KEDA, namespace, body: scaledObject('rogue', validScaledObjectSpec) })],
    ['delete a ScaledObject', () => controller.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ ...KEDA, namespace, name: 'sd21-inf2-neuron' })],
    ['read Secrets', () => controller.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace })],
    ['delete a NodeClaim', () => controller.makeApiClient(CustomObjectsApi).deleteCollectionClusterCustomObject(NODECLAIMS)],
  ];

  it.each(denied)('is forbidden to %s', async (_what, act) => {
    const status = await kubeFailure(act());
    expect(status).toMatchObject({ code: 403, reason: 'Forbidden' });
    expect(status.message).toContain('User "hwai-controller-lambda" cannot');
  });

  it('leaves the Deployment and the ScaledObject in place after the forbidden calls', async () => {
    await expect(admin.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name: 'sd21-inf2-neuron' })).resolves.toBeDefined();
    await expect(admin.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ ...KEDA, namespace, name: 'sd21-inf2-neuron' })).resolves.toBeDefined();
  });

  const allowed: Array<[string, () => Promise<unknown>]> = [
    ['list pods', () => controller.makeApiClient(CoreV1Api).listNamespacedPod({ namespace })],
    ['read a Deployment', () => controller.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name: 'sd21-inf2-neuron' })],
    ['list events in every namespace', () => controller.makeApiClient(CoreV1Api).listEventForAllNamespaces()],
    ['list events.k8s.io events', () => controller.makeApiClient(EventsV1Api).listEventForAllNamespaces()],
    ['list NodeClaims', () => controller.makeApiClient(CustomObjectsApi).listClusterCustomObject(NODECLAIMS)],
    ['list NodePools', () => controller.makeApiClient(CustomObjectsApi).listClusterCustomObject(NODEPOOLS)],
    ['list ScaledObjects', () => controller.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ ...KEDA, namespace })],
  ];

  it.each(allowed)('may %s', async (_what, act) => {
    await expect(act()).resolves.toBeDefined();
  });

  it('may patch its own ScaledObject fields with server-side apply', async () => {
    // Act: raise the floor (make before break), as the controller's field manager.
    await controller.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
      {
        ...KEDA,
        namespace,
        name: 'sd21-inf2-neuron',
        body: { apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', metadata: { name: 'sd21-inf2-neuron' }, spec: { minReplicaCount: 3 } },
        fieldManager: 'hwai-controller',
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );

    // Assess: the floor moved and hwai's manager owns it; the rest of the spec is untouched.
    const live = await admin.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ ...KEDA, namespace, name: 'sd21-inf2-neuron' });
    expect(live.spec.minReplicaCount).toBe(3);
    expect(live.spec.maxReplicaCount).toBe(20);
    const managers = (live.metadata.managedFields as Array<{ manager: string; operation: string }>).map((f) => `${f.manager}:${f.operation}`);
    expect(managers).toContain('hwai-controller:Apply');
  });
});
