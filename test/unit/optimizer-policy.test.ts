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

describe('the optimizer releases what it no longer uses', () => {
  // Generated: per unit its ready pods (unread sometimes), its live weight (unread, 0, or some),
  // the floor it kept from the last tick; the demand (unknown, none, or some) and its last
  // minutes (none, rising, falling); a probe on one unit.
  const spec = fleetOf(seedLikeUnits().map((u, i) => ({ ...u, minReplicas: i === 4 ? 2 : 0 })));
  const util = spec.policy.targetUtilization;
  const names = spec.units.map((u) => u.name);
  const unitArb = fc.record({
    ready: fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 })), { nil: null, freq: 6 }),
    liveWeight: fc.option(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 100 })), { nil: null, freq: 6 }),
    floor: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 5 })),
  });
  const caseArb = fc.record({
    units: fc.tuple(...names.map(() => unitArb)),
    demand: fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 })), { nil: null, freq: 5 }),
    trend: fc.constantFrom('none', 'rising', 'falling'),
    probeOn: fc.option(fc.constantFrom(...names), { nil: null, freq: 2 }),
  });
  // Five complete minutes 100 rpm apart, rising towards the demand (or 1,000 rpm when it is
  // unknown) or falling to it.
  const historyOf = (trend: string, demand: number | null): Array<[number, number]> =>
    trend === 'none' ? [] : [0, 1, 2, 3, 4].map((i) => [NOW - (4 - i) * MIN, trend === 'rising' ? Math.max(0, (demand ?? 1000) - 400) + 100 * i : (demand ?? 1000) + 400 - 100 * i]);

  it('releases a unit with no live traffic, no planned share, no floor and no probe; trims the rest to what their traffic needs unless demand grows or is unread', () => {
    const seen = new Map<string, number>();
    const hit = (b: string) => seen.set(b, (seen.get(b) ?? 0) + 1);
    fc.assert(
      fc.property(caseArb, ({ units, demand, trend, probeOn }) => {
        const observed = new Map<string, UnitObservation>(
          names.map((n, i) => [n, aUnitObservation(n, { readyPods: units[i]!.ready, healthyTargets: units[i]!.ready, liveWeight: units[i]!.liveWeight })]),
        );
        const probeUnit = spec.units.find((u) => u.name === probeOn);
        const pools: Record<string, PoolState> = probeUnit
          ? { [probeUnit.family]: { shortSince: NOW - 10 * MIN, lastSignalAt: NOW - 10 * MIN, readyAtShortage: 0, lastProbeAt: NOW - MIN, probe: { unit: probeUnit.name, startedAt: NOW - MIN, baselineReady: 0, pods: 1 } } }
          : {};
        const state = { ...initialServiceState(), floors: Object.fromEntries(names.map((n, i) => [n, units[i]!.floor])), pools };
        const history = historyOf(trend, demand);
        const p = optimizer({ service: 'svc', units: spec.units, observed, demandRpm: demand, demandHistory: history, settings: spec.policy, state, now: NOW });
        const weights = units.map((u) => u.liveWeight);
        const weightTotal = weights.reduce<number>((s, w) => s + (w ?? 0), 0);
        for (const [i, u] of spec.units.entries()) {
          const s = p.scaling[u.name]!;
          expect(s.minReplicas).toBeLessThanOrEqual(s.maxReplicas);
          const live = observed.get(u.name)!.liveWeight;
          const share = p.shares[u.name] ?? 0;
          const floor = p.state.floors![u.name] ?? 0;
          const probing = probeOn === u.name;
          const keeps = live !== 0 || share > 0 || floor > 0 || probing;
          if (!keeps) {
            expect(s.maxReplicas).toBe(Math.max(1, u.minReplicas));
            hit(u.minReplicas > 1 ? 'released to the operator minimum' : 'released to one pod');
          } else if (demand === null || weights.some((w) => w === null) || trend === 'rising') {
            expect(s.maxReplicas).toBe(u.maxReplicas);
            hit(demand === null ? 'kept: demand unread' : trend === 'rising' ? 'kept: demand growing' : 'kept: a live weight unread');
          } else {
            // Never below the pods its traffic needs, now (live) or as planned, nor its floor or probe.
            const carried = weightTotal > 0 ? ((weights[i] ?? 0) / weightTotal) * demand : 0;
            const needs = Math.max(1, u.minReplicas, floor, probing ? 1 : 0, Math.ceil(Math.max(share, carried) / (u.maxRpm * util) - 1e-9));
            expect(s.maxReplicas).toBe(Math.min(u.maxReplicas, needs));
            const ready = units[i]!.ready ?? 0;
            hit(s.maxReplicas < ready ? (carried > share + 1e-9 ? 'trimmed, keeping the traffic a shift still holds' : 'trimmed below its ready pods') : 'trimmed, no pod to let go');
          }
        }
      }),
      { numRuns: 1200 }, // 'trimmed, keeping the traffic a shift still holds' comes up about 10 times in 600
    );
    for (const b of [
      'kept: demand unread',
      'kept: demand growing',
      'kept: a live weight unread',
      'trimmed below its ready pods',
      'trimmed, keeping the traffic a shift still holds',
      'trimmed, no pod to let go',
      'released to the operator minimum',
      'released to one pod',
    ]) {
      expect(seen.get(b) ?? 0, `never generated: ${b}`).toBeGreaterThan(0);
    }
  });

  it('lets pods go at once when demand falls, instead of through the HPA\'s scale-down window', () => {
    // 20 inf2 pods carry the whole demand, which fell to 1,000 rpm: 11 pods serve it at the target.
    const observed = new Map<string, UnitObservation>(spec.units.map((u) => [u.name, aUnitObservation(u.name, { readyPods: u.name === 'inf2' ? 20 : 0, healthyTargets: u.name === 'inf2' ? 20 : 0, liveWeight: u.name === 'inf2' ? 100 : 0 })]));
    const ctx = { service: 'svc', units: spec.units, observed, demandHistory: historyOf('falling', 1000), settings: spec.policy, now: NOW };
    const falling = optimizer({ ...ctx, demandRpm: 1000, state: initialServiceState() });
    expect(falling.scaling['inf2']!.maxReplicas).toBe(Math.ceil(1000 / (105 * util)));
    const rising = optimizer({ ...ctx, demandHistory: historyOf('rising', 1000), demandRpm: 1000, state: initialServiceState() });
    expect(rising.scaling['inf2']!.maxReplicas).toBe(40);
  });
});

describe('the optimizer moves traffic to a cheaper pool only when the move pays back', () => {
  // inf2 (cheapest) is short; its 5 ready pods are full. The GPU unit g5-triton carries the rest
  // of the demand on running pods; trn1, cheaper than g5-triton, has no pod. Moving the GPU
  // traffic to trn1 means starting trn1 pods (600 s each, the spec's) and g5's nodes billed for
  // Karpenter's consolidation (390 s): it pays only if the traffic then stays on trn1 for long,
  // and it leaves trn1 as soon as inf2 is proven back.
  // 'none': inf2 is not short but held at an operator maximum of 5 pods, so trn1 still takes the rest.
  const spec = (probe: string) =>
    fleetOf(seedLikeUnits().map((u) => (probe === 'none' && u['name'] === 'inf2' ? { ...u, maxReplicas: 5 } : u)), probe === 'due-in-a-day' ? { probeIntervalSeconds: 86_400 } : {});
  const observed = (ready: Record<string, number | null>, weight: Record<string, number | null>) =>
    new Map<string, UnitObservation>(seedLikeUnits().map((u) => {
      const n = u['name'] as string;
      // inf2's next pod (its probe's, while one runs) is Pending: the pool launches nothing.
      const pending = n === 'inf2' ? 1 : 0;
      return [n, aUnitObservation(n, { readyPods: ready[n] ?? 0, desiredPods: (ready[n] ?? 0) + pending, pendingPods: pending, healthyTargets: ready[n] ?? 0, liveWeight: n in weight ? weight[n]! : 0 })];
    }));
  const inf2Short = (probe: 'running' | 'due-in-a-day' | 'none'): Record<string, PoolState> =>
    probe === 'none'
      ? {}
      : {
          inf2: {
            shortSince: NOW - 30 * MIN,
            lastSignalAt: NOW - 30 * MIN,
            readyAtShortage: 5,
            lastProbeAt: probe === 'running' ? NOW - 2 * MIN : NOW,
            probe: probe === 'running' ? { unit: 'inf2', startedAt: NOW - 2 * MIN, baselineReady: 5, pods: 1 } : null,
          },
        };
  const floorsOf = (probe: 'running' | 'due-in-a-day' | 'none', demand: number | null = 1000, ready: Record<string, number | null> = { inf2: 5, 'g5-triton': 7 }, weight: Record<string, number | null> = { inf2: 50, 'g5-triton': 50 }) => {
    const s = spec(probe);
    const state = { ...initialServiceState(), mode: 'capacity' as const, since: NOW - 30 * MIN, pools: inf2Short(probe) };
    return optimizer({ service: 'svc', units: s.units, observed: observed(ready, weight), demandRpm: demand, demandHistory: [], settings: s.policy, state, now: NOW }).state.floors!;
  };

  it('keeps the GPU traffic on its running pods while inf2 could be proven back within minutes', () => {
    const floors = floorsOf('running');
    // g5-triton keeps its 500 rpm (7 pods at 81); trn1 gets only what inf2 and g5-triton leave.
    expect(floors['g5-triton']).toBe(Math.ceil(500 / (90 * 0.9)));
    expect(floors['trn1']).toBe(Math.ceil((1000 - 5 * 94.5 - 500) / (130 * 0.9)));
  });

  it('moves it to trn1 when inf2 cannot be back for a day, or is not short (held at its maximum)', () => {
    for (const probe of ['due-in-a-day', 'none'] as const) {
      const floors = floorsOf(probe);
      expect(floors['g5-triton'], probe).toBe(0);
      expect(floors['trn1'], probe).toBeGreaterThan(0);
    }
  });

  it('keeps only traffic it can read: none when the weights or the demand are unread, or the GPU unit has no ready pod', () => {
    // Generated: the probe state, the demand (unknown, none, some), the live weights (unread,
    // none, some) and the ready pods of g5-triton (unread, none, some), inf2's ready pods.
    // Unread 1 in 5, none 1 in 5, some 3 in 5: "kept on running GPU pods" needs all three read
    // and positive with the probe running, about 18 of 400 runs (at one zero per positive it
    // was 5.5, and a run that drew none failed the coverage check below about once in 250).
    const unreadNoneOrSome = (max: number) =>
      fc.option(fc.oneof({ arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.integer({ min: 1, max }), weight: 3 }), { nil: null, freq: 4 });
    const seen = new Map<string, number>();
    const hit = (b: string) => seen.set(b, (seen.get(b) ?? 0) + 1);
    fc.assert(
      fc.property(
        fc.constantFrom('running', 'due-in-a-day', 'none'),
        unreadNoneOrSome(3000),
        unreadNoneOrSome(100),
        unreadNoneOrSome(30),
        fc.integer({ min: 0, max: 10 }),
        (probe, demand, gpuWeight, gpuReady, inf2Ready) => {
          const floors = floorsOf(probe, demand, { inf2: inf2Ready, 'g5-triton': gpuReady }, { inf2: 50, 'g5-triton': gpuWeight });
          const carried = demand !== null && gpuWeight !== null && gpuWeight > 0 ? Math.min((gpuWeight / (50 + gpuWeight)) * demand, (gpuReady ?? 0) * 81) : 0;
          const left = Math.max(0, (demand ?? 0) - (probe === 'none' ? 5 : inf2Ready) * 94.5);
          // The GPU unit is planned only for what it carries and a move would not pay back for.
          const kept = probe === 'running' ? Math.min(carried, left) : 0;
          const pods = (rpm: number, perPod: number) => Math.max(0, Math.ceil(rpm / perPod - 1e-9));
          expect(floors['g5-triton']).toBe(pods(kept, 81));
          // Nothing the plan needs is dropped: trn1 takes the rest.
          expect(floors['trn1']).toBe(pods(left - kept, 117));
          hit(
            probe !== 'running' ? `moved: inf2 ${probe === 'none' ? 'not short' : 'back in a day at the soonest'}`
            : demand === null ? 'nothing kept: demand unread'
            : gpuWeight === null ? 'nothing kept: weights unread'
            : gpuReady === null || gpuReady === 0 ? 'nothing kept: no ready GPU pod'
            : kept > 0 ? 'kept on running GPU pods' : 'nothing kept: no GPU traffic or none left over',
          );
        },
      ),
      { numRuns: 400 },
    );
    for (const b of ['moved: inf2 not short', 'moved: inf2 back in a day at the soonest', 'nothing kept: demand unread', 'nothing kept: weights unread', 'nothing kept: no ready GPU pod', 'kept on running GPU pods', 'nothing kept: no GPU traffic or none left over']) {
      expect(seen.get(b) ?? 0, `never generated: ${b}`).toBeGreaterThan(0);
    }
  });
});

describe('the optimizer counts what a short pool will still give it', () => {
  // inf2 (cheapest) is short with 5 ready pods; it carries all the traffic. 1,000 rpm: trn1 takes
  // what inf2 cannot. Pods bound to a node (starting, not Pending) come up although the pool
  // launches nothing new; a probe whose pod got a node shows the pool launches again.
  const spec = fleetOf(seedLikeUnits());
  const probe = { unit: 'inf2', startedAt: NOW - 2 * MIN, baselineReady: 5, pods: 1 };
  const planFor = (inf2: Partial<UnitObservation>, probing: boolean) => {
    const observed = new Map<string, UnitObservation>(
      spec.units.map((u) => [u.name, u.name === 'inf2' ? aUnitObservation('inf2', { readyPods: 5, healthyTargets: 5, liveWeight: 100, ...inf2 }) : aUnitObservation(u.name, { readyPods: 0, desiredPods: 0, healthyTargets: 0, liveWeight: 0 })]),
    );
    const pools: Record<string, PoolState> = { inf2: { shortSince: NOW - 30 * MIN, lastSignalAt: NOW - 30 * MIN, readyAtShortage: 5, lastProbeAt: NOW - 2 * MIN, probe: probing ? probe : null } };
    const state = { ...initialServiceState(), mode: 'capacity' as const, since: NOW - 30 * MIN, pools };
    return optimizer({ service: 'svc', units: spec.units, observed, demandRpm: 1000, demandHistory: [], settings: spec.policy, state, now: NOW }).state.floors!;
  };
  const pods = (rpm: number, perPod: number) => Math.ceil(rpm / perPod - 1e-9);

  it('plans on the pods starting on a node of a held pool, not on its Pending ones', () => {
    const starting = planFor({ desiredPods: 8, pendingPods: 0 }, false);
    expect(starting['inf2']).toBe(8);
    expect(starting['trn1']).toBe(pods(1000 - 8 * 94.5, 117));
    const pending = planFor({ desiredPods: 8, pendingPods: 3 }, false);
    expect(pending['inf2']).toBe(5);
    expect(pending['trn1']).toBe(pods(1000 - 5 * 94.5, 117));
  });

  it('plans the whole demand on the pool again once its probe pod has a node, before the pod is ready', () => {
    const launched = planFor({ desiredPods: 6, pendingPods: 0 }, true);
    expect(launched['inf2']).toBe(pods(1000, 94.5));
    expect(launched['trn1']).toBe(0);
    const refused = planFor({ desiredPods: 6, pendingPods: 1 }, true);
    expect(refused['inf2']).toBe(5);
    expect(refused['trn1']).toBe(pods(1000 - 5 * 94.5, 117));
  });
});

describe('the optimizer on falling demand', () => {
  // 22 inf2 pods carry the whole demand; CloudWatch's newest minute began 3 minutes ago
  // (2,000 rpm). The line through the minutes before says where demand is now.
  const spec = fleetOf(seedLikeUnits());
  const observed = new Map<string, UnitObservation>(spec.units.map((u) => [u.name, aUnitObservation(u.name, { readyPods: u.name === 'inf2' ? 22 : 0, desiredPods: u.name === 'inf2' ? 22 : 0, healthyTargets: u.name === 'inf2' ? 22 : 0, liveWeight: u.name === 'inf2' ? 100 : 0 })]));
  const scalingFor = (slopePerMinute: number) => {
    const history: Array<[number, number]> = [7, 6, 5, 4, 3].map((ago) => [NOW - ago * MIN, 2000 - slopePerMinute * (ago - 3)]);
    return optimizer({ service: 'svc', units: spec.units, observed, demandRpm: 2000, demandHistory: history, settings: spec.policy, state: initialServiceState(), now: NOW }).scaling['inf2']!;
  };

  it('sizes the pods for the demand the trend gives now, not for the minute CloudWatch last delivered', () => {
    // −20 rpm a minute: 1,940 rpm now, 21 pods at the target (2,000 rpm would need 22).
    expect(scalingFor(-20)).toMatchObject({ minReplicas: 21, maxReplicas: 21 });
  });

  it('never below what serves the delivered minute at the breaking point', () => {
    // −100 rpm a minute would say 1,700 rpm; the pods kept serve 2,000 rpm at the breaking point.
    const s = scalingFor(-100);
    expect(s.maxReplicas).toBe(Math.ceil((0.9 * 2000) / 94.5));
    expect(s.maxReplicas * 105).toBeGreaterThanOrEqual(2000);
  });

  it('leaves rising demand to the forecast', () => {
    const s = scalingFor(20);
    expect(s.maxReplicas).toBe(40);
    expect(s.minReplicas).toBeGreaterThan(Math.ceil(2000 / 94.5));
  });
});
