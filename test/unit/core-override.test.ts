import { describe, expect, it } from 'vitest';
import { decide } from '../../shared/src/policies/index.ts';
import { RECENT_DEMAND_MS } from '../../shared/src/core/decide.ts';
import type { Override, UnitObservation } from '../../shared/src/core/types.ts';
import { fleetOf, seedLikeUnits } from './factories/fleet.ts';
import { anObservation, anOverride, demandHistoryOf, stateOf } from './factories/observation.ts';

// An override that says it wins must win, visibly (issue 7 §1). The operator pins trn1 at 100
// while 2 trn1 pods are ready and the rule is at the seed's 40/20/15/10/15: floors come first,
// the weights follow as pods become ready, and the decision says how far it got.
const spec = fleetOf(seedLikeUnits());
const NOW = Date.parse('2026-11-14T12:00:00Z');
const DEMAND = 2000;
const SEED_SPLIT = { inf2: 40, trn1: 20, 'g5-triton': 15, 'g6-triton': 10, 'g5-cuda': 15 };
const TRN1_ONLY = { inf2: 0, trn1: 100, 'g5-triton': 0, 'g6-triton': 0, 'g5-cuda': 0 };
// trn1's whole demand at 90% of its 130 rpm breaking point: ceil(2000 / 117) = 18 pods.
const TRN1_PODS_NEEDED = 18;

/** The rule at the seed split, 10 ready pods on every unit but trn1. */
function world(trn1Ready: number, overrides: Record<string, Partial<UnitObservation>> = {}) {
  const units: Record<string, Partial<UnitObservation>> = Object.fromEntries(spec.units.map((u) => [u.name, { readyPods: 10, healthyTargets: 10, registeredTargets: 10, liveWeight: SEED_SPLIT[u.name as keyof typeof SEED_SPLIT] }]));
  units['trn1'] = { ...units['trn1']!, readyPods: trn1Ready, healthyTargets: trn1Ready, registeredTargets: trn1Ready };
  for (const [name, o] of Object.entries(overrides)) units[name] = { ...units[name]!, ...o };
  return anObservation(spec, NOW, units, [], DEMAND);
}

function decideWith(override: Override, obs = world(2), policy: 'static-cost' | 'optimizer' = 'static-cost') {
  return decide(spec, obs, stateOf(spec, { override, lastGoodWeights: SEED_SPLIT }), NOW, policy).services[0]!;
}

describe('an override of trn1:100 with 2 ready trn1 pods', () => {
  const pin = anOverride({ weights: { trn1: 100 } });

  it('raises trn1\'s floor first and says what it waits for', () => {
    const d = decideWith(pin);
    expect(d.mode).toBe('override');
    expect(d.scaling['trn1']!.minReplicas).toBe(TRN1_PODS_NEEDED);
    expect(d.override).toEqual({
      target: TRN1_ONLY,
      applied: d.weights,
      fraction: 0.2,
      waitingFor: [`trn1: 2/${TRN1_PODS_NEEDED} ready`],
    });
    // 2 ready trn1 pods serve 260 rpm of 2,000: less than trn1's live 20%, so nothing moves yet.
    expect(d.weights).toEqual(SEED_SPLIT);
    expect(d.reasons.join('\n')).toMatch(/override 20% applied; waiting for trn1: 2\/18 ready/);
  });

  it('moves traffic onto trn1 as far as its ready pods serve, then all of it', () => {
    const half = decideWith(pin, world(10));
    // 10 pods × 130 rpm = 1,300 of 2,000 rpm: 65%.
    expect(half.weights['trn1']).toBe(65);
    expect(half.override!.fraction).toBe(0.65);
    expect(half.override!.waitingFor).toEqual([`trn1: 10/${TRN1_PODS_NEEDED} ready`]);

    const done = decideWith(pin, world(TRN1_PODS_NEEDED));
    expect(done.weights).toEqual(TRN1_ONLY);
    expect(done.override).toMatchObject({ fraction: 1, waitingFor: [] });
  });

  it('with force, applies the weights at once and still raises the floor', () => {
    const d = decideWith({ ...pin, force: true });
    expect(d.weights).toEqual(TRN1_ONLY);
    expect(d.scaling['trn1']!.minReplicas).toBe(TRN1_PODS_NEEDED);
    expect(d.override).toMatchObject({ fraction: 1, waitingFor: [`trn1: 2/${TRN1_PODS_NEEDED} ready`] });
  });

  it('with force onto a unit with no registered target, keeps it at 0 and says why', () => {
    const obs = world(0, { trn1: { registeredTargets: 0 } });
    const d = decideWith(anOverride({ weights: { trn1: 50, 'g5-triton': 50 }, force: true }), obs);
    expect(d.weights).toEqual({ inf2: 0, trn1: 0, 'g5-triton': 100, 'g6-triton': 0, 'g5-cuda': 0 });
    expect(d.reasons.join('\n')).toMatch(/trn1 has no registered target \(the ALB would answer 503\): weight 0, even though the override forces it/);
    expect(d.override!.fraction).toBe(0.5);
  });

  it('with the demand unknown, keeps the live weights and sizes the floors for the last known demand', () => {
    const obs = world(2, Object.fromEntries(spec.units.map((u) => [u.name, { rpm: null }])));
    obs.services[0]!.demandRpm = null;
    obs.services[0]!.demandHistory = demandHistoryOf(NOW - RECENT_DEMAND_MS, 5, DEMAND); // CloudWatch has delivered nothing recent
    const d = decideWith(pin, obs);
    expect(d.weights).toEqual(SEED_SPLIT);
    expect(d.scaling['trn1']!.minReplicas).toBe(TRN1_PODS_NEEDED);
    expect(d.reasons.join('\n')).toMatch(/demand not observed: keeping the live weights/);
  });

  it('wins over the optimizer too', () => {
    const d = decideWith(pin, world(TRN1_PODS_NEEDED), 'optimizer');
    expect(d.weights).toEqual(TRN1_ONLY);
  });

  it('under the optimizer, raises trn1\'s floor past the maximum the optimizer trimmed to its own plan', () => {
    // Demand steady and read: the optimizer alone would keep trn1 to the pods its 20% needs.
    const d = decideWith(pin, world(2), 'optimizer');
    expect(d.scaling['trn1']!.minReplicas).toBe(TRN1_PODS_NEEDED);
    expect(d.scaling['trn1']!.maxReplicas).toBeGreaterThanOrEqual(TRN1_PODS_NEEDED);
  });
});

describe('an override of a mode', () => {
  it('capacity: the per-pod round robin over ready pods', () => {
    const d = decideWith(anOverride({ mode: 'capacity' }), world(10));
    expect(d.mode).toBe('override');
    expect(d.weights).toEqual({ inf2: 20, trn1: 20, 'g5-triton': 20, 'g6-triton': 20, 'g5-cuda': 20 });
    expect(d.scaling['trn1']!.targetRpm).toBe(89.2);
  });
});

describe('expiry', () => {
  it('ends the override with an alert, and automatic control resumes', () => {
    const expired = anOverride({ weights: { trn1: 100 }, until: NOW });
    const d = decide(spec, world(TRN1_PODS_NEEDED), stateOf(spec, { override: expired }), NOW, 'static-cost').services[0]!;
    expect(d.mode).toBe('cost');
    expect(d.override).toBeNull();
    expect(d.alerts.map((a) => a.kind)).toContain('override-ended');
    expect(d.state.override).toBeNull();
  });

  it('after expiry the way back is make-before-break too: traffic returns only onto ready pods', () => {
    const expired = anOverride({ weights: { trn1: 100 }, until: NOW });
    // The override moved everything onto trn1; the other units were scaled down to one pod each.
    const units = Object.fromEntries(
      spec.units.map((u) => [u.name, u.name === 'trn1' ? { readyPods: 18, healthyTargets: 18, liveWeight: 100 } : { readyPods: 1, healthyTargets: 1, liveWeight: 0 }]),
    );
    const d = decide(spec, anObservation(spec, NOW, units, [], DEMAND), stateOf(spec, { override: expired, lastGoodWeights: TRN1_ONLY }), NOW, 'static-cost').services[0]!;
    // One inf2 pod serves 105 of 2,000 rpm: about 5%, not the seed's 40%.
    expect(d.weights['inf2']).toBeLessThanOrEqual(6);
    expect(d.weights['trn1']).toBeGreaterThan(75);
    expect(d.scaling['inf2']!.minReplicas).toBe(8); // 40% of 2,000 rpm at 105 rpm per pod
  });

  it('an override left naming no unit of the service (the fleet changed under it) ends once, with an alert', () => {
    const d = decideWith(anOverride({ weights: { 'a-removed-unit': 100 } }));
    expect(d.mode).toBe('cost');
    expect(d.override).toBeNull();
    expect(d.reasons[0]).toMatch(/names no unit of svc with a positive weight: ended/);
    expect(d.alerts.filter((a) => a.kind === 'override-ended')).toHaveLength(1);
    expect(d.state.override).toBeNull();
  });
});
