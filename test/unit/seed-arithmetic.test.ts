import { describe, expect, it } from 'vitest';
import { adjustedThroughput, costIndex, costWeights, toIntegerWeights } from '../../shared/src/core/cost.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';

const fleet = loadFleetSpec();
const sd21 = fleet.units.filter((u) => u.service === 'sd21');

describe('the seed, reproduced from the default fleet', () => {
  // Table 1: cost index = price per hour / maxRpm. hwai reproduces the arithmetic; the seed
  // printed two rows off it (inf2 0.00733, trn1 0.01023) and rounded g6 up (0.01320).
  it.each([
    ['sd21-inf2-neuron', 0.00722, 0.00733],
    ['sd21-trn1-neuron', 0.01034, 0.01023],
    ['sd21-g5-triton', 0.01118, 0.01118],
    ['sd21-g6-triton', 0.01319, 0.0132],
    ['sd21-g5-cuda', 0.01677, 0.01677],
  ])('Table 1 cost index of %s is %f (the seed printed %f)', (name, arithmetic, printed) => {
    const unit = sd21.find((u) => u.name === name)!;
    expect(costIndex(unit)).toBeCloseTo(arithmetic, 5);
    const off = Math.abs(costIndex(unit) - printed) > 0.00006;
    expect(off).toBe(name === 'sd21-inf2-neuron' || name === 'sd21-trn1-neuron');
  });

  it('Table 2 adjusted throughput is 89.2, 89.2, 89.2, 61, 60', () => {
    const adjusted = adjustedThroughput(sd21);
    expect(sd21.map((u) => Math.round(adjusted[u.name]! * 10) / 10)).toEqual([89.2, 89.2, 89.2, 61, 60]);
  });

  it('Option 1 weights are the seed\'s 40/20/15/10/15', () => {
    expect(costWeights(sd21, 'seed')).toEqual({
      'sd21-inf2-neuron': 40,
      'sd21-trn1-neuron': 20,
      'sd21-g5-triton': 15,
      'sd21-g6-triton': 10,
      'sd21-g5-cuda': 15,
    });
  });

  it('cost-index weights favour the cheapest unit and sum to 100', () => {
    const w = costWeights(sd21, 'cost-index');
    expect(Object.values(w).reduce((a, b) => a + b, 0)).toBe(100);
    const ranked = Object.entries(w).sort((a, b) => b[1] - a[1]).map(([n]) => n);
    expect(ranked[0]).toBe('sd21-inf2-neuron');
    expect(ranked.at(-1)).toBe('sd21-g5-cuda');
  });
});

describe('toIntegerWeights', () => {
  it.each([
    [{ a: 1, b: 1, c: 1 }, 100, { a: 34, b: 33, c: 33 }],
    [{ a: 0.5, b: 0 }, 100, { a: 100, b: 0 }],
    [{ a: 0, b: 0 }, 100, { a: 0, b: 0 }],
    [{ a: 2, b: 1 }, 999, { a: 666, b: 333 }],
  ])('%j over %i gives %j', (shares, total, expected) => {
    expect(toIntegerWeights(shares, total)).toEqual(expected);
  });
});
