import type { PolicySettings, Unit } from '../spec/schema.ts';
import type { ServiceState, UnitObservation, UnitScaling } from '../core/types.ts';

/** What a policy sees: one service, its units, what was observed, and the state after pool updates. */
export interface PolicyContext {
  service: string;
  units: ReadonlyArray<Unit>;
  observed: ReadonlyMap<string, UnitObservation>;
  demandRpm: number | null;
  /** Per-minute demand of the service, oldest first (the observation's); [] when unknown. */
  demandHistory: ReadonlyArray<[number, number]>;
  settings: PolicySettings;
  state: ServiceState;
  now: number;
}

/** What a policy wants; the safety rules and the floors of probes are applied after it. */
export interface PolicyProposal {
  mode: 'cost' | 'capacity';
  /** Non-negative shares per unit, any scale. */
  shares: Record<string, number>;
  scaling: Record<string, UnitScaling>;
  reasons: string[];
  /** Fields of the service state the policy changes (mode bookkeeping, floors). */
  state: Partial<ServiceState>;
}

export type Policy = (ctx: PolicyContext) => PolicyProposal;
