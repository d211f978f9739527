import type { FleetSpec } from '../../../shared/src/spec/schema.ts';
import { parseFleetSpec } from '../../../shared/src/spec/load.ts';

/** Test factories with overrides, as Karpenter's tests do: a valid default, changed where a case needs. */

export function aUnit(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'svc-a',
    service: 'svc',
    model: 'm',
    family: 'inf2',
    instanceType: 'inf2.xlarge',
    framework: 'neuron',
    pricePerHour: 1,
    maxRpm: 100,
    latencySeconds: 0.5,
    ...overrides,
  };
}

export function aFleet(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'hwai/v1',
    kind: 'Fleet',
    metadata: { name: 'test' },
    services: { svc: { sloSeconds: 0.9 } },
    units: [aUnit()],
    ...overrides,
  };
}

/** A valid, parsed fleet of one service with the given units (defaults filled in). */
export function fleetOf(units: Array<Record<string, unknown>>, policy: Record<string, unknown> = {}): FleetSpec {
  return parseFleetSpec(aFleet({ units, policy }), 'test-fleet');
}

/** The seed's five SD 2.1 units under one service named `svc`. */
export function seedLikeUnits(): Array<Record<string, unknown>> {
  return [
    aUnit({ name: 'inf2', family: 'inf2', pricePerHour: 0.7582, maxRpm: 105, costWeight: 40 }),
    aUnit({ name: 'trn1', family: 'trn1', instanceType: 'trn1.2xlarge', pricePerHour: 1.3438, maxRpm: 130, costWeight: 20 }),
    aUnit({ name: 'g5-triton', family: 'g5', instanceType: 'g5.xlarge', framework: 'triton', pricePerHour: 1.006, maxRpm: 90, costWeight: 15 }),
    aUnit({ name: 'g6-triton', family: 'g6', instanceType: 'g6.xlarge', framework: 'triton', pricePerHour: 0.8048, maxRpm: 61, costWeight: 10 }),
    aUnit({ name: 'g5-cuda', family: 'g5', instanceType: 'g5.xlarge', framework: 'cuda', pricePerHour: 1.006, maxRpm: 60, costWeight: 15 }),
  ];
}
