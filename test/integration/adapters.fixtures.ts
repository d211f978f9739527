// Fixtures the adapter tests share: a unit's Deployment, ScaledObject and pods on the harness
// apiserver, written by the admin as an operator, the kubelet and the scheduler would.
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { kubeConfig } from '../harness/clients.ts';

const KEDA = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };

/** A unit's Deployment and its ScaledObject as an operator writes them (KEDA aws-cloudwatch trigger). */
export async function prepareUnit(namespace: string, name: string, replicas = 3): Promise<void> {
  const labels = { app: name };
  const admin = kubeConfig('admin');
  await admin.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace,
    body: { metadata: { name }, spec: { replicas, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'server', image: 'public.ecr.aws/hwai/sd21:test' }] } } } },
  });
  await admin.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    ...KEDA,
    namespace,
    body: {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name, labels: { 'team.example.com/owner': 'platform' } },
      spec: {
        scaleTargetRef: { name },
        minReplicaCount: 1,
        maxReplicaCount: 20,
        cooldownPeriod: 300,
        triggers: [
          {
            type: 'aws-cloudwatch',
            metadata: { namespace: 'hw-agnostic-infer', metricName: 'requests', dimensionName: 'unit', dimensionValue: name, targetMetricValue: '105', awsRegion: 'us-east-1' },
          },
        ],
      },
    },
  });
}

export function aPod(name: string, app: string, owner: string): V1Pod {
  return { metadata: { name, labels: { app }, annotations: { 'hwai.dev/owner': owner } }, spec: { containers: [{ name: 'server', image: 'public.ecr.aws/hwai/sd21:test' }] } };
}

/** `ready` pods of a unit's Deployment, Running and Ready on a node. */
export async function readyPods(namespace: string, unit: string, ready: number): Promise<void> {
  const core = kubeConfig('admin').makeApiClient(CoreV1Api);
  for (let i = 0; i < ready; i++) {
    const name = `${unit}-${i}`;
    const created = await core.createNamespacedPod({ namespace, body: aPod(name, unit, unit) });
    const status = { phase: 'Running', conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True' }] };
    await core.replaceNamespacedPodStatus({ namespace, name, body: { ...created, status } });
  }
}
