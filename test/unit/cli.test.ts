import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../shared/src/cli/main.ts';

async function hwai(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  const code = await main(argv, { out, err });
  return { code, out: Buffer.concat(chunks.out).toString(), err: Buffer.concat(chunks.err).toString() };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'hwai-cli-'));
}

const shortScenario = `
name: short-step
durationMinutes: 90
stepSeconds: 10
fleet: default
demand:
  sd21: { points: [[0, 600], [30, 600], [32, 1800], [90, 1800]] }
capacity:
  - { family: inf2, fromMinute: 20, toMinute: 60, maxInstances: hold }
warmupMinutes: 30
`;

describe('hwai simulate', () => {
  it('--json prints one JSON object with a summary per policy, and nothing else on stdout', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), shortScenario);
    const { code, out } = await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'step,optimizer', '--out', join(dir, 'out'), '--json');
    expect(code).toBe(0);
    const parsed = JSON.parse(out);
    expect(parsed.scenario).toBe('short-step');
    expect(parsed.policies.map((p: { policy: string }) => p.policy)).toEqual(['step', 'optimizer']);
    for (const p of parsed.policies) {
      expect(Object.keys(p).sort()).toEqual(['costPerMillion', 'failedRequests', 'minutesOverSlo', 'minutesToShift', 'modeSwitches', 'policy', 'servedRequests', 'totalCost'].sort());
      expect(p.totalCost).toBeGreaterThan(0);
    }
  });

  it('writes the table, a per-minute timeline per policy (CSV and JSON) and one report', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), shortScenario);
    const { code, out } = await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'static-cost', '--out', join(dir, 'out'));
    expect(code).toBe(0);
    expect(out).toMatch(/static-cost\s+\$[\d,.]+/);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['.hwai-output.json', 'report.html', 'summary.csv', 'summary.json', 'timeline-static-cost.csv', 'timeline-static-cost.json']);
    const summary = readFileSync(join(dir, 'out', 'summary.csv'), 'utf8').trim().split('\n');
    expect(summary[0]).toBe('policy,totalCost,costPerMillion,ratioToBound,servedRequests,failedRequests,minutesOverSlo,modeSwitches,minutesToShift');
    expect(summary.map((l) => l.split(',')[0])).toEqual(['policy', 'static-cost', 'bound']);
    const csv = readFileSync(join(dir, 'out', 'timeline-static-cost.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(1 + 90); // header + one row per minute
  });

  it.each([
    ['an unknown service', shortScenario.replace('sd21: {', 'sd99: {'), 'demand.sd99: unknown service'],
    ['a step that does not divide a minute', shortScenario.replace('stepSeconds: 10', 'stepSeconds: 7'), 'stepSeconds: expected a divisor of 60'],
    ['a capacity window ending before it starts', shortScenario.replace('toMinute: 60', 'toMinute: 10'), 'capacity[0].toMinute: expected toMinute > fromMinute'],
    ['a bad maxInstances', shortScenario.replace('maxInstances: hold', 'maxInstances: lots'), 'capacity[0].maxInstances'],
    ['broken YAML', 'name: [unclosed', 'line 1'],
  ])('a scenario with %s exits non-zero naming the field, and writes nothing', async (_what, text, expected) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), text);
    const { code, err, out } = await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--out', join(dir, 'out'));
    expect(code).not.toBe(0);
    expect(err).toContain(expected);
    expect(out).toBe('');
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('an unknown policy is refused with the list of policies', async () => {
    const { code, err } = await hwai('simulate', '--policy', 'cheapest');
    expect(code).not.toBe(0);
    expect(err).toContain('expected one of static-cost, static-capacity, step, step-headroom, optimizer or all');
  });

  it('--json gives the clairvoyant bound beside the policies, and a policy named twice runs once', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), shortScenario);
    const { code, out } = await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'step,step', '--out', join(dir, 'out'), '--json');
    expect(code).toBe(0);
    const parsed = JSON.parse(out);
    expect(parsed.policies.map((p: { policy: string }) => p.policy)).toEqual(['step']);
    expect(parsed.bound.totalCost).toBeGreaterThan(0);
    expect(parsed.bound.totalCost).toBeLessThan(parsed.policies[0].totalCost);
  });

  it('never deletes what it did not write: a folder with other files and a file are refused, untouched', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), shortScenario);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const intoFolder = await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'step', '--out', dir);
    expect(intoFolder.code).toBe(2);
    expect(intoFolder.err).toContain('holds files hwai did not write (notes.txt, scenario.yaml)');
    const ontoFile = await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'step', '--out', join(dir, 'notes.txt'));
    expect(ontoFile.code).toBe(2);
    expect(ontoFile.err).toContain('is a file; expected a folder');
    expect(readdirSync(dir).sort()).toEqual(['notes.txt', 'scenario.yaml']);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('recognises a folder an earlier hwai wrote before it listed its files, and nothing else as such', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), shortScenario);
    const legacy = join(dir, 'legacy');
    mkdirSync(legacy);
    writeFileSync(join(legacy, 'report.html'), "<!doctype html><footer>Generated by hwai's simulator. Shaded: …</footer>");
    writeFileSync(join(legacy, 'summary.json'), '{}');
    writeFileSync(join(legacy, 'timeline-step.csv'), 'minute\n');
    expect((await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'optimizer', '--out', legacy)).code).toBe(0);
    expect(existsSync(join(legacy, 'timeline-step.csv'))).toBe(false);
    const lookalike = join(dir, 'lookalike');
    mkdirSync(lookalike);
    writeFileSync(join(lookalike, 'report.html'), '<p>my own report</p>');
    const refused = await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'optimizer', '--out', lookalike);
    expect(refused.code).toBe(2);
    expect(readFileSync(join(lookalike, 'report.html'), 'utf8')).toBe('<p>my own report</p>');
  });

  it('replaces its own earlier output in a folder, and only that', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), shortScenario);
    const out = join(dir, 'out');
    expect((await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'step', '--out', out)).code).toBe(0);
    expect((await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'optimizer', '--out', out)).code).toBe(0);
    expect(readdirSync(out).filter((f) => f.startsWith('timeline-')).sort()).toEqual(['timeline-optimizer.csv', 'timeline-optimizer.json']);
  });
});

describe('hwai scenario check and hwai compare', () => {
  it('scenario check accepts every shipped scenario', async () => {
    for (const file of readdirSync('shared/scenarios')) {
      const { code, out } = await hwai('scenario', 'check', join('shared/scenarios', file));
      expect(code, file).toBe(0);
      expect(out).toContain(': ok — ');
    }
  });

  it('scenario check names a wrong type inside demand by its path', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), shortScenario.replace('sd21: { points: [[0, 600], [30, 600], [32, 1800], [90, 1800]] }', 'sd21: { cosine: { minRpm: 40, maxRpm: lots, periodMinutes: 900 } }'));
    const { code, err } = await hwai('scenario', 'check', join(dir, 'scenario.yaml'));
    expect(code).toBe(2);
    expect(err).toContain('demand.sd21.cosine.maxRpm: expected number, received string');
  });

  it('compare prints two runs side by side, a policy missing from one shown as —', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'scenario.yaml'), shortScenario);
    await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'step', '--out', join(dir, 'a'));
    await hwai('simulate', '--scenario', join(dir, 'scenario.yaml'), '--policy', 'step,optimizer', '--out', join(dir, 'b'));
    const { code, out } = await hwai('compare', join(dir, 'a'), join(dir, 'b'));
    expect(code).toBe(0);
    const step = out.split('\n').find((l) => l.startsWith('step '))!;
    const cells = step.split(/\s{2,}/);
    expect(cells[1]).toBe(cells[2]); // the same run twice: the same total cost
    expect(out.split('\n').find((l) => l.startsWith('optimizer'))).toMatch(/^optimizer\s+—\s+\$/);
  });

  it('compare refuses a folder without a summary, naming it', async () => {
    const dir = tempDir();
    const { code, err } = await hwai('compare', dir, dir);
    expect(code).toBe(2);
    expect(err).toContain('expected a folder written by hwai simulate');
  });
});

describe('hwai spec check', () => {
  it('accepts the default fleet', async () => {
    const { code, out } = await hwai('spec', 'check', 'shared/fleets/default.yaml');
    expect(code).toBe(0);
    expect(out).toContain('6 service(s), 15 unit(s)');
  });

  it('reports every error with its path and what was expected', async () => {
    const dir = tempDir();
    const text = readFileSync('shared/fleets/default.yaml', 'utf8').replace('pricePerHour: 0.7582, maxRpm: 105', 'pricePerHour: -0.7582, maxRpm: fast').replace('kind: optimizer', 'kind: greedy');
    writeFileSync(join(dir, 'fleet.yaml'), text);
    const { code, err } = await hwai('spec', 'check', join(dir, 'fleet.yaml'));
    expect(code).toBe(2);
    expect(err).toContain('units[0].pricePerHour: expected > 0');
    expect(err).toContain('units[0].maxRpm: expected number, received string');
    expect(err).toContain('policy.kind: expected one of');
  });

  it('a missing file is an error naming it', async () => {
    const { code, err } = await hwai('spec', 'check', '/nonexistent/fleet.yaml');
    expect(code).toBe(2);
    expect(err).toContain('/nonexistent/fleet.yaml');
  });
});
