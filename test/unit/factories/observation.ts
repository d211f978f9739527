import fc from 'fast-check';
import type { FleetSpec } from '../../../shared/src/spec/schema.ts';
import { initialServiceState } from '../../../shared/src/core/state.ts';
import type { ControllerState, Observation, Override, PoolSignal, ServiceState, UnitObservation } from '../../../shared/src/core/types.ts';

/** A unit observation with everything known and nothing pending, changed where a case needs. */
export function aUnitObservation(unit: string, overrides: Partial<UnitObservation> = {}): UnitObservation {
  return {
    unit,
    rpm: 0,
    p99Seconds: 0.5,
    readyPods: 2,
    desiredPods: 2,
    pendingPods: 0,
    oldestPendingSeconds: 0,
    healthyTargets: 2,
    registeredTargets: 2,
    liveWeight: 20,
    liveScaling: null,
    ...overrides,
  };
}

export function anObservation(spec: FleetSpec, at: number, units: Record<string, Partial<UnitObservation>> = {}, signals: PoolSignal[] = [], demandRpm: number | null = 500): Observation {
  return {
    at,
    services: Object.keys(spec.services).map((service) => ({
      service,
      demandRpm,
      demandHistory: [],
      units: spec.units.filter((u) => u.service === service).map((u) => aUnitObservation(u.name, units[u.name])),
    })),
    signals,
    missing: [],
  };
}

/** An override of the fleet's first service, changed where a case needs. */
export function anOverride(overrides: Partial<Override> = {}): Override {
  return { id: 'req-1', startedAt: 0, until: Date.parse('2100-01-01T00:00:00Z'), reason: 'test', by: 'alice', ...overrides };
}

/** The fleet's one service in the given state. */
export function stateOf(spec: FleetSpec, service: Partial<ServiceState>, version = 1): ControllerState {
  return { version, services: { [spec.units[0]!.service]: { ...initialServiceState(), ...service } } };
}

/**
 * What a tick could not read, all at once: CloudWatch down (no throughput, no demand, no history),
 * the listener rule unreadable (no live weights, no target health), the cluster unreadable (no pod
 * counts), every unit without a healthy target, or one unit neither the ALB nor the cluster
 * could be asked about (its target group and its pods unread).
 */
export type Outage = 'none' | 'metrics' | 'route' | 'pods' | 'all-unhealthy' | 'one-unit-unseen';

export interface ObservationOptions {
  /** Shortage signals and pods Pending for capacity; off for a world that does not change. */
  shortages?: boolean;
}

/**
 * Arbitrary observations of the given units, biased toward the awkward cases: missing inputs
 * (null demand, null pod counts, null live weights, null health, missing metrics), live weights
 * unlike any policy's split, units with no ready pod, every unit unhealthy.
 */
export function arbitraryObservation(spec: FleetSpec, at: number, options: ObservationOptions = {}): fc.Arbitrary<Observation> {
  const shortages = options.shortages ?? true;
  const service = spec.units[0]!.service;
  const unitArb = (unit: string) =>
    fc
      .record({
        ready: fc.option(fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: 20 })), { nil: null, freq: 8 }),
        health: fc.oneof(
          { weight: 4, arbitrary: fc.constant('all-ready' as const) },
          { weight: 1, arbitrary: fc.constant('none-healthy' as const) },
          { weight: 1, arbitrary: fc.constant('none-registered' as const) },
          { weight: 1, arbitrary: fc.constant('unread' as const) },
          { weight: 2, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) },
        ),
        pending: shortages ? fc.integer({ min: 0, max: 5 }) : fc.constant(0),
        pendingAge: fc.integer({ min: 0, max: 1200 }),
        liveWeight: fc.option(fc.oneof(fc.constant(0), fc.constant(100), fc.integer({ min: 0, max: 999 })), { nil: null, freq: 8 }),
        rpm: fc.option(fc.double({ min: 0, max: 3000, noNaN: true }), { nil: null, freq: 8 }),
      })
      .map((r): UnitObservation => {
        const ready = r.ready ?? 0;
        const healthy = r.health === 'all-ready' ? ready : r.health === 'none-healthy' || r.health === 'none-registered' ? 0 : r.health === 'unread' ? null : Math.floor(ready * r.health);
        return {
          unit,
          rpm: r.rpm,
          p99Seconds: null,
          readyPods: r.ready,
          desiredPods: r.ready === null ? null : r.ready + r.pending,
          pendingPods: r.ready === null ? null : r.pending,
          oldestPendingSeconds: r.ready === null ? null : r.pending > 0 ? r.pendingAge : 0,
          healthyTargets: healthy,
          registeredTargets: r.health === 'unread' ? null : r.health === 'none-registered' ? 0 : ready,
          liveWeight: r.liveWeight,
          liveScaling: null,
        };
      });
  const families = [...new Set(spec.units.map((u) => u.family))];
  const signalArb = shortages
    ? fc.array(
        fc
          .record({ family: fc.constantFrom(...families), ago: fc.integer({ min: 0, max: 600 }), kind: fc.constantFrom('insufficient-capacity' as const, 'interruption' as const, 'reservation-available' as const) })
          .map((s): PoolSignal => ({ family: s.family, kind: s.kind, at: at - s.ago * 1000 })),
        { maxLength: 4 },
      )
    : fc.constant<PoolSignal[]>([]);
  const outage = fc.oneof(
    { weight: 3, arbitrary: fc.constant<Outage>('none') },
    { weight: 2, arbitrary: fc.constantFrom<Outage>('metrics', 'route', 'pods', 'all-unhealthy', 'one-unit-unseen') },
  );
  return fc
    .record({
      units: fc.tuple(...spec.units.map((u) => unitArb(u.name))),
      signals: signalArb,
      demand: fc.option(fc.oneof(fc.constant(0), fc.double({ min: 0, max: 5000, noNaN: true })), { nil: null, freq: 5 }),
      historyMinutes: fc.integer({ min: 0, max: 30 }),
      // Minutes CloudWatch runs behind the read: 0 as usual, or so far behind that its newest
      // delivered minute is too old to stand in for the demand.
      historyBehind: fc.constantFrom(0, 0, 10),
      trend: fc.double({ min: -50, max: 50, noNaN: true }),
      outage,
      unseen: fc.nat(spec.units.length - 1),
    })
    .map(({ units, signals, demand, historyMinutes, historyBehind, trend, outage, unseen }): Observation => {
      let seen = units;
      const missing: string[] = [];
      if (outage === 'metrics') {
        seen = seen.map((u) => ({ ...u, rpm: null, p99Seconds: null }));
        missing.push('metrics');
      } else if (outage === 'route') {
        seen = seen.map((u) => ({ ...u, liveWeight: null, healthyTargets: null, registeredTargets: null }));
        missing.push(`${service}: listener rule`);
      } else if (outage === 'pods') {
        seen = seen.map((u) => ({ ...u, readyPods: null, desiredPods: null, pendingPods: null, oldestPendingSeconds: null }));
        missing.push('pods');
      } else if (outage === 'all-unhealthy') {
        seen = seen.map((u) => ({ ...u, readyPods: 0, healthyTargets: 0 }));
      } else if (outage === 'one-unit-unseen') {
        const unit = seen[unseen]!.unit;
        seen = seen.map((u) => (u.unit === unit ? { ...u, readyPods: null, desiredPods: null, pendingPods: null, oldestPendingSeconds: null, healthyTargets: null, registeredTargets: null } : u));
        missing.push(`${service}: target group ${unit}`, `pods of ${unit}`);
      }
      const known = outage === 'metrics' ? null : demand;
      return {
        at,
        services: [{ service, demandRpm: known, demandHistory: demandHistoryOf(at - historyBehind * 60_000, historyMinutes, known ?? (demand ?? 1000), trend, outage === 'metrics'), units: seen }],
        signals,
        missing,
      };
    });
}

/** Complete minutes before `at`, lagged two minutes as CloudWatch's are, ending at `last` rpm. */
export function demandHistoryOf(at: number, minutes: number, last: number, trendPerMinute = 0, unknown = false): Array<[number, number]> {
  if (unknown) return [];
  const end = Math.floor(at / 60_000) * 60_000 - 120_000;
  return Array.from({ length: minutes }, (_, i): [number, number] => [end - (minutes - 1 - i) * 60_000, Math.max(0, last - trendPerMinute * (minutes - 1 - i))]);
}

/**
 * Arbitrary states of the fleet's service: settled or fresh, with or without last good weights,
 * with an override (forced or not, weights or a mode) whose target differs from what is live,
 * active or already expired.
 */
export function arbitraryState(spec: FleetSpec, at: number): fc.Arbitrary<ControllerState> {
  const names = spec.units.map((u) => u.name);
  const weightsArb = fc.tuple(...names.map(() => fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999 })))).map((ws) => Object.fromEntries(names.map((n, i) => [n, ws[i]!])));
  const overrideArb = fc
    .record({
      target: fc.oneof(
        { weight: 3, arbitrary: weightsArb.filter((w) => Object.values(w).some((x) => x > 0)).map((weights) => ({ weights })) },
        { weight: 1, arbitrary: fc.constantFrom('cost' as const, 'capacity' as const).map((mode) => ({ mode })) },
      ),
      force: fc.boolean(),
      minutesLeft: fc.integer({ min: -5, max: 120 }),
    })
    .map(({ target, force, minutesLeft }): Override => anOverride({ ...target, force, startedAt: at - 60_000, until: at + minutesLeft * 60_000 }));
  // Floors the optimizer raised on earlier ticks (it lowers them a step per tick).
  const floorsArb = fc.option(fc.tuple(...names.map(() => fc.integer({ min: 0, max: 10 }))).map((fs) => Object.fromEntries(names.map((n, i) => [n, fs[i]!]))), { nil: {}, freq: 2 });
  return fc
    .record({
      lastGoodWeights: fc.option(weightsArb, { nil: null, freq: 3 }),
      override: fc.option(overrideArb, { nil: null, freq: 2 }),
      floors: floorsArb,
    })
    .map(({ lastGoodWeights, override, floors }) => stateOf(spec, { lastGoodWeights, override, floors }));
}
