import type { CustomObjectsApi } from '@kubernetes/client-node';
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
