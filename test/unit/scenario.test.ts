import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadScenario, parseScenario } from '../../shared/src/sim/scenario.ts';
import { InputValidationError } from '../../shared/src/spec/validation.ts';

function scenarioIn(dir: string, demand: unknown, extra: Record<string, unknown> = {}) {
  const path = join(dir, 'scenario.yaml');
  writeFileSync(path, stringify({ name: 's', durationMinutes: 60, fleet: 'default', demand: { sd21: demand }, ...extra }));
  return loadScenario(path);
}

describe('scenario demand', () => {
  it('a cosine peaks at maxRpm at its phase and bottoms at minRpm half a period later', () => {
    const s = parseScenario({ name: 'c', durationMinutes: 10, demand: { sd21: { cosine: { minRpm: 40, maxRpm: 2960, periodMinutes: 900, phaseMinutes: 100 } } } }, '/tmp/c.yaml');
    expect(s.demand['sd21']!(100)).toBeCloseTo(2960, 6);
    expect(s.demand['sd21']!(550)).toBeCloseTo(40, 6);
  });

  it('points are linear between and flat after the last', () => {
    const s = parseScenario({ name: 'p', durationMinutes: 10, demand: { sd21: { points: [[0, 600], [60, 600], [62, 2400]] } } }, '/tmp/p.yaml');
    expect([0, 61, 62, 500].map((t) => s.demand['sd21']!(t))).toEqual([600, 1500, 2400, 2400]);
  });

  it('a CSV of minute,rpm beside the scenario is read, header allowed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-sc-'));
    writeFileSync(join(dir, 'demand.csv'), 'minute,rpm\n0,100\n10,300\n');
    const s = scenarioIn(dir, { csv: 'demand.csv' });
    expect(s.demand['sd21']!(5)).toBe(200);
  });

  it.each([
    ['a non-number', 'minute,rpm\n0,100\n10,lots\n', 'demand.csv:3: expected "minute,rpm" with numbers'],
    ['minutes out of order', '0,100\n10,300\n5,200\n', 'demand.csv:3: expected minutes in increasing order'],
    ['no rows', 'minute,rpm\n', 'expected at least one "minute,rpm" row'],
  ])('a CSV with %s is refused with its line', (_what, text, expected) => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-sc-'));
    writeFileSync(join(dir, 'demand.csv'), text);
    expect(() => scenarioIn(dir, { csv: 'demand.csv' })).toThrow(InputValidationError);
    expect(() => scenarioIn(dir, { csv: 'demand.csv' })).toThrow(expected);
  });

  it('start-up seconds apply per unit over the default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-sc-'));
    const s = scenarioIn(dir, { points: [[0, 1]] }, { startupSeconds: { default: 300, 'sd21-inf2-neuron': 900 } });
    const startup = Object.fromEntries(s.fleet.units.filter((u) => u.service === 'sd21').map((u) => [u.name, u.startupSeconds]));
    expect(startup['sd21-inf2-neuron']).toBe(900);
    expect(startup['sd21-g5-cuda']).toBe(300);
  });

  it('names a start-up override for a unit the fleet lacks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-sc-'));
    expect(() => scenarioIn(dir, { points: [[0, 1]] }, { startupSeconds: { 'sd21-tpu': 60 } })).toThrow('startupSeconds.sd21-tpu: expected "default" or a unit name of the fleet');
  });

  it('an inline fleet is validated like a fleet file', () => {
    expect(() =>
      parseScenario({ name: 'i', durationMinutes: 10, fleet: { apiVersion: 'hwai/v1', kind: 'Fleet', metadata: { name: 'x' }, services: {}, units: [] }, demand: { sd21: { points: [[0, 1]] } } }, '/tmp/i.yaml'),
    ).toThrow(/services: expected at least one service/);
  });
});
