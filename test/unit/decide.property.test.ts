import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '../../shared/src/core/decide.ts';
import { healthyPods } from '../../shared/src/core/safety.ts';
import { initialControllerState, initialServiceState } from '../../shared/src/core/state.ts';
import type { ControllerState, Observation } from '../../shared/src/core/types.ts';
import { POLICY_KINDS } from '../../shared/src/spec/schema.ts';
import { fleetOf, seedLikeUnits } from './factories/fleet.ts';
import { anObservation, arbitraryObservation } from './factories/observation.ts';

const spec = fleetOf(seedLikeUnits());
const NOW = Date.parse('2026-11-14T12:00:00Z');
const runs = { numRuns: 300 };

describe.each(POLICY_KINDS)('safety rules hold for every observation: %s', (policy) => {
  it('weights are integers 0–999 with a positive sum, and scaling stays within min/max', () => {
    fc.assert(
      fc.property(arbitraryObservation(spec, NOW), (obs) => {
        const d = decide(spec, obs, initialControllerState(), NOW, policy).services[0]!;
        const weights = Object.values(d.weights);
        expect(weights.every((w) => Number.isInteger(w) && w >= 0 && w <= 999)).toBe(true);
        expect(weights.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
        for (const u of spec.units) {
          const s = d.scaling[u.name]!;
          expect(s.minReplicas).toBeGreaterThanOrEqual(0);
          expect(s.minReplicas).toBeLessThanOrEqual(s.maxReplicas);
          expect(s.targetRpm).toBeGreaterThan(0);
        }
      }),
      runs,
    );
  });

  it('a unit with no healthy target gets weight 0, unless no unit is healthy', () => {
    fc.assert(
      fc.property(arbitraryObservation(spec, NOW), (obs) => {
        const d = decide(spec, obs, initialControllerState(), NOW, policy).services[0]!;
        const units = obs.services[0]!.units;
        const anyHealthy = units.some((u) => healthyPods(u) > 0);
        if (anyHealthy) {
          for (const u of units) if (healthyPods(u) === 0) expect(d.weights[u.unit]).toBe(0);
        } else {
          expect(d.alerts.map((a) => a.kind)).toContain('no-healthy-unit');
        }
      }),
      runs,
    );
  });

  it('when no unit is healthy the last good weights stay', () => {
    const lastGood = { inf2: 50, trn1: 50, 'g5-triton': 0, 'g6-triton': 0, 'g5-cuda': 0 };
    const state: ControllerState = { version: 3, services: { svc: { ...initialServiceState(), lastGoodWeights: lastGood } } };
    const dead = Object.fromEntries(spec.units.map((u) => [u.name, { readyPods: 0, healthyTargets: 0 }]));
    const d = decide(spec, anObservation(spec, NOW, dead), state, NOW, policy).services[0]!;
    expect(d.weights).toEqual(lastGood);
  });

  it('the same inputs give the same decision', () => {
    fc.assert(
      fc.property(arbitraryObservation(spec, NOW), (obs) => {
        const a = decide(spec, structuredClone(obs), initialControllerState(), NOW, policy);
        const b = decide(spec, structuredClone(obs), initialControllerState(), NOW, policy);
        expect(a).toEqual(b);
      }),
      { numRuns: 100 },
    );
  });
});

describe.each(['step', 'optimizer'] as const)('hysteresis: %s', (policy) => {
  // Signals that expire within a tick and probes allowed every tick, so a flipping signal really
  // flips the pool between short and proven-back as fast as the rules allow.
  const twitchy = fleetOf(seedLikeUnits(), { shortageSignalSeconds: 30, probeIntervalSeconds: 60, holdSeconds: 600 });
  const pattern = fc.oneof(
    fc.constant('flip' as const),
    fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
  );

  it('changes mode at most once per hold time under a shortage signal that flips every tick', () => {
    let sawChange = false;
    fc.assert(
      fc.property(pattern, fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 60, maxLength: 60 }), (signalPattern, readySeries) => {
        let state = initialControllerState();
        const changes: number[] = [];
        let mode = 'cost';
        readySeries.forEach((ready, i) => {
          const now = NOW + i * twitchy.policy.tickSeconds * 1000;
          const on = signalPattern === 'flip' ? i % 2 === 0 : signalPattern[i];
          const signals = on ? [{ family: 'inf2', kind: 'insufficient-capacity' as const, at: now }] : [];
          const obs = anObservation(twitchy, now, { inf2: { readyPods: ready, healthyTargets: ready } }, signals, 800);
          const d = decide(twitchy, obs, state, now, policy);
          state = d.state;
          const m = d.services[0]!.mode;
          if (m !== mode) changes.push(now);
          mode = m;
        });
        sawChange ||= changes.length > 1;
        for (let i = 1; i < changes.length; i++) {
          expect(changes[i]! - changes[i - 1]!).toBeGreaterThanOrEqual(twitchy.policy.holdSeconds * 1000);
        }
      }),
      { numRuns: 100 },
    );
    expect(sawChange, 'the generated signals never made the mode change twice: the property was not exercised').toBe(true);
  });
});

describe('step: failover and fallback', () => {
  function tickThrough(observations: Array<(now: number) => Observation>): string[] {
    let state = initialControllerState();
    return observations.map((obsAt, i) => {
      const now = NOW + i * 60_000;
      const d = decide(spec, obsAt(now), state, now, 'step');
      state = d.state;
      return d.services[0]!.mode;
    });
  }
  const ice = (now: number) => [{ family: 'inf2', kind: 'insufficient-capacity' as const, at: now }];

  it(`fails over only after ${spec.policy.failoverAfterTicks} bad ticks in a row`, () => {
    const modes = tickThrough([
      (now) => anObservation(spec, now, {}, ice(now)),
      (now) => anObservation(spec, now),
      (now) => anObservation(spec, now, {}, ice(now)),
      (now) => anObservation(spec, now, {}, ice(now)),
    ]);
    // The signal lingers for shortageSignalSeconds, so the quiet tick in between is still bad.
    expect(modes.indexOf('capacity')).toBe(spec.policy.failoverAfterTicks - 1);
  });

  it('falls back only after a probe proves the short pool, and not before the hold time', () => {
    const steps: Array<(now: number) => Observation> = [];
    for (let i = 0; i < 40; i++) {
      // inf2 short for the first 5 minutes; from minute 20 its pods become ready when asked.
      steps.push((now) => anObservation(spec, now, { inf2: { readyPods: i >= 20 ? 5 : 2, healthyTargets: i >= 20 ? 5 : 2 } }, i < 5 ? ice(now) : []));
    }
    const modes = tickThrough(steps);
    const failover = modes.indexOf('capacity');
    const fallback = modes.indexOf('cost', failover);
    expect(failover).toBeGreaterThanOrEqual(0);
    expect(fallback).toBeGreaterThanOrEqual(20);
    expect((fallback - failover) * 60).toBeGreaterThanOrEqual(spec.policy.holdSeconds);
  });
});

describe.each(POLICY_KINDS)('overrides: %s', (policy) => {
  it('an override wins until it expires, then automatic control resumes with an alert', () => {
    const until = NOW + 10 * 60_000;
    const weights = { inf2: 0, trn1: 100, 'g5-triton': 0, 'g6-triton': 0, 'g5-cuda': 0 };
    let state: ControllerState = {
      version: 1,
      services: { svc: { ...initialServiceState(), override: { weights, until, reason: 'maintenance', by: 'alice' } } },
    };
    for (let minute = 0; minute <= 12; minute++) {
      const now = NOW + minute * 60_000;
      const liveWeights = Object.fromEntries(spec.units.map((u) => [u.name, { liveWeight: weights[u.name as keyof typeof weights] }]));
      const d = decide(spec, anObservation(spec, now, liveWeights), state, now, policy);
      const s = d.services[0]!;
      if (now < until) {
        expect(s.mode).toBe('override');
        expect(s.weights).toEqual(weights);
      } else {
        expect(s.mode).not.toBe('override');
        if (minute === 10) expect(s.alerts.map((a) => a.kind)).toContain('override-ended');
      }
      state = d.state;
    }
  });
});
