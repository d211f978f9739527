import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toIntegerWeights } from '../../shared/src/core/cost.ts';
import { RECENT_DEMAND_MS } from '../../shared/src/core/decide.ts';
import { decide } from '../../shared/src/policies/index.ts';
import { healthOf, healthyPods } from '../../shared/src/core/safety.ts';
import { initialControllerState } from '../../shared/src/core/state.ts';
import type { ControllerState, Observation, ServiceDecision, UnitObservation } from '../../shared/src/core/types.ts';
import { POLICY_KINDS } from '../../shared/src/spec/schema.ts';
import { fleetOf, seedLikeUnits } from './factories/fleet.ts';
import { anObservation, anOverride, arbitraryObservation, arbitraryState, demandHistoryOf, stateOf } from './factories/observation.ts';

const spec = fleetOf(seedLikeUnits());
const names = spec.units.map((u) => u.name);
const NOW = Date.parse('2026-11-14T12:00:00Z');
const runs = { numRuns: 300 };
const world = fc.tuple(arbitraryObservation(spec, NOW), arbitraryState(spec, NOW));

/**
 * Counts how often the interesting branches of a property were generated, so a property whose
 * generators never reach the case it is about fails instead of passing vacuously.
 */
function branches(...expected: string[]) {
  const seen = new Map<string, number>();
  return {
    hit: (branch: string) => seen.set(branch, (seen.get(branch) ?? 0) + 1),
    check: () => {
      for (const b of expected) expect(seen.get(b) ?? 0, `never generated: ${b}`).toBeGreaterThan(0);
    },
  };
}

const unitsOf = (obs: Observation) => new Map(obs.services[0]!.units.map((u) => [u.unit, u]));
const shareOf = (w: Record<string, number>) => {
  const total = Object.values(w).reduce((a, b) => a + b, 0);
  return Object.fromEntries(names.map((n) => [n, total > 0 ? (w[n] ?? 0) / total : 0]));
};

/** What serves now, as make-before-break sees it: the live weights, else the last good ones, without units that have no healthy target. */
function servingNow(observed: Map<string, UnitObservation>, lastGood: Record<string, number> | null): Record<string, number> | null {
  const live = names.every((n) => observed.get(n)?.liveWeight != null) ? Object.fromEntries(names.map((n) => [n, observed.get(n)!.liveWeight!])) : lastGood;
  if (!live) return null;
  const usable = Object.fromEntries(names.map((n) => [n, healthOf(observed.get(n)) === 'unhealthy' ? 0 : Math.max(0, live[n] ?? 0)]));
  return Object.values(usable).some((w) => w > 0) ? shareOf(usable) : null;
}

/** The demand the core decides on: the observed minute's, else the newest minute CloudWatch delivered if it is recent. */
function demandOf(obs: Observation, now = NOW): number | null {
  const s = obs.services[0]!;
  const newest = s.demandHistory.at(-1);
  return s.demandRpm ?? (s.units.every((u) => u.rpm !== null) ? s.units.reduce((a, u) => a + u.rpm!, 0) : null) ?? (newest && now - newest[0] <= RECENT_DEMAND_MS ? newest[1] : null);
}

const decideOne = (obs: Observation, state: ControllerState, policy: (typeof POLICY_KINDS)[number], now = NOW): ServiceDecision => decide(spec, obs, state, now, policy).services[0]!;
const activeOverride = (state: ControllerState, now = NOW) => {
  const o = state.services['svc']?.override ?? null;
  return o && o.until > now ? o : null;
};

describe.each(POLICY_KINDS)('safety rules hold for every observation and state: %s', (policy) => {
  it('weights are integers 0–999 with a positive sum, and scaling stays within min/max', () => {
    fc.assert(
      fc.property(world, ([obs, state]) => {
        const d = decideOne(obs, state, policy);
        const weights = names.map((n) => d.weights[n]);
        expect(weights.every((w) => Number.isInteger(w) && w! >= 0 && w! <= 999)).toBe(true);
        expect(weights.reduce((a, b) => a! + b!, 0)).toBeGreaterThan(0);
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

  it('no weight onto a unit with no healthy target, forced or not, unless no unit is healthy: then the last good weights stay', () => {
    const { hit, check } = branches('unhealthy unit zeroed while another is healthy', 'no unit healthy: last good weights kept');
    fc.assert(
      fc.property(world, ([obs, state]) => {
        const d = decideOne(obs, state, policy);
        const observed = unitsOf(obs);
        const health = names.map((n) => healthOf(observed.get(n)));
        if (health.includes('healthy')) {
          names.forEach((n, i) => {
            if (health[i] === 'unhealthy') expect(d.weights[n], `${n} has no healthy target`).toBe(0);
          });
          if (health.includes('unhealthy') && d.reasons.some((r) => / has no (healthy|registered) target/.test(r))) hit('unhealthy unit zeroed while another is healthy');
        } else {
          const lastGood = state.services['svc']!.lastGoodWeights;
          if (lastGood && Object.values(lastGood).some((w) => w > 0)) {
            expect(d.weights).toEqual(Object.fromEntries(names.map((n) => [n, lastGood[n] ?? 0])));
            hit('no unit healthy: last good weights kept');
          }
          // Unobserved is not unhealthy: the alarm is raised only when every unit was seen unhealthy.
          expect(d.alerts.some((a) => a.kind === 'no-healthy-unit')).toBe(!health.includes('unknown'));
        }
      }),
      runs,
    );
    check();
  });

  it('traffic moves onto a unit only as far as its ready pods serve, also when the demand or the live weights are unknown', () => {
    const { hit, check } = branches('demand unknown: live weights held', 'live weights unknown: last good weights held', 'shift limited by ready pods', 'unknown health: no more traffic onto it');
    fc.assert(
      fc.property(world, ([obs, state]) => {
        const d = decideOne(obs, state, policy);
        const observed = unitsOf(obs);
        if (activeOverride(state)?.force) return; // forced: checked below
        if (!names.some((n) => healthOf(observed.get(n)) === 'healthy')) return; // last good weights: checked above
        const before = servingNow(observed, state.services['svc']!.lastGoodWeights);
        if (!before) return; // nothing serves: nothing to break
        const demand = demandOf(obs);
        if (demand === 0) return; // no traffic to strand
        const after = shareOf(d.weights);
        for (const u of spec.units) {
          const canServe = demand === null ? 0 : (healthyPods(observed.get(u.name)) * u.maxRpm) / demand;
          // Integer weights of 100 are within a point of the exact share.
          expect(after[u.name]!, `${u.name}: from ${before[u.name]} with ${healthyPods(observed.get(u.name))} ready pod(s) for ${demand} rpm`).toBeLessThanOrEqual(
            Math.max(before[u.name]!, canServe) + 0.01 + 1e-9,
          );
        }
        const moved = names.some((n) => Math.abs(after[n]! - before[n]!) > 0.011);
        const liveKnown = names.every((n) => observed.get(n)?.liveWeight != null);
        if (demand === null && liveKnown && d.reasons.some((r) => r.startsWith('demand not observed: keeping the live weights'))) {
          expect(moved).toBe(false);
          hit('demand unknown: live weights held');
        }
        if (!liveKnown && d.reasons.some((r) => r.startsWith('live weights not read: keeping the last good weights'))) {
          expect(moved).toBe(false);
          hit('live weights unknown: last good weights held');
        }
        if (d.reasons.some((r) => r.includes('shift held at') && r.includes('pod(s) are ready'))) hit('shift limited by ready pods');
        for (const n of names) {
          if (healthOf(observed.get(n)) === 'unknown' && before[n]! > 0) {
            expect(after[n]!, `${n}'s health is unknown: no more traffic onto it`).toBeLessThanOrEqual(before[n]! + 0.01 + 1e-9);
            hit('unknown health: no more traffic onto it');
          }
        }
      }),
      // 'demand unknown: live weights held' comes up about 9 times in 500 runs: 1,000 keep a run
      // that never draws it (and fails the check below) to about one in 10^7
      { numRuns: 1000 },
    );
    check();
  });

  it('the same inputs give the same decision', () => {
    fc.assert(
      fc.property(world, ([obs, state]) => {
        const a = decide(spec, structuredClone(obs), structuredClone(state), NOW, policy);
        const b = decide(spec, structuredClone(obs), structuredClone(state), NOW, policy);
        expect(a).toEqual(b);
      }),
      { numRuns: 100 },
    );
  });
});

describe.each(POLICY_KINDS)('an active override: %s', (policy) => {
  // A target on some units, the live weights anywhere, and every other input arbitrary.
  const targetArb = fc
    .tuple(...names.map(() => fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 999 }))))
    .filter((ws) => ws.some((w) => w > 0))
    .map((ws) => Object.fromEntries(names.map((n, i) => [n, ws[i]!])));
  const case_ = fc.record({
    target: targetArb,
    live: fc.tuple(...names.map(() => fc.integer({ min: 0, max: 999 }))).filter((ws) => ws.some((w) => w > 0)),
    demand: fc.double({ min: 1, max: 1500, noNaN: true }),
    extraPods: fc.tuple(...names.map(() => fc.integer({ min: 0, max: 3 }))),
    others: arbitraryObservation(spec, NOW),
  });

  it('reaches its target once every unit of the target has the pods its share needs', () => {
    fc.assert(
      fc.property(case_, ({ target, live, demand, extraPods, others }) => {
        const total = Object.values(target).reduce((a, b) => a + b, 0);
        const units: Record<string, Partial<UnitObservation>> = {};
        spec.units.forEach((u, i) => {
          const other = others.services[0]!.units[i]!;
          const need = Math.ceil(((target[u.name]! / total) * demand) / (u.maxRpm * spec.policy.targetUtilization) - 1e-9);
          const ready = target[u.name]! > 0 ? need + extraPods[i]! : (other.readyPods ?? 0);
          // Units outside the target keep whatever health was generated, but it is observed: a
          // unit whose health is unknown may keep the traffic it has.
          units[u.name] = target[u.name]! > 0
            ? { readyPods: ready, healthyTargets: ready, registeredTargets: ready, liveWeight: live[i]!, rpm: null }
            : { ...other, unit: u.name, readyPods: other.readyPods ?? 0, liveWeight: live[i]!, rpm: null };
        });
        const obs = anObservation(spec, NOW, units, [], demand);
        const d = decideOne(obs, stateOf(spec, { override: anOverride({ weights: target }) }), policy);
        expect(d.mode).toBe('override');
        expect(d.weights).toEqual(toIntegerWeights(target, 100));
        expect(d.override).toMatchObject({ fraction: 1, waitingFor: [] });
      }),
      { numRuns: 200 },
    );
  });

  it('with force, applies its target at once on the healthy units, whatever the pods and the demand', () => {
    fc.assert(
      fc.property(targetArb, arbitraryObservation(spec, NOW), (target, obs) => {
        const observed = unitsOf(obs);
        const healthyTarget = Object.fromEntries(names.map((n) => [n, healthOf(observed.get(n)) === 'healthy' ? target[n]! : 0]));
        fc.pre(names.every((n) => healthOf(observed.get(n)) !== 'unknown') && Object.values(healthyTarget).some((w) => w > 0));
        const d = decideOne(obs, stateOf(spec, { override: anOverride({ weights: target, force: true }) }), policy);
        expect(d.weights).toEqual(toIntegerWeights(healthyTarget, 100));
      }),
      { numRuns: 100 },
    );
  });
});

describe.each(POLICY_KINDS)('a world that does not change leaves the state as it is: %s', (policy) => {
  // The world applies each decision (the rule gets the weights, the ScaledObjects the scaling)
  // and nothing else moves: no new signal, no pod starts or stops, the demand is flat. After the
  // shift settles, every tick returns the state it got, so the tick writes nothing.
  it('settles within 20 ticks, then the state stays deep-equal tick after tick', () => {
    const { hit, check } = branches(
      'settled with an input missing',
      // Only the optimizer keeps state that takes several ticks to settle: its floors fall slowly.
      ...(policy === 'optimizer' ? ['settled after several ticks of changes'] : []),
    );
    fc.assert(
      fc.property(arbitraryObservation(spec, NOW, { shortages: false }), arbitraryState(spec, NOW), (first, start) => {
        // An override that ends within the run is a change of the world: it ends before or after.
        const o = start.services['svc']!.override;
        const endsInRun = o !== null && o.until > NOW && o.until <= NOW + 30 * spec.policy.tickSeconds * 1000;
        let state = endsInRun ? stateOf(spec, { ...start.services['svc']!, override: { ...o, until: o.until + 60 * 60_000 } }) : start;
        let obs = first;
        const history = first.services[0]!.demandHistory;
        const routeRead = first.services[0]!.units.every((u) => u.liveWeight !== null);
        let settledAt: number | null = null;
        for (let tick = 0; tick < 30; tick++) {
          const now = NOW + tick * spec.policy.tickSeconds * 1000;
          // Flat history that moves along with the clock.
          const flat = history.length === 0 ? [] : demandHistoryOf(now, history.length, history.at(-1)![1]);
          obs = { ...obs, at: now, services: [{ ...obs.services[0]!, demandHistory: flat }] };
          const d = decide(spec, obs, state, now, policy);
          const unchanged = JSON.stringify({ ...d.state, version: 0 }) === JSON.stringify({ ...state, version: 0 });
          if (settledAt !== null) expect(d.state, `tick ${tick}: the state changed after it had settled at tick ${settledAt}`).toEqual(state);
          else if (unchanged && tick > 0) settledAt = tick;
          const service = d.services[0]!;
          obs = {
            ...obs,
            services: [
              {
                ...obs.services[0]!,
                units: obs.services[0]!.units.map((u) => ({ ...u, liveWeight: routeRead ? service.weights[u.unit]! : null, liveScaling: service.scaling[u.unit]! })),
              },
            ],
          };
          state = d.state;
        }
        expect(settledAt, 'the state never settled').not.toBeNull();
        expect(settledAt!).toBeLessThanOrEqual(20);
        if (settledAt! > 2) hit('settled after several ticks of changes');
        if (first.missing.length > 0 || first.services[0]!.demandRpm === null) hit('settled with an input missing');
      }),
      { numRuns: 100 },
    );
    check();
  });
});

describe.each(['step', 'optimizer'] as const)('hysteresis: %s', (policy) => {
  // Signals that expire within a tick and probes allowed every tick, so a flipping signal really
  // flips the pool between short and proven-back as fast as the rules allow.
  const twitchy = fleetOf(seedLikeUnits(), { shortageSignalSeconds: 30, probeIntervalSeconds: 60, holdSeconds: 600 });
  // 'bursts': short for 5 ticks in every 30, so a pool that stays clear long enough lets the
  // optimizer (which goes back to cost only after the pools were clear for its hold) change twice.
  const pattern = fc.oneof(
    fc.constant('flip' as const),
    fc.constant('bursts' as const),
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
          const on = signalPattern === 'flip' ? i % 2 === 0 : signalPattern === 'bursts' ? i % 30 < 5 : signalPattern[i];
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

describe.each(POLICY_KINDS)('overrides over time: %s', (policy) => {
  it('an override wins until it expires, then automatic control resumes with an alert', () => {
    const until = NOW + 10 * 60_000;
    const weights = { inf2: 0, trn1: 100, 'g5-triton': 0, 'g6-triton': 0, 'g5-cuda': 0 };
    let state = stateOf(spec, { override: anOverride({ weights, until, reason: 'maintenance' }) });
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
        expect(s.override).toBeNull();
        if (minute === 10) expect(s.alerts.map((a) => a.kind)).toContain('override-ended');
      }
      state = d.state;
    }
  });
});
