import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initialServiceState } from '../../shared/src/core/state.ts';
import type { PoolState, UnitObservation } from '../../shared/src/core/types.ts';
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

describe('the optimizer releases a unit it no longer uses', () => {
  // Generated: per unit its ready pods (unread sometimes), its live weight (unread, 0, or some),
  // the floor it kept from the last tick; the demand (unknown, none, or some); a probe on one unit.
  const spec = fleetOf(seedLikeUnits().map((u, i) => ({ ...u, minReplicas: i === 4 ? 2 : 0 })));
  const names = spec.units.map((u) => u.name);
  const unitArb = fc.record({
    ready: fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 })), { nil: null, freq: 6 }),
    liveWeight: fc.option(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 100 })), { nil: null, freq: 6 }),
    floor: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 5 })),
  });
  const caseArb = fc.record({
    units: fc.tuple(...names.map(() => unitArb)),
    demand: fc.option(fc.oneof(fc.constant(0), fc.double({ min: 0, max: 3000, noNaN: true })), { nil: null, freq: 5 }),
    probeOn: fc.option(fc.constantFrom(...names), { nil: null, freq: 2 }),
  });

  it('lowers the maximum only of a unit with no live traffic, no planned share, no floor and no probe; every other keeps its maximum', () => {
    const seen = new Map<string, number>();
    const hit = (b: string) => seen.set(b, (seen.get(b) ?? 0) + 1);
    fc.assert(
      fc.property(caseArb, ({ units, demand, probeOn }) => {
        const observed = new Map<string, UnitObservation>(
          names.map((n, i) => [n, aUnitObservation(n, { readyPods: units[i]!.ready, healthyTargets: units[i]!.ready, liveWeight: units[i]!.liveWeight })]),
        );
        const probeUnit = spec.units.find((u) => u.name === probeOn);
        const pools: Record<string, PoolState> = probeUnit
          ? { [probeUnit.family]: { shortSince: NOW - 10 * MIN, lastSignalAt: NOW - 10 * MIN, readyAtShortage: 0, lastProbeAt: NOW - MIN, probe: { unit: probeUnit.name, startedAt: NOW - MIN, baselineReady: 0, pods: 1 } } }
          : {};
        const state = { ...initialServiceState(), floors: Object.fromEntries(names.map((n, i) => [n, units[i]!.floor])), pools };
        const p = optimizer({ service: 'svc', units: spec.units, observed, demandRpm: demand, demandHistory: [], settings: spec.policy, state, now: NOW });
        for (const u of spec.units) {
          const s = p.scaling[u.name]!;
          expect(s.minReplicas).toBeLessThanOrEqual(s.maxReplicas);
          const live = observed.get(u.name)!.liveWeight;
          const share = p.shares[u.name] ?? 0;
          const floor = p.state.floors![u.name] ?? 0;
          const probing = probeOn === u.name;
          const keeps = live !== 0 || share > 0 || floor > 0 || probing;
          if (keeps) {
            expect(s.maxReplicas).toBe(u.maxReplicas);
            hit(live === null ? 'kept: live weight unread' : live > 0 ? 'kept: carries traffic now' : share > 0 ? 'kept: traffic planned' : floor > 0 ? 'kept: a floor' : 'kept: probing');
          } else {
            expect(s.maxReplicas).toBe(Math.max(1, u.minReplicas));
            hit(u.minReplicas > 1 ? 'released to the operator minimum' : 'released to one pod');
          }
        }
      }),
      { numRuns: 400 },
    );
    for (const b of ['kept: live weight unread', 'kept: carries traffic now', 'kept: traffic planned', 'kept: a floor', 'kept: probing', 'released to the operator minimum', 'released to one pod']) {
      expect(seen.get(b) ?? 0, `never generated: ${b}`).toBeGreaterThan(0);
    }
  });
});
