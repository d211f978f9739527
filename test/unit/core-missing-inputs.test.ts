import { describe, expect, it } from 'vitest';
import { decide } from '../../shared/src/policies/index.ts';
import { RECENT_DEMAND_MS } from '../../shared/src/core/decide.ts';
import { initialControllerState, initialServiceState } from '../../shared/src/core/state.ts';
import type { ControllerState, UnitObservation } from '../../shared/src/core/types.ts';
import { fleetOf, seedLikeUnits } from './factories/fleet.ts';
import { anObservation } from './factories/observation.ts';

// Make before break when an input is missing (issue 7 §1): CloudWatch down (no demand), the
// listener rule unreadable (no live weights). Today static-cost is all on inf2 with one ready
// pod on every other unit; a tick that cannot see the demand must not jump to 40/20/15/10/15.
const spec = fleetOf(seedLikeUnits());
const NOW = Date.parse('2026-11-14T12:00:00Z');
const ALL_ON_INF2 = { inf2: 100, trn1: 0, 'g5-triton': 0, 'g6-triton': 0, 'g5-cuda': 0 };

/** inf2 carries everything on 20 pods; the other units have one ready pod each. */
function liveOnInf2(overrides: Partial<UnitObservation> = {}): Record<string, Partial<UnitObservation>> {
  return Object.fromEntries(
    spec.units.map((u) => [
      u.name,
      u.name === 'inf2'
        ? { readyPods: 20, healthyTargets: 20, liveWeight: 100, ...overrides }
        : { readyPods: 1, healthyTargets: 1, liveWeight: 0, ...overrides },
    ]),
  );
}

function stateWith(lastGoodWeights: Record<string, number> | null): ControllerState {
  return { version: 4, services: { svc: { ...initialServiceState(), lastGoodWeights } } };
}

describe('make before break with a missing input (static-cost)', () => {
  it('with the demand unknown, the live weights stay and the reasons say why', () => {
    const obs = anObservation(spec, NOW, liveOnInf2({ rpm: null }), [], null);
    const d = decide(spec, obs, stateWith(ALL_ON_INF2), NOW, 'static-cost').services[0]!;
    expect(d.weights).toEqual(ALL_ON_INF2);
    expect(d.reasons.join('\n')).toMatch(/demand not observed: keeping the live weights/);
  });

  it('with the demand unknown and last known minutes ago, floors are raised for the shift to come', () => {
    const obs = anObservation(spec, NOW, liveOnInf2({ rpm: null }), [], null);
    obs.services[0]!.demandHistory = [[NOW - RECENT_DEMAND_MS - 120_000, 1800], [NOW - RECENT_DEMAND_MS - 60_000, 2000]];
    const d = decide(spec, obs, stateWith(ALL_ON_INF2), NOW, 'static-cost').services[0]!;
    expect(d.weights).toEqual(ALL_ON_INF2);
    expect(d.reasons.join('\n')).toMatch(/demand not observed: keeping the live weights/);
    // trn1's 20% of the last known 2,000 rpm at its 130 rpm breaking point: 4 pods.
    expect(d.scaling['trn1']!.minReplicas).toBe(4);
  });

  it('with the last minute not delivered yet by CloudWatch, the newest delivered minute is the demand and the shift goes only as far as the ready pods serve', () => {
    const obs = anObservation(spec, NOW, liveOnInf2({ rpm: null }), [], null);
    obs.services[0]!.demandHistory = [[NOW - 240_000, 1800], [NOW - 180_000, 2000]];
    const d = decide(spec, obs, stateWith(ALL_ON_INF2), NOW, 'static-cost').services[0]!;
    expect(d.reasons.join('\n')).toMatch(/CloudWatch has not delivered a later one yet/);
    // One ready pod per unit: each can take at most its maxRpm of the 2,000 rpm.
    for (const u of spec.units.filter((x) => x.name !== 'inf2')) expect(d.weights[u.name]! / 100).toBeLessThanOrEqual(u.maxRpm / 2000 + 0.01);
    expect(d.scaling['trn1']!.minReplicas).toBe(4);
  });

  it('with one unit\'s throughput unknown, the known units\' sum is not taken for the demand', () => {
    const units = liveOnInf2({ rpm: 10 });
    units['inf2'] = { ...units['inf2'], rpm: null };
    const d = decide(spec, anObservation(spec, NOW, units, [], null), stateWith(ALL_ON_INF2), NOW, 'static-cost').services[0]!;
    expect(d.weights).toEqual(ALL_ON_INF2);
  });

  it('with the live weights unknown, the last good weights stay', () => {
    const obs = anObservation(spec, NOW, liveOnInf2({ liveWeight: null }), [], 2000);
    const d = decide(spec, obs, stateWith(ALL_ON_INF2), NOW, 'static-cost').services[0]!;
    expect(d.weights).toEqual(ALL_ON_INF2);
    expect(d.reasons.join('\n')).toMatch(/live weights not read: keeping the last good weights/);
  });

  it('with everything known, the shift goes only as far as the ready pods can serve', () => {
    const obs = anObservation(spec, NOW, liveOnInf2(), [], 2000);
    const d = decide(spec, obs, initialControllerState(), NOW, 'static-cost').services[0]!;
    // One ready pod each: trn1 130, g5-triton 90, g6 61, g5-cuda 60 rpm of 2,000.
    expect(d.weights['trn1']).toBeLessThanOrEqual(7);
    expect(d.weights['g6-triton']).toBeLessThanOrEqual(4);
    expect(d.weights['inf2']).toBeGreaterThan(80);
  });
});
