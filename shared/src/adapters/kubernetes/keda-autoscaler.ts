import { CustomObjectsApi, PatchStrategy, type KubeConfig } from '@kubernetes/client-node';
import type { UnitScaling } from '../../core/types.ts';
import type { AutoscalerPort, CallOptions } from '../../reconcile/ports.ts';
import type { Unit } from '../../spec/schema.ts';
import { kubeCall, requestOptions, type KubernetesCallError } from './call.ts';
import { readScaledObject, SCALED_OBJECTS, ScaledObjectLists, scaledObjectRef, type ScaledObject } from './scaled-object.ts';

/** The field manager of every write hwai makes; managedFields show it beside the operator's. */
export const FIELD_MANAGER = 'hwai-controller';
/** The trigger whose target hwai owns: per-pod requests per minute from CloudWatch. */
export const SCALING_TRIGGER = 'aws-cloudwatch';
/** KEDA's defaults when the ScaledObject leaves the counts out. */
const KEDA_DEFAULT_MIN = 0;
const KEDA_DEFAULT_MAX = 100;

/**
 * The ScaledObject fields hwai owns: minReplicaCount, maxReplicaCount and the aws-cloudwatch
 * trigger's targetMetricValue.
 *
 * Why a JSON Patch and not server-side apply: KEDA's CRD declares `spec.triggers` as a plain
 * array with no `x-kubernetes-list-type`, which Kubernetes treats as atomic. Applying one field
 * of a trigger would make hwai own the whole list and replace it with hwai's partial entry,
 * dropping the operator's metricName, dimensions and region (a JSON merge patch has the same
 * problem: it replaces arrays whole). So setScaling reads the object, and sends an RFC 6902
 * patch that tests the resourceVersion it read and replaces only the fields that differ
 * (optimistic concurrency: a write in between fails the test, and hwai re-reads and patches the
 * new version once, so neither write is lost).
 * Equal values send nothing, so a steady tick writes nothing. The fixed field manager still
 * records hwai in managedFields (as an Update).
 */
export class KedaAutoscaler implements AutoscalerPort {
  private readonly api: CustomObjectsApi;
  private readonly lists: ScaledObjectLists;

  constructor(kubeConfig: KubeConfig) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.lists = ScaledObjectLists.for(kubeConfig);
  }

  /** Units without a scaledObject in the spec are left out: not observed, never guessed. */
  async readScaling(units: ReadonlyArray<Unit>, options?: CallOptions): Promise<Record<string, UnitScaling>> {
    const objects = await this.lists.read(units.filter((u) => u.scaledObject), options);
    return Object.fromEntries([...objects].map(([unit, so]) => [unit, scalingOf(so)]));
  }

  async setScaling(unit: Unit, scaling: UnitScaling, options?: CallOptions): Promise<void> {
    const ref = scaledObjectRef(unit);
    for (let attempt = 1; ; attempt++) {
      const live = await readScaledObject(this.api, unit, options);
      const changes = scalingPatch(live, scaling);
      if (changes.length === 0) return;
      const body = [{ op: 'test', path: '/metadata/resourceVersion', value: live.metadata.resourceVersion }, ...changes];
      try {
        await kubeCall(`patch ScaledObject ${ref.namespace}/${ref.name} (unit ${unit.name})`, () =>
          this.api.patchNamespacedCustomObject({ ...SCALED_OBJECTS, ...ref, body, fieldManager: FIELD_MANAGER }, requestOptions(options, PatchStrategy.JsonPatch)),
        );
        return;
      } catch (error) {
        // A failed `test` answers a bare 422. If the object moved since the read, someone else
        // wrote in between: read again and patch their version, once; otherwise it is a real refusal.
        if (attempt > 1 || (error as KubernetesCallError).code !== 422) throw error;
        const now = await readScaledObject(this.api, unit, options);
        if (now.metadata.resourceVersion === live.metadata.resourceVersion) throw error;
      }
    }
  }
}

export function scalingOf(so: ScaledObject): UnitScaling {
  const { trigger } = scalingTrigger(so);
  const raw = trigger.metadata.targetMetricValue;
  const targetRpm = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(targetRpm)) {
    throw new Error(`ScaledObject ${so.metadata.namespace}/${so.metadata.name}: ${SCALING_TRIGGER} trigger's targetMetricValue is ${JSON.stringify(raw)}, expected a number`);
  }
  return {
    minReplicas: so.spec.minReplicaCount ?? KEDA_DEFAULT_MIN,
    maxReplicas: so.spec.maxReplicaCount ?? KEDA_DEFAULT_MAX,
    targetRpm,
  };
}

type PatchOp = { op: 'add'; path: string; value: unknown };

/** The JSON Patch operations that move `so` to `wanted`; empty when nothing differs. */
export function scalingPatch(so: ScaledObject, wanted: UnitScaling): PatchOp[] {
  const live = scalingOf(so);
  const { index } = scalingTrigger(so);
  const ops: PatchOp[] = [];
  // `add` replaces an object member when present and creates it where KEDA's default applied.
  if (live.minReplicas !== wanted.minReplicas) ops.push({ op: 'add', path: '/spec/minReplicaCount', value: wanted.minReplicas });
  if (live.maxReplicas !== wanted.maxReplicas) ops.push({ op: 'add', path: '/spec/maxReplicaCount', value: wanted.maxReplicas });
  if (live.targetRpm !== wanted.targetRpm) ops.push({ op: 'add', path: `/spec/triggers/${index}/metadata/targetMetricValue`, value: String(wanted.targetRpm) });
  return ops;
}

function scalingTrigger(so: ScaledObject): { trigger: ScaledObject['spec']['triggers'][number]; index: number } {
  const index = so.spec.triggers.findIndex((t) => t.type === SCALING_TRIGGER);
  if (index < 0) {
    const types = so.spec.triggers.map((t) => t.type).join(', ');
    throw new Error(`ScaledObject ${so.metadata.namespace}/${so.metadata.name}: no ${SCALING_TRIGGER} trigger (found ${types || 'none'})`);
  }
  return { trigger: so.spec.triggers[index]!, index };
}
