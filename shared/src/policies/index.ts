import { decideWith } from '../core/decide.ts';
import type { ControllerState, Decision, Observation } from '../core/types.ts';
import type { FleetSpec, PolicyKind } from '../spec/schema.ts';
import { optimizer } from './optimizer.ts';
import { capacitySplit, costSplit, staticCapacity, staticCost } from './static.ts';
import { step } from './step.ts';
import type { Policy, PolicyBook } from './types.ts';

export const POLICIES: Record<PolicyKind, Policy> = {
  'static-cost': staticCost,
  'static-capacity': staticCapacity,
  step,
  optimizer,
};

export const POLICY_BOOK: PolicyBook = { policies: POLICIES, splits: { cost: costSplit, capacity: capacitySplit } };

/**
 * One tick's decision with hwai's policies: the pure core (`decideWith`) given the policies. The
 * dispatch lives here, above both, so the core imports no policy and the policies import the core.
 */
export function decide(spec: FleetSpec, observation: Observation, state: ControllerState, now: number, policy: PolicyKind = spec.policy.kind): Decision {
  return decideWith(POLICY_BOOK, spec, observation, state, now, policy);
}
