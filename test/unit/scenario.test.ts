import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadScenario, parseScenario } from '../../shared/src/sim/scenario.ts';
import { World, mulberry32 } from '../../shared/src/sim/index.ts';
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

  it("start-up seconds are the world's truth per unit over the default; the fleet spec's stay the policy's belief", () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-sc-'));
    const s = scenarioIn(dir, { points: [[0, 1]] }, { startupSeconds: { default: 300, 'sd21-inf2-neuron': 900 } });
    const world = new World(s.fleet, s.file, ['sd21'], mulberry32(1));
    const unit = (name: string) => s.fleet.units.find((u) => u.name === name)!;
    expect(world.startupOf(unit('sd21-inf2-neuron'))).toBe(900);
    expect(world.startupOf(unit('sd21-g5-cuda'))).toBe(300);
    expect(unit('sd21-inf2-neuron').startupSeconds).toBe(720);
    expect(unit('sd21-g5-cuda').startupSeconds).toBe(600);
  });

  it('refuses a capacity window that starts after the run ends, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-sc-'));
    expect(() => scenarioIn(dir, { points: [[0, 1]] }, { capacity: [{ family: 'inf2', fromMinute: 90, toMinute: 120, maxInstances: 'hold' }] })).toThrow(
      'capacity[0].fromMinute: starts at minute 90, after the run ends (durationMinutes 60)',
    );
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
