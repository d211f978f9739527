import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clairvoyantBound, minCost } from '../../shared/src/sim/bound.ts';
import { parseScenario } from '../../shared/src/sim/scenario.ts';
import type { Unit } from '../../shared/src/spec/schema.ts';

// The clairvoyant lower bound against brute force on small cases: the cheapest whole pods per
// minute under family caps, and the best non-increasing node count through a hold.

const scenarioOf = (demand: Array<[number, number]>, minutes: number, capacity: unknown[] = []) =>
  parseScenario({ name: 'b', durationMinutes: minutes, stepSeconds: 60, fleet: 'default', demand: { sd21: { points: demand } }, capacity }, `${process.cwd()}/test/unit/inline.yaml`);
const base = scenarioOf([[0, 100]], 1);
const units = base.fleet.units.filter((u) => u.service === 'sd21');
const slots = (us: Unit[]) => us.map((u) => ({ unit: u, price: u.pricePerHour }));

/** Every combination of up to `most` pods per unit: the cheapest that serves `demand` within the caps. */
function bruteForce(us: Unit[], demand: number, caps: Map<string, number>, most: number): number {
  let best = Infinity;
  const counts = new Array<number>(us.length).fill(0);
  const visit = (i: number) => {
    if (i === us.length) {
      const perFamily = new Map<string, number>();
      us.forEach((u, j) => perFamily.set(u.family, (perFamily.get(u.family) ?? 0) + counts[j]!));
      if ([...caps].some(([f, cap]) => (perFamily.get(f) ?? 0) > cap)) return;
      if (us.reduce((s, u, j) => s + counts[j]! * u.maxRpm, 0) < demand - 1e-9) return;
      best = Math.min(best, us.reduce((s, u, j) => s + counts[j]! * u.pricePerHour, 0));
      return;
    }
    for (let k = 0; k <= most; k++) {
      counts[i] = k;
      visit(i + 1);
    }
  };
  visit(0);
  return best;
}

describe('minCost: the cheapest whole pods at the breaking point', () => {
  it('equals brute force, with and without family caps', () => {
    const three = units.filter((u) => ['sd21-inf2-neuron', 'sd21-trn1-neuron', 'sd21-g6-triton'].includes(u.name));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }), (demand, inf2Cap) => {
        const caps = new Map<string, number>(inf2Cap === undefined ? [] : [['inf2', inf2Cap]]);
        const most = 9; // 9 × 61 rpm > 500: every feasible answer is within reach
        expect(minCost(slots(three), demand, caps)).toBeCloseTo(bruteForce(three, demand, caps, most), 9);
      }),
      { numRuns: 200 },
    );
  });

  it('takes a dearer pod per request when it is cheaper for the remainder', () => {
    const [inf2, g6] = [units.find((u) => u.family === 'inf2')!, units.find((u) => u.family === 'g6')!];
    // 110 rpm: two inf2 pods ($1.5164) or one inf2 and one g6 ($1.5630): two inf2.
    expect(minCost(slots([inf2, g6]), 110, new Map())).toBeCloseTo(2 * inf2.pricePerHour, 9);
    // With inf2 capped at 1, the rest goes to g6.
    expect(minCost(slots([inf2, g6]), 110, new Map([['inf2', 1]]))).toBeCloseTo(inf2.pricePerHour + g6.pricePerHour, 9);
  });
});

describe('clairvoyantBound', () => {
  it('is the per-minute cheapest capacity summed when nothing is short', () => {
    const s = scenarioOf([[0, 300], [3, 900]], 4);
    const expected = [300, 500, 700, 900].reduce((sum, d) => sum + minCost(slots(units), d, new Map()), 0) / 60;
    expect(clairvoyantBound(s, s.fleet, ['sd21']).totalCost).toBeCloseTo(expected, 2);
  });

  it('through a hold keeps a count that may only fall, chosen with hindsight', () => {
    // Demand dips then peaks inside the hold: the best plan keeps the peak's inf2 nodes from the start.
    const demand: Array<[number, number]> = [[0, 400], [1, 100], [2, 100], [3, 400]];
    const s = scenarioOf(demand, 4, [{ family: 'inf2', fromMinute: 0, toMinute: 4, maxInstances: 'hold' }]);
    const inf2 = units.find((u) => u.family === 'inf2')!;
    const others = units.filter((u) => u.family !== 'inf2');
    const perMinute = (n: number, d: number) => n * inf2.pricePerHour + minCost(slots(others), Math.max(0, d - n * inf2.maxRpm), new Map());
    let best = Infinity;
    // Every non-increasing sequence n0 ≥ n1 ≥ n2 ≥ n3 of inf2 nodes.
    for (let a = 0; a <= 5; a++) for (let b = 0; b <= a; b++) for (let c = 0; c <= b; c++) for (let d = 0; d <= c; d++) {
      best = Math.min(best, [a, b, c, d].reduce((sum, n, m) => sum + perMinute(n, demand[m]![1]), 0));
    }
    const bound = clairvoyantBound(s, s.fleet, ['sd21']).totalCost;
    expect(bound).toBeCloseTo(best / 60, 2);
    const free = scenarioOf(demand, 4);
    expect(bound).toBeGreaterThan(clairvoyantBound(free, free.fleet, ['sd21']).totalCost);
  });
});
