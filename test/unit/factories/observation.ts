import fc from 'fast-check';
import type { FleetSpec } from '../../../shared/src/spec/schema.ts';
import type { Observation, PoolSignal, UnitObservation } from '../../../shared/src/core/types.ts';

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
      units: spec.units.filter((u) => u.service === service).map((u) => aUnitObservation(u.name, units[u.name])),
    })),
    signals,
    missing: [],
  };
}

/** Arbitrary observations of the given units: any mix of health, pods, weights and demand. */
export function arbitraryObservation(spec: FleetSpec, at: number): fc.Arbitrary<Observation> {
  const unitArb = (unit: string) =>
    fc.record({
      ready: fc.integer({ min: 0, max: 20 }),
      healthyFraction: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
      pending: fc.integer({ min: 0, max: 5 }),
      pendingAge: fc.integer({ min: 0, max: 1200 }),
      liveWeight: fc.option(fc.integer({ min: 0, max: 999 }), { nil: null }),
      rpm: fc.option(fc.double({ min: 0, max: 3000, noNaN: true }), { nil: null }),
    }).map(
      (r): UnitObservation => ({
        unit,
        rpm: r.rpm,
        p99Seconds: null,
        readyPods: r.ready,
        desiredPods: r.ready + r.pending,
        pendingPods: r.pending,
        oldestPendingSeconds: r.pending > 0 ? r.pendingAge : 0,
        healthyTargets: r.healthyFraction === null ? null : Math.floor(r.ready * r.healthyFraction),
        registeredTargets: r.ready,
        liveWeight: r.liveWeight,
        liveScaling: null,
      }),
    );
  const families = [...new Set(spec.units.map((u) => u.family))];
  const signalArb = fc.array(
    fc.record({ family: fc.constantFrom(...families), ago: fc.integer({ min: 0, max: 600 }) }).map(
      (s): PoolSignal => ({ family: s.family, kind: 'insufficient-capacity', at: at - s.ago * 1000 }),
    ),
    { maxLength: 4 },
  );
  return fc
    .record({
      units: fc.tuple(...spec.units.map((u) => unitArb(u.name))),
      signals: signalArb,
      demand: fc.option(fc.double({ min: 0, max: 5000, noNaN: true }), { nil: null }),
    })
    .map(({ units, signals, demand }) => ({
      at,
      services: [{ service: spec.units[0]!.service, demandRpm: demand, units }],
      signals,
      missing: [],
    }));
}
