import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadFleetSpec, parseFleetSpec } from '../../shared/src/spec/load.ts';
import { InputValidationError } from '../../shared/src/spec/validation.ts';
import { aFleet, aUnit } from './factories/fleet.ts';

function problemsOf(data: unknown): string[] {
  try {
    parseFleetSpec(data, 'fleet.yaml');
  } catch (e) {
    if (e instanceof InputValidationError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  return [];
}

describe('fleet spec', () => {
  it('the default fleet is valid, with the seed five units exact and other models marked as estimates', () => {
    const fleet = loadFleetSpec();
    const sd21 = fleet.units.filter((u) => u.service === 'sd21');
    expect(sd21.map((u) => [u.name, u.instanceType, u.pricePerHour, u.maxRpm, u.latencySeconds])).toEqual([
      ['sd21-inf2-neuron', 'inf2.xlarge', 0.7582, 105, 0.67],
      ['sd21-trn1-neuron', 'trn1.2xlarge', 1.3438, 130, 0.51],
      ['sd21-g5-triton', 'g5.xlarge', 1.006, 90, 0.68],
      ['sd21-g6-triton', 'g6.xlarge', 0.8048, 61, 0.96],
      ['sd21-g5-cuda', 'g5.xlarge', 1.006, 60, 0.92],
    ]);
    expect(sd21.every((u) => !u.estimate)).toBe(true);
    const others = fleet.units.filter((u) => u.service !== 'sd21');
    expect(new Set(others.map((u) => u.service))).toEqual(new Set(['mistral7b', 'llama32-1b', 'distilbert', 'vit', 'yolos']));
    expect(others.every((u) => u.estimate)).toBe(true);
  });

  it.each([
    ['a negative price', aFleet({ units: [aUnit({ pricePerHour: -1 })] }), 'units[0].pricePerHour: expected > 0'],
    ['a missing maxRpm', aFleet({ units: [aUnit({ maxRpm: undefined })] }), 'units[0].maxRpm: required: expected number'],
    ['an unknown family', aFleet({ units: [aUnit({ family: 'tpu' })] }), 'units[0].family: expected one of'],
    ['an unknown field', aFleet({ units: [aUnit({ maxRPM: 3 })] }), 'units[0]: unknown field "maxRPM"'],
    ['a unit of an unknown service', aFleet({ units: [aUnit(), aUnit({ name: 'x-2', service: 'nope' })] }), 'units[1].service: unknown service "nope"'],
    ['duplicate unit names', aFleet({ units: [aUnit(), aUnit()] }), 'units[1].name: duplicate unit name'],
    ['min above max', aFleet({ units: [aUnit({ minReplicas: 5, maxReplicas: 2 })] }), 'units[0].minReplicas: expected minReplicas <= maxReplicas'],
    ['a bad policy kind', aFleet({ policy: { kind: 'yolo' } }), 'policy.kind: expected one of "static-cost"'],
    ['six units behind one rule', aFleet({ units: [1, 2, 3, 4, 5, 6].map((i) => aUnit({ name: `u-${i}` })) }), 'services.svc: an ALB forward action takes at most 5 target groups'],
  ])('rejects %s, naming the field', (_what, data, expected) => {
    expect(problemsOf(data).join('\n')).toContain(expected);
  });

  it('reports every problem at once, not just the first', () => {
    expect(problemsOf(aFleet({ units: [aUnit({ pricePerHour: 0, maxRpm: -2, framework: 'tpu' })] }))).toHaveLength(3);
  });

  it('a calibration file replaces the estimates of the units it measured', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-cal-'));
    writeFileSync(join(dir, 'cal.yaml'), stringify({ kind: 'hwai/calibration', units: { 'svc-a': { maxRpm: 77, latencySeconds: 0.5, sloSeconds: 0.9 } } }));
    const spec = parseFleetSpec(aFleet({ units: [aUnit({ estimate: true })], calibrationFiles: ['cal.yaml'] }), 'fleet.yaml', dir);
    expect(spec.units[0]).toMatchObject({ maxRpm: 77, latencySeconds: 0.5, estimate: false });
  });

  it('a calibration of a unit the fleet lacks is an error naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-cal-'));
    writeFileSync(join(dir, 'cal.yaml'), stringify({ kind: 'hwai/calibration', units: { ghost: { maxRpm: 1, latencySeconds: 1 } } }));
    expect(() => parseFleetSpec(aFleet({ calibrationFiles: ['cal.yaml'] }), 'fleet.yaml', dir)).toThrow(/calibrates unknown unit "ghost"/);
  });

  it('reports schema errors and cross-references together, naming each unit as well as its index', () => {
    const problems = problemsOf(aFleet({ units: [aUnit({ pricePerHour: -1 }), aUnit({ name: 'svc-b', service: 'nope' }), aUnit({ name: 'svc-b' })] }));
    expect(problems).toContain('units[0].pricePerHour: expected > 0 (unit "svc-a")');
    expect(problems).toContain('units[1].service: unknown service "nope"; expected one of: svc (unit "svc-b")');
    expect(problems).toContain('units[2].name: duplicate unit name "svc-b" (also units[1]) (unit "svc-b")');
  });

  it('a calibration file that cannot be read is reported at the field that names it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-cal-'));
    const problems = (() => {
      try {
        parseFleetSpec(aFleet({ calibrationFiles: ['calibration/missing.yaml'] }), 'fleet.yaml', dir);
      } catch (e) {
        return (e as InputValidationError).problems;
      }
      return [];
    })();
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('calibrationFiles[0]');
    expect(problems[0]!.message).toContain(join(dir, 'calibration/missing.yaml'));
    expect(problems[0]!.message).toContain('cannot read');
  });
});
