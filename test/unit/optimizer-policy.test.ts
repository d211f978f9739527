import { describe, expect, it } from 'vitest';
import { initialServiceState } from '../../shared/src/core/state.ts';
import type { UnitObservation } from '../../shared/src/core/types.ts';
import { optimizer } from '../../shared/src/policies/optimizer.ts';
import { fleetOf, seedLikeUnits } from './factories/fleet.ts';
import { aUnitObservation } from './factories/observation.ts';

// The optimizer policy on its own (before the safety rules): the hold that grows under flapping
// capacity, and the family share limit that hedges against losing the cheapest pool.

const NOW = Date.parse('2026-11-14T12:00:00Z');
const MIN = 60_000;

function contextFor(policy: Record<string, unknown>, state = initialServiceState(), now = NOW, ready: (unit: string) => number = (unit) => (unit === "inf2" ? 20 : 10)) {
  const spec = fleetOf(seedLikeUnits(), policy);
  const observed = new Map<string, UnitObservation>(spec.units.map((u) => [u.name, aUnitObservation(u.name, { readyPods: ready(u.name), healthyTargets: ready(u.name) })]));
  return { service: 'svc', units: spec.units, observed, demandRpm: 1000, demandHistory: [], settings: spec.policy, state, now };
}

const short = { inf2: { shortSince: NOW - MIN, lastSignalAt: NOW - MIN, readyAtShortage: 10, lastProbeAt: null, probe: null } };

describe('the optimizer under flapping capacity', () => {
  it('goes back to cost only once every pool has been clear for the hold', () => {
    const hold = 900_000;
    // In capacity for longer than the hold, the pool clear for 5 minutes only.
    const state = { ...initialServiceState(), mode: 'capacity' as const, since: NOW - 2 * hold, clearSince: NOW - 5 * MIN };
    expect(optimizer(contextFor({}, state)).mode).toBe('capacity');
    expect(optimizer(contextFor({}, { ...state, clearSince: NOW - hold })).mode).toBe('cost');
  });

  it('doubles the hold when a pool turns short within two holds of the fallback, and starts over when it stayed clear', () => {
    const flapped = optimizer(contextFor({}, { ...initialServiceState(), mode: 'cost', since: NOW - 20 * MIN, pools: short }));
    expect(flapped.mode).toBe('capacity');
    expect(flapped.state.holdSeconds).toBe(1800);
    const again = optimizer(contextFor({}, { ...initialServiceState(), mode: 'cost', since: NOW - 50 * MIN, holdSeconds: 1800, pools: short }));
    expect(again.state.holdSeconds).toBe(3600);
    const calm = optimizer(contextFor({}, { ...initialServiceState(), mode: 'cost', since: NOW - 5 * 3600_000, holdSeconds: 3600, pools: short }));
    expect(calm.state.holdSeconds).toBe(900);
  });
});

describe('the optimizer with a family share limit', () => {
  const share = (p: ReturnType<typeof optimizer>, unit: string) => p.shares[unit]! / Object.values(p.shares).reduce((a, b) => a + b, 0);

  it('without one, routes everything to the cheapest pool when its ready pods can take it', () => {
    expect(share(optimizer(contextFor({})), 'inf2')).toBeCloseTo(1, 6);
  });

  it('routes at most the share to one family while others can take the rest, next cheapest first', () => {
    const p = optimizer(contextFor({ maxFamilyShare: 0.6 }));
    expect(share(p, 'inf2')).toBeCloseTo(0.6, 6);
    expect(share(p, 'trn1')).toBeCloseTo(0.4, 6);
  });

  it('plans floors on the other families for the rest of the demand', () => {
    const floors = optimizer(contextFor({ maxFamilyShare: 0.6 })).state.floors!;
    expect(floors['inf2']).toBe(Math.ceil(600 / (105 * 0.9)));
    expect(floors['trn1']).toBe(Math.ceil(400 / (130 * 0.9)));
  });

  it('goes beyond the share when the other families cannot take the rest', () => {
    // One ready pod on each other unit: 341 rpm at their breaking points.
    const p = optimizer(contextFor({ maxFamilyShare: 0.6 }, initialServiceState(), NOW, (unit) => (unit === 'inf2' ? 20 : 1)));
    expect(p.shares['inf2']).toBeCloseTo(1000 - 341, 6);
  });
});
