import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '../../shared/src/policies/index.ts';
import { initialControllerState } from '../../shared/src/core/state.ts';
import type { ControllerState, PoolSignal } from '../../shared/src/core/types.ts';
import { fleetOf, seedLikeUnits } from './factories/fleet.ts';
import { anObservation } from './factories/observation.ts';

// A Capacity Reservation (ODCR or Capacity Block) with free instances of a short pool's family:
// Karpenter's cache of the refused on-demand offering does not apply to it, so the probe that
// proves the pool is back need not wait for the refusals to age out. It does not end the
// shortage by itself: only pods that become ready do.
const spec = fleetOf(seedLikeUnits());
const NOW = Date.parse('2026-11-14T12:00:00Z');
const TICK = spec.policy.tickSeconds * 1000;

const ice = (at: number): PoolSignal => ({ family: 'inf2', kind: 'insufficient-capacity', at });
const reservation = (now: number): PoolSignal => ({
  family: 'inf2',
  kind: 'reservation-available',
  // The EC2 adapter stamps a standing reservation with the start of the read window.
  at: now - (spec.policy.shortageSignalSeconds + spec.policy.tickSeconds) * 1000,
  detail: 'cr-0123: 2/4 inf2.xlarge free in us-east-1a',
});

/** Ticks through the minutes; inf2 is refused at minute 0; `reserved` says when a reservation is seen; inf2 readiness per minute. */
function run(minutes: number, reserved: (minute: number) => boolean, inf2Ready: (minute: number) => number | null) {
  let state: ControllerState = initialControllerState();
  const ticks = [];
  for (let m = 0; m < minutes; m++) {
    const now = NOW + m * TICK;
    const signals = [...(m === 0 ? [ice(now)] : []), ...(reserved(m) ? [reservation(now)] : [])];
    const ready = inf2Ready(m);
    // Unread pods (the cluster unreachable) with the ALB still read: 2 healthy targets.
    const d = decide(spec, anObservation(spec, now, { inf2: { readyPods: ready, healthyTargets: ready ?? 2 } }, signals, 400), state, now, 'step');
    state = d.state;
    ticks.push({ minute: m, decision: d.services[0]!, pool: state.services['svc']!.pools['inf2']! });
  }
  return ticks;
}

const probeStart = (ticks: ReturnType<typeof run>) => ticks.find((t) => t.decision.reasons.some((r) => r.startsWith('probing inf2: raising')))?.minute;
const shortageEnd = (ticks: ReturnType<typeof run>) => ticks.find((t) => t.decision.reasons.some((r) => r.startsWith('probe of inf2 succeeded')))?.minute;

describe('a capacity reservation with free instances in a short pool', () => {
  it('starts the probe at once instead of after the refusals age out', () => {
    const without = run(6, () => false, () => 2);
    const withReservation = run(6, (m) => m >= 1, () => 2);
    expect(probeStart(without)).toBe(spec.policy.shortageSignalSeconds / spec.policy.tickSeconds);
    expect(probeStart(withReservation)).toBe(1);
    const probing = withReservation[1]!;
    expect(probing.decision.reasons.join('\n')).toMatch(/capacity reservation has free instances/);
    expect(probing.decision.scaling['inf2']!.minReplicas).toBe(2 + spec.policy.probePods);
  });

  it('ends the shortage sooner once the probe\'s pods become ready', () => {
    // The probe's pod is ready two minutes after it is asked for.
    const readyAfterProbe = (start: number) => (m: number) => (m >= start + 2 ? 3 : 2);
    const without = run(10, () => false, readyAfterProbe(3));
    const withReservation = run(10, (m) => m >= 1, readyAfterProbe(1));
    expect(shortageEnd(withReservation)).toBe(3);
    expect(shortageEnd(without)).toBe(5);
  });

  it('does not end a shortage by itself: without ready pods the pool stays short', () => {
    const ticks = run(10, (m) => m >= 1, () => 2);
    expect(ticks.every((t) => t.pool.shortSince !== null)).toBe(true);
    expect(shortageEnd(ticks)).toBeUndefined();
  });

  it('does not turn a pool short, nor start a probe in a pool that is not short', () => {
    const ticks = run(3, () => true, () => 2).slice(1);
    for (const t of ticks) expect(t.decision.reasons.some((r) => r.startsWith('probing'))).toBe(t.pool.shortSince !== null);
    const calm = decide(spec, anObservation(spec, NOW, {}, [reservation(NOW)], 400), initialControllerState(), NOW, 'step').state.services['svc']!;
    expect(calm.pools['inf2']).toMatchObject({ shortSince: null, probe: null });
  });
});

describe('a probe with the cluster unread', () => {
  const quietAt = spec.policy.shortageSignalSeconds / spec.policy.tickSeconds;

  it('does not start while the probe unit\'s pods are not observed, and starts from what is ready once they are', () => {
    const ticks = run(quietAt + 4, () => false, (m) => (m >= quietAt && m < quietAt + 2 ? null : 2));
    expect(ticks[quietAt]!.decision.reasons).toContain('probe of inf2 waits: pods of inf2 not observed');
    expect(probeStart(ticks)).toBe(quietAt + 2);
    expect(ticks[quietAt + 2]!.pool.probe).toMatchObject({ baselineReady: 2 });
  });

  it('is neither failed nor passed while its pods are not observed, even past its deadline', () => {
    const deadlineMinutes = (spec.units[0]!.startupSeconds + spec.policy.pendingGraceSeconds) / 60;
    const seenAgain = quietAt + deadlineMinutes + 3;
    const ticks = run(seenAgain + 1, () => false, (m) => (m <= quietAt ? 2 : m < seenAgain ? null : 3));
    expect(probeStart(ticks)).toBe(quietAt);
    for (const t of ticks.slice(quietAt + 1, seenAgain)) {
      expect(t.decision.reasons).toContain('probing inf2: pods of inf2 not observed; the probe is judged when they are');
      expect(t.pool.probe).not.toBeNull();
    }
    expect(shortageEnd(ticks)).toBe(seenAgain);
  });
});

describe('a probe waits out the nodes a scale-down left empty', () => {
  // Karpenter keeps a node whose pod went away for consolidateAfter (plus drain and termination):
  // a probe pod scheduled onto one would prove nothing about new capacity.
  const emptyMinutes = spec.policy.emptyNodeSeconds / 60;
  const quietAt = spec.policy.shortageSignalSeconds / spec.policy.tickSeconds;

  /** Ticks with inf2 refused at minute 0 and its pods on a node per minute as given (null: unread). */
  function placedRun(placed: ReadonlyArray<number | null>) {
    let state: ControllerState = initialControllerState();
    return placed.map((p, m) => {
      const now = NOW + m * TICK;
      const pods = p === null ? { readyPods: 2, desiredPods: null, pendingPods: null } : { readyPods: 2, desiredPods: p, pendingPods: 0 };
      const d = decide(spec, anObservation(spec, now, { inf2: { ...pods, healthyTargets: 2 } }, m === 0 ? [ice(now)] : [], 400), state, now, 'step');
      state = d.state;
      return { minute: m, reasons: d.services[0]!.reasons, pool: state.services['svc']!.pools['inf2']! };
    });
  }

  it('starts the probe only emptyNodeSeconds after the pool last shrank; without a shrink, once the refusals are quiet', () => {
    const started = (ticks: ReturnType<typeof placedRun>) => ticks.find((t) => t.reasons.some((r) => r.startsWith('probing inf2: raising')))?.minute;
    const steady = placedRun(Array.from({ length: 12 }, () => 5));
    expect(started(steady)).toBe(quietAt);
    const shrank = placedRun(Array.from({ length: 12 }, (_, m) => (m < 2 ? 5 : 3)));
    expect(shrank[quietAt]!.reasons.join('\n')).toMatch(/probe of inf2 waits: its pods went down 60 s ago/);
    expect(started(shrank)).toBe(2 + Math.ceil(emptyMinutes));
  });

  it('never probes within emptyNodeSeconds of a shrink it read, and probes as soon as nothing else holds it back', () => {
    const seen = new Map<string, number>();
    const hit = (b: string) => seen.set(b, (seen.get(b) ?? 0) + 1);
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 6 }), { nil: null, freq: 4 }), { minLength: 8, maxLength: 24 }), (placed) => {
        const ticks = placedRun(placed);
        let last: number | null = null;
        let shrankAt: number | null = null;
        let lastProbeAt: number | null = null;
        let probing = false;
        ticks.forEach((t, m) => {
          const p = placed[m]!;
          if (p === null) hit('counts unread');
          else {
            if (last !== null && p < last) shrankAt = m;
            last = p;
          }
          const started = t.reasons.some((r) => r.startsWith('probing inf2: raising'));
          const settled = shrankAt === null || (m - shrankAt) * 60 >= spec.policy.emptyNodeSeconds;
          const free = !probing && m >= quietAt && (lastProbeAt === null || (m - lastProbeAt) * 60 >= spec.policy.probeIntervalSeconds);
          expect(started).toBe(free && settled);
          if (free && !settled) hit('held back by a recent shrink');
          if (started) hit(shrankAt === null ? 'probed, nothing shrank' : 'probed after a shrink aged out');
          // When the probe interval counts from (a start or a failure) is the pool's own bookkeeping.
          lastProbeAt = t.pool.lastProbeAt === null ? null : (t.pool.lastProbeAt - NOW) / TICK;
          probing = t.pool.probe !== null;
        });
      }),
      { numRuns: 400 }, // 'probed after a shrink aged out' comes up about 9 times in 200
    );
    for (const b of ['counts unread', 'held back by a recent shrink', 'probed, nothing shrank', 'probed after a shrink aged out']) expect(seen.get(b) ?? 0, `never generated: ${b}`).toBeGreaterThan(0);
  });
});
