import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1LabelSelector, type V1Pod } from '@kubernetes/client-node';
import type { CallOptions, Clock, ClusterPort, UnitPods } from '../../reconcile/ports.ts';
import type { Unit } from '../../spec/schema.ts';
import { kubeCall, requestOptions } from './call.ts';
import { readScaledObject } from './scaled-object.ts';

/**
 * Pods of each unit: the unit's ScaledObject names the Deployment it scales; the Deployment's
 * selector finds the pods, listed once per namespace and selector however many units share it.
 * Desired is the Deployment's spec.replicas (what KEDA's HPA last asked for); ready pods have the
 * Ready condition True. A pod waits for capacity (pending) only when the scheduler said so:
 * PodScheduled False with reason Unschedulable, aged from its creation against the injected
 * clock. A pod that has a node but is not ready yet (pulling a multi-GB image, loading the
 * model) is starting, not short of capacity. Terminating and finished pods count as none.
 */
export class KubernetesCluster implements ClusterPort {
  private readonly custom: CustomObjectsApi;
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;

  constructor(
    kubeConfig: KubeConfig,
    private readonly clock: Clock,
  ) {
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Units without a scaledObject in the spec are left out: not observed, never guessed. */
  async readPods(units: ReadonlyArray<Unit>, options?: CallOptions): Promise<Record<string, UnitPods>> {
    const targets = await Promise.all(units.filter((u) => u.scaledObject).map((u) => this.scaleTarget(u, options)));
    const podLists = new Map<string, Promise<V1Pod[]>>();
    for (const t of targets) {
      const key = `${t.namespace}\n${t.selector}`;
      if (!podLists.has(key)) podLists.set(key, this.listPods(t.namespace, t.selector, options));
    }
    const now = this.clock.now();
    const result: Record<string, UnitPods> = {};
    for (const t of targets) {
      result[t.unit] = countPods(await podLists.get(`${t.namespace}\n${t.selector}`)!, t.desired, now);
    }
    return result;
  }

  private async scaleTarget(unit: Unit, options?: CallOptions): Promise<{ unit: string; namespace: string; selector: string; desired: number }> {
    const so = await readScaledObject(this.custom, unit, options);
    const { kind = 'Deployment', name } = so.spec.scaleTargetRef;
    const namespace = so.metadata.namespace;
    if (kind !== 'Deployment') throw new Error(`ScaledObject ${namespace}/${so.metadata.name} scales a ${kind}; hwai reads pods of Deployments only`);
    const deployment = await kubeCall(`Deployment ${namespace}/${name} (unit ${unit.name})`, () =>
      this.apps.readNamespacedDeployment({ namespace, name }, requestOptions(options)),
    );
    const spec = deployment.spec!;
    // Kubernetes defaults an omitted replicas to 1.
    return { unit: unit.name, namespace, selector: labelSelector(spec.selector), desired: spec.replicas ?? 1 };
  }

  private async listPods(namespace: string, labelSelector: string, options?: CallOptions): Promise<V1Pod[]> {
    const list = await kubeCall(`pods in ${namespace} matching ${labelSelector}`, () =>
      this.core.listNamespacedPod({ namespace, labelSelector }, requestOptions(options)),
    );
    return list.items;
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
      const created = pod.metadata?.creationTimestamp;
      if (created) counts.oldestPendingSeconds = Math.max(counts.oldestPendingSeconds, Math.floor((now - new Date(created).getTime()) / 1000));
    } else if (scheduled?.status === 'True' || pod.spec?.nodeName || phase === 'Running') {
      counts.startingPods++;
    }
  }
  return counts;
}

/** A Deployment's selector as a label-selector query (`a=b,c in (d,e),!f`). */
export function labelSelector(selector: V1LabelSelector): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') terms.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') terms.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') terms.push(e.key);
    else if (e.operator === 'DoesNotExist') terms.push(`!${e.key}`);
  }
  return terms.sort().join(',');
}
