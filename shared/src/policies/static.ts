import { adjustedThroughput, costWeights } from '../core/cost.ts';
import { healthyPods } from '../core/safety.ts';
import type { UnitScaling } from '../core/types.ts';
import type { Unit } from '../spec/schema.ts';
import type { PolicyContext, PolicyProposal } from './types.ts';

/** Option 1: fixed cost-optimized weights; each unit's KEDA target is its breaking point. */
export function costSplit(ctx: PolicyContext): Pick<PolicyProposal, 'shares' | 'scaling' | 'reasons'> {
  const weights = costWeights([...ctx.units], ctx.settings.staticCostWeights);
  return {
    shares: weights,
    scaling: scalingWith(ctx.units, (u) => u.maxRpm),
    reasons: [`cost split (${ctx.settings.staticCostWeights} weights): ${ctx.units.map((u) => `${u.name} ${weights[u.name]}`).join(', ')}`],
  };
}

/**
 * Option 2: round-robin per pod across every unit (shares proportional to ready pods); each
 * unit's KEDA target is the adjusted throughput min(Σ maxRpm / N, maxRpm_i).
 */
export function capacitySplit(ctx: PolicyContext): Pick<PolicyProposal, 'shares' | 'scaling' | 'reasons'> {
  const adjusted = adjustedThroughput(ctx.units);
  const shares = Object.fromEntries(ctx.units.map((u) => [u.name, healthyPods(ctx.observed.get(u.name))]));
  return {
    shares,
    scaling: scalingWith(ctx.units, (u) => adjusted[u.name] ?? u.maxRpm),
    reasons: [`capacity split: per-pod round robin over ${Object.values(shares).reduce((a, b) => a + b, 0)} ready pod(s)`],
  };
}

export function scalingWith(units: ReadonlyArray<Unit>, target: (u: Unit) => number): Record<string, UnitScaling> {
  return Object.fromEntries(units.map((u) => [u.name, { minReplicas: u.minReplicas, maxReplicas: u.maxReplicas, targetRpm: round1(target(u)) }]));
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export function staticCost(ctx: PolicyContext): PolicyProposal {
  return { mode: 'cost', ...costSplit(ctx), state: {} };
}

export function staticCapacity(ctx: PolicyContext): PolicyProposal {
  return { mode: 'capacity', ...capacitySplit(ctx), state: {} };
}
