import type { Decision, Observation, UnitScaling } from '../core/types.ts';

/**
 * The diff between a decision and what is live, after normalising the way the ALB does (units
 * in name order; a lone target group's weight means nothing), so an unchanged tick writes nothing.
 */

export interface WeightChange {
  service: string;
  from: Record<string, number> | null;
  to: Record<string, number>;
}

export interface ScalingChange {
  unit: string;
  from: UnitScaling | null;
  to: UnitScaling;
}

export interface Plan {
  weights: WeightChange[];
  scaling: ScalingChange[];
}

export function normaliseWeights(weights: Record<string, number>): Record<string, number> {
  const active = Object.keys(weights)
    .filter((k) => (weights[k] ?? 0) > 0)
    .sort();
  if (active.length === 1) return { [active[0]!]: 1 };
  return Object.fromEntries(active.map((k) => [k, weights[k]!]));
}

export function sameWeights(a: Record<string, number>, b: Record<string, number>): boolean {
  const na = normaliseWeights(a);
  const nb = normaliseWeights(b);
  const keys = new Set([...Object.keys(na), ...Object.keys(nb)]);
  return [...keys].every((k) => na[k] === nb[k]);
}

export function sameScaling(a: UnitScaling, b: UnitScaling): boolean {
  return a.minReplicas === b.minReplicas && a.maxReplicas === b.maxReplicas && Math.abs(a.targetRpm - b.targetRpm) < 0.05;
}

export function plan(decision: Decision, observation: Observation): Plan {
  const weights: WeightChange[] = [];
  const scaling: ScalingChange[] = [];
  for (const d of decision.services) {
    const observed = observation.services.find((s) => s.service === d.service);
    const live = observed && observed.units.every((u) => u.liveWeight !== null)
      ? Object.fromEntries(observed.units.map((u) => [u.unit, u.liveWeight!]))
      : null;
    if (!live || !sameWeights(live, d.weights)) weights.push({ service: d.service, from: live, to: d.weights });
    for (const [unit, to] of Object.entries(d.scaling)) {
      const from = observed?.units.find((u) => u.unit === unit)?.liveScaling ?? null;
      if (!from || !sameScaling(from, to)) scaling.push({ unit, from, to });
    }
  }
  return { weights, scaling };
}
