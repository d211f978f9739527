import type { Unit } from '../spec/schema.ts';

/**
 * The seed's arithmetic. Cost index = price per hour / maxRpm (Table 1); adjusted throughput =
 * min(Σ maxRpm / N, maxRpm_i) (Table 2).
 */

export function costIndex(unit: Pick<Unit, 'pricePerHour' | 'maxRpm'>): number {
  return unit.pricePerHour / unit.maxRpm;
}

/** Dollars per request served at the breaking point. */
export function costPerRequest(unit: Pick<Unit, 'pricePerHour' | 'maxRpm'>): number {
  return unit.pricePerHour / (unit.maxRpm * 60);
}

export function adjustedThroughput(units: ReadonlyArray<Pick<Unit, 'name' | 'maxRpm'>>): Record<string, number> {
  const target = units.reduce((s, u) => s + u.maxRpm, 0) / units.length;
  return Object.fromEntries(units.map((u) => [u.name, Math.min(target, u.maxRpm)]));
}

/** Option 1's weights: the seed's hand-picked ones, or inversely proportional to the cost index. */
export function costWeights(units: ReadonlyArray<Unit>, source: 'seed' | 'cost-index'): Record<string, number> {
  if (source === 'seed' && units.every((u) => u.costWeight !== undefined)) {
    return Object.fromEntries(units.map((u) => [u.name, u.costWeight ?? 0]));
  }
  const inverse = units.map((u) => 1 / costIndex(u));
  const total = inverse.reduce((s, x) => s + x, 0);
  return toIntegerWeights(Object.fromEntries(units.map((u, i) => [u.name, (inverse[i] ?? 0) / total])), 100);
}

/**
 * Shares (any non-negative numbers) to integer weights summing to `total`, by largest remainder,
 * ties broken by name so the same shares always give the same weights.
 */
export function toIntegerWeights(shares: Record<string, number>, total = 100): Record<string, number> {
  const names = Object.keys(shares).sort();
  const sum = names.reduce((s, n) => s + Math.max(0, shares[n] ?? 0), 0);
  if (sum <= 0) return Object.fromEntries(names.map((n) => [n, 0]));
  // Rounded to 1e-9 first: the same split reached by another float path (normalised twice, say)
  // must not fall on the other side of an integer or a tie.
  const exact = names.map((n) => Math.round((Math.max(0, shares[n] ?? 0) / sum) * total * 1e9) / 1e9);
  const floors = exact.map(Math.floor);
  let left = total - floors.reduce((s, x) => s + x, 0);
  const order = names.map((_, i) => i).sort((a, b) => (exact[b]! - floors[b]!) - (exact[a]! - floors[a]!) || a - b);
  for (const i of order) {
    if (left <= 0) break;
    floors[i]! += 1;
    left -= 1;
  }
  return Object.fromEntries(names.map((n, i) => [n, floors[i]!]));
}
