import { AppsV1Api, CoreV1Api, type KubeConfig, type V1LabelSelector, type V1Pod } from '@kubernetes/client-node';
import type { CallOptions, Clock, ClusterPort, UnitPods } from '../../reconcile/ports.ts';
import type { Unit } from '../../spec/schema.ts';
import { kubeCall, requestOptions } from './call.ts';
import { listPerNamespace, ScaledObjectLists } from './scaled-object.ts';

/**
 * Pods of each unit: the unit's ScaledObject names the Deployment it scales; the Deployment's
 * selector finds the pods. ScaledObjects, Deployments and pods are each listed once per
 * namespace (three calls for a fleet in one namespace, however many units), and the selectors
 * are matched here. Desired is the Deployment's spec.replicas (what KEDA's HPA last asked for);
 * ready pods have the Ready condition True. A pod waits for capacity (pending) only when the
 * scheduler said so: PodScheduled False with reason Unschedulable, aged from that condition's
 * transition (else the pod's creation) against the injected clock. A pod that has a node but is
 * not ready yet (pulling a multi-GB image, loading the model) is starting, not short of capacity.
 * Terminating and finished pods count as none.
 */
export class KubernetesCluster implements ClusterPort {
  private readonly scaledObjects: ScaledObjectLists;
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;

  constructor(
    kubeConfig: KubeConfig,
    private readonly clock: Clock,
  ) {
    this.scaledObjects = ScaledObjectLists.for(kubeConfig);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Units without a scaledObject in the spec are left out: not observed, never guessed. */
  async readPods(units: ReadonlyArray<Unit>, options?: CallOptions): Promise<Record<string, UnitPods>> {
    const scaled = units.filter((u) => u.scaledObject);
    const objects = await this.scaledObjects.read(scaled, options);
    const targets = scaled.map((u) => {
      const so = objects.get(u.name)!;
      const { kind = 'Deployment', name } = so.spec.scaleTargetRef;
      if (kind !== 'Deployment') throw new Error(`ScaledObject ${so.metadata.namespace}/${so.metadata.name} scales a ${kind}; hwai reads pods of Deployments only`);
      return { unit: u.name, namespace: so.metadata.namespace, deployment: name };
    });
    const namespaces = targets.map((t) => t.namespace);
    const call = requestOptions(options);
    const [deployments, pods] = await Promise.all([
      listPerNamespace(namespaces, (namespace) => kubeCall(`Deployments in ${namespace}`, () => this.apps.listNamespacedDeployment({ namespace }, call)).then((l) => l.items)),
      listPerNamespace(namespaces, (namespace) => kubeCall(`pods in ${namespace}`, () => this.core.listNamespacedPod({ namespace }, call)).then((l) => l.items)),
    ]);
    const now = this.clock.now();
    const result: Record<string, UnitPods> = {};
    for (const t of targets) {
      const deployment = deployments.get(t.namespace)!.find((d) => d.metadata?.name === t.deployment);
      if (!deployment?.spec) throw new Error(`Deployment ${t.namespace}/${t.deployment} (unit ${t.unit}): not found`);
      const selected = pods.get(t.namespace)!.filter((p) => selects(deployment.spec!.selector, p.metadata?.labels ?? {}));
      // Kubernetes defaults an omitted replicas to 1.
      result[t.unit] = countPods(selected, deployment.spec.replicas ?? 1, now);
    }
    return result;
  }
}

export function countPods(pods: ReadonlyArray<V1Pod>, desiredPods: number, now: number): UnitPods {
  const counts: UnitPods = { readyPods: 0, desiredPods, pendingPods: 0, oldestPendingSeconds: 0, startingPods: 0 };
  for (const pod of pods) {
    const phase = pod.status?.phase;
    if (pod.metadata?.deletionTimestamp || phase === 'Succeeded' || phase === 'Failed') continue;
    const condition = (type: string) => pod.status?.conditions?.find((c) => c.type === type);
    const scheduled = condition('PodScheduled');
    if (phase === 'Running' && condition('Ready')?.status === 'True') {
      counts.readyPods++;
    } else if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      counts.pendingPods++;
      // Waiting since the scheduler first said Unschedulable (the condition's transition), else
      // since creation: the same in a cluster, and a time the twin can set where it cannot set
      // creationTimestamp (the apiserver stamps it).
      const since = scheduled.lastTransitionTime ?? pod.metadata?.creationTimestamp;
      if (since) counts.oldestPendingSeconds = Math.max(counts.oldestPendingSeconds, Math.floor((now - new Date(since).getTime()) / 1000));
    } else if (scheduled?.status === 'True' || pod.spec?.nodeName || phase === 'Running') {
      counts.startingPods++;
    }
  }
  return counts;
}

/** Whether a label selector (matchLabels and matchExpressions, ANDed) selects these labels. */
export function selects(selector: V1LabelSelector, labels: Record<string, string>): boolean {
  const matchLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return (
    matchLabels &&
    (selector.matchExpressions ?? []).every((e) => {
      const has = Object.hasOwn(labels, e.key);
      const values = e.values ?? [];
      switch (e.operator) {
        case 'In':
          return has && values.includes(labels[e.key]!);
        case 'NotIn':
          return !has || !values.includes(labels[e.key]!);
        case 'Exists':
          return has;
        case 'DoesNotExist':
          return !has;
        default:
          return false; // an operator Kubernetes does not define selects nothing
      }
    })
  );
}
