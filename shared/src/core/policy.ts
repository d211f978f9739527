import type { PolicyKind, PolicySettings, Unit } from '../spec/schema.ts';
import type { ServiceState, UnitObservation, UnitScaling } from './types.ts';

/**
 * What the core asks of a policy. The policies implement it above the core (shared/src/policies)
 * and hand themselves to `decideWith`, so the core depends on nothing above it.
 */

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

/** A split of the traffic with the KEDA settings that go with it (an override of a mode asks for one). */
export type Split = (ctx: PolicyContext) => Pick<PolicyProposal, 'shares' | 'scaling' | 'reasons'>;

/** The policies the core decides with: each automatic policy by kind, and the split of each mode. */
export interface PolicyBook {
  policies: Readonly<Record<PolicyKind, Policy>>;
  splits: Readonly<Record<'cost' | 'capacity', Split>>;
}
