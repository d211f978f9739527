import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { SingleFlight } from '../single-flight.ts';
import type { Unit } from '../../spec/schema.ts';
import type { CallOptions } from '../../reconcile/ports.ts';
import { kubeCall, requestOptions } from './call.ts';

/** The parts of a KEDA ScaledObject (keda.sh/v1alpha1) the adapters read. */
export interface ScaledObject {
  metadata: { name: string; namespace: string; resourceVersion: string };
  spec: {
    scaleTargetRef: { name: string; kind?: string; apiVersion?: string };
    minReplicaCount?: number;
    maxReplicaCount?: number;
    triggers: Array<{ type: string; metadata: Record<string, string> }>;
  };
}

export const SCALED_OBJECTS = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' } as const;

export function scaledObjectRef(unit: Unit): { namespace: string; name: string } {
  if (!unit.scaledObject) throw new Error(`unit ${unit.name}: the fleet spec names no scaledObject {namespace, name}`);
  return unit.scaledObject;
}

export async function readScaledObject(api: CustomObjectsApi, unit: Unit, options?: CallOptions): Promise<ScaledObject> {
  const ref = scaledObjectRef(unit);
  return kubeCall(`ScaledObject ${ref.namespace}/${ref.name} (unit ${unit.name})`, () =>
    api.getNamespacedCustomObject({ ...SCALED_OBJECTS, ...ref }, requestOptions(options)) as Promise<ScaledObject>,
  );
}

/**
 * The ScaledObjects of units, one LIST per namespace however many units live there (a GET per
 * unit would cost a call per unit per tick). One instance per KubeConfig, so the autoscaler and
 * the cluster adapter reading in the same tick share the list in flight. A unit whose
 * ScaledObject is not there fails the read, naming it, as a GET's 404 would.
 */
export class ScaledObjectLists {
  private static readonly byConfig = new WeakMap<KubeConfig, ScaledObjectLists>();
  private readonly flights = new SingleFlight<ScaledObject[]>();

  static for(kubeConfig: KubeConfig): ScaledObjectLists {
    let lists = ScaledObjectLists.byConfig.get(kubeConfig);
    if (!lists) ScaledObjectLists.byConfig.set(kubeConfig, (lists = new ScaledObjectLists(kubeConfig.makeApiClient(CustomObjectsApi))));
    return lists;
  }

  private constructor(private readonly api: CustomObjectsApi) {}

  async read(units: ReadonlyArray<Unit>, options?: CallOptions): Promise<Map<string, ScaledObject>> {
    const byNamespace = await listPerNamespace(
      units.map((u) => scaledObjectRef(u).namespace),
      (namespace) =>
        this.flights.run(namespace, () =>
          kubeCall(`ScaledObjects in ${namespace}`, () => this.api.listNamespacedCustomObject({ ...SCALED_OBJECTS, namespace }, requestOptions(options)) as Promise<{ items: ScaledObject[] }>).then(
            (l) => l.items,
          ),
        ),
    );
    const found = new Map<string, ScaledObject>();
    for (const unit of units) {
      const ref = scaledObjectRef(unit);
      const so = byNamespace.get(ref.namespace)!.find((o) => o.metadata.name === ref.name);
      if (!so) throw new ScaledObjectNotFoundError(`ScaledObject ${ref.namespace}/${ref.name} (unit ${unit.name}): not found`);
      found.set(unit.name, so);
    }
    return found;
  }
}

export class ScaledObjectNotFoundError extends Error {
  override name = 'ScaledObjectNotFoundError';
}

/** One `list` per distinct namespace, in parallel: namespace → its items. */
export async function listPerNamespace<T>(namespaces: ReadonlyArray<string>, list: (namespace: string) => Promise<T[]>): Promise<Map<string, T[]>> {
  const distinct = [...new Set(namespaces)];
  const lists = await Promise.all(distinct.map(list));
  return new Map(distinct.map((n, i) => [n, lists[i]!]));
}
