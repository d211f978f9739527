import type { PoolSignal } from '../core/types.ts';
import type { CallOptions, CapacitySignalsPort } from '../reconcile/ports.ts';

/**
 * Several sources of capacity signals (EC2, Kubernetes) as one port. Read in parallel; if any
 * source fails the whole read fails, so the tick records "capacity-signals" as missing rather
 * than deciding on half the signals.
 */
export function combineSignals(...ports: ReadonlyArray<CapacitySignalsPort>): CapacitySignalsPort {
  return {
    async readSignals(families: ReadonlyArray<string>, since: number, options?: CallOptions): Promise<PoolSignal[]> {
      const all = await Promise.all(ports.map((p) => p.readSignals(families, since, options)));
      return all.flat().sort((a, b) => a.at - b.at || a.family.localeCompare(b.family));
    },
  };
}
