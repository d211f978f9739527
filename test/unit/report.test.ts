import { describe, expect, it } from 'vitest';
import { CHART_KINDS, renderReport } from '../../shared/src/report/html.ts';
import { formatComparisonTable } from '../../shared/src/report/table.ts';
import { timelineCsv, timelineJson } from '../../shared/src/report/timeline.ts';
import {
  makePolicyRun,
  makePolicySummary,
  makeSimulationResult,
  makeTimelineRow,
  makeUnitMinute,
  SEED_POLICIES,
  SEED_UNITS,
} from './factories/sim-result.ts';

/** A small RFC 4180 parser: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** "$1,234.56" → 1234.56 */
function money(s: string): number {
  return Number(s.replace(/[$,]/g, ''));
}

describe('formatComparisonTable', () => {
  const summaries = [
    makePolicySummary({ policy: 'static-cost', totalCost: 819.5, costPerMillion: 206.7249, failedRequests: 85_780.4, minutesToShift: null }),
    makePolicySummary({ policy: 'static-capacity', totalCost: 1292.914, costPerMillion: 321.82, failedRequests: 0, minutesOverSlo: 3 }),
    makePolicySummary({ policy: 'step', totalCost: 903.86, modeSwitches: 2, minutesToShift: 5 }),
    makePolicySummary({ policy: 'optimizer', totalCost: 12_345_678.9, minutesToShift: 2.5 }),
  ];
  const table = formatComparisonTable(summaries, { hadShortage: true });
  const lines = table.trimEnd().split('\n');

  it('has a header with every column, a rule, and one line per policy', () => {
    expect(lines).toHaveLength(2 + summaries.length);
    const header = lines[0] ?? '';
    const columns = ['policy', 'total cost', '$ / 1M ok', 'served req', 'failed req', 'min > SLO', 'mode switches', 'min to shift'];
    let at = -1;
    for (const c of columns) {
      const i = header.indexOf(c);
      expect(i, c).toBeGreaterThan(at);
      at = i;
    }
    expect(lines[1]).toMatch(/^[- ]+$/);
    expect(lines.slice(2).map((l) => l.split(/\s{2,}/)[0])).toEqual(summaries.map((s) => s.policy));
  });

  it('right-aligns the numbers: every line ends in the same column', () => {
    const widths = new Set(lines.map((l) => l.length));
    expect(widths.size).toBe(1);
  });

  it('shows dollars with two decimals that parse back', () => {
    const row = (p: string) => (lines.find((l) => l.startsWith(p)) ?? '').trim().split(/\s{2,}/);
    expect(row('static-cost')[1]).toBe('$819.50');
    expect(row('static-cost')[2]).toBe('$206.72');
    expect(row('optimizer')[1]).toBe('$12,345,678.90');
    for (const s of summaries) expect(money(row(s.policy)[1] ?? '')).toBeCloseTo(s.totalCost, 2);
    expect(row('static-cost')[4]).toBe('85,780');
  });

  it('reads a null time to shift as "never" after a shortage and "—" without one', () => {
    expect(lines.find((l) => l.startsWith('static-cost'))?.trimEnd()).toMatch(/never$/);
    expect(lines.find((l) => l.startsWith('step'))?.trimEnd()).toMatch(/ 5$/);
    expect(lines.find((l) => l.startsWith('optimizer'))?.trimEnd()).toMatch(/ 2\.5$/);
    const calm = formatComparisonTable([makePolicySummary({ minutesToShift: null })]);
    expect(calm.trimEnd().split('\n')[2]?.trimEnd()).toMatch(/—$/);
  });

  it('prints only the header for no policies', () => {
    expect(formatComparisonTable([]).trimEnd().split('\n')).toHaveLength(2);
  });
});

describe('timelineCsv', () => {
  const minutes = 30;
  const services = ['sd21', 'mistral'];
  const run = makePolicyRun('step', { minutes, services });
  const csv = timelineCsv(run);
  const rows = parseCsv(csv);
  const header = rows[0] ?? [];

  it('has the service columns, then seven columns per unit named <unit>.<field>', () => {
    expect(header.slice(0, 9)).toEqual([
      'minute',
      'service',
      'mode',
      'demandRpm',
      'servedRpm',
      'failedRpm',
      'p99Seconds',
      'costPerHour',
      'cumulativeCost',
    ]);
    const fields = ['weight', 'served', 'ready', 'starting', 'pending', 'minReplicas', 'targetRpm'];
    expect(header.slice(9)).toEqual(SEED_UNITS.flatMap((u) => fields.map((f) => `${u.name}.${f}`)));
  });

  it('has one row per minute per service, every row as wide as the header, CRLF line ends', () => {
    expect(rows).toHaveLength(1 + minutes * services.length);
    for (const r of rows) expect(r).toHaveLength(header.length);
    expect(csv.endsWith('\r\n')).toBe(true);
    expect(csv.split('\r\n').every((l) => !l.includes('\n'))).toBe(true);
  });

  it('writes numbers that parse back to the timeline', () => {
    const col = (name: string) => header.indexOf(name);
    rows.slice(1).forEach((r, i) => {
      const src = run.timeline[i];
      if (!src) throw new Error('row count');
      expect(Number(r[col('minute')])).toBe(src.minute);
      expect(r[col('service')]).toBe(src.service);
      expect(r[col('mode')]).toBe(src.mode);
      expect(Number(r[col('demandRpm')])).toBeCloseTo(src.demandRpm, 5);
      expect(Number(r[col('cumulativeCost')])).toBeCloseTo(src.cumulativeCost, 5);
      const inf2 = src.units['sd21-inf2-neuron'];
      expect(Number(r[col('sd21-inf2-neuron.weight')])).toBe(inf2?.weight);
      expect(Number(r[col('sd21-inf2-neuron.served')])).toBeCloseTo(inf2?.servedRpm ?? NaN, 5);
      expect(Number(r[col('sd21-inf2-neuron.ready')])).toBe(inf2?.readyPods);
      expect(Number(r[col('sd21-inf2-neuron.targetRpm')])).toBeCloseTo(inf2?.targetRpm ?? NaN, 5);
    });
    // No float noise and no exponents.
    expect(csv).not.toMatch(/\d\.\d{7,}/);
    expect(csv).not.toMatch(/\de[-+]?\d/i);
  });

  it('quotes per RFC 4180 and leaves missing units and non-finite numbers empty', () => {
    const odd = makePolicyRun('x', { minutes: 1 });
    odd.timeline = [
      makeTimelineRow({ service: 'svc, "quoted"', p99Seconds: Infinity, units: { a: makeUnitMinute({ weight: 7 }) } }),
      makeTimelineRow({ minute: 1, service: 'line\nbreak', units: { b: makeUnitMinute({ weight: 3 }) } }),
    ];
    const parsed = parseCsv(timelineCsv(odd));
    expect(parsed).toHaveLength(3);
    expect(parsed[1]?.[1]).toBe('svc, "quoted"');
    expect(parsed[2]?.[1]).toBe('line\nbreak');
    expect(parsed[1]?.[6]).toBe('');
    const h = parsed[0] ?? [];
    expect(parsed[1]?.[h.indexOf('a.weight')]).toBe('7');
    expect(parsed[1]?.[h.indexOf('b.weight')]).toBe('');
    expect(parsed[2]?.[h.indexOf('b.weight')]).toBe('3');
  });
});

describe('timelineJson', () => {
  it('is JSON with the policy, its summary, its events and every timeline row', () => {
    const run = makePolicyRun('step', { minutes: 40 });
    const parsed = JSON.parse(timelineJson(run)) as { policy: string; summary: unknown; events: unknown[]; timeline: unknown[] };
    expect(parsed.policy).toBe('step');
    expect(parsed.summary).toMatchObject({ policy: 'step', modeSwitches: run.summary.modeSwitches });
    expect(parsed.events).toEqual(run.events);
    expect(parsed.timeline).toHaveLength(40);
    const [row, src] = [parsed.timeline[3] as typeof run.timeline[number], run.timeline[3]];
    expect(Object.keys(row)).toEqual(Object.keys(src ?? {}));
    expect(row.demandRpm).toBeCloseTo(src?.demandRpm ?? NaN, 6);
    expect(row.units['sd21-g5-cuda']?.servedRpm).toBeCloseTo(src?.units['sd21-g5-cuda']?.servedRpm ?? NaN, 6);
    expect(timelineJson(run)).not.toMatch(/\d\.\d{7,}/);
  });

  it('is valid for an empty timeline and for non-finite numbers', () => {
    const run = makePolicyRun('x', { minutes: 1 });
    expect(JSON.parse(timelineJson({ ...run, timeline: [] })).timeline).toEqual([]);
    const inf = { ...run, timeline: [makeTimelineRow({ p99Seconds: Infinity })] };
    expect(JSON.parse(timelineJson(inf)).timeline[0].p99Seconds).toBeNull();
  });
});

describe('renderReport (static checks; the browser test renders it)', () => {
  it('has a chart of every kind for every policy, and the comparison table', () => {
    const html = renderReport(makeSimulationResult({ minutes: 120 }));
    for (const p of SEED_POLICIES) for (const k of CHART_KINDS) expect(html).toContain(`data-chart="${p}/${k}"`);
    expect(html).toContain('data-table="comparison"');
  });

  it('is self-contained: nothing to fetch', () => {
    const html = renderReport(makeSimulationResult({ minutes: 60 }));
    expect(html).not.toMatch(/\ssrc=/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/@import|url\(["']?http/);
  });

  it('shows the notes escaped, and escapes names', () => {
    const result = makeSimulationResult({ minutes: 30, policies: ['<b>evil</b>'] });
    const html = renderReport(result, ['cost is node-hours × price <script>alert(1)</script>']);
    expect(html).toContain('node-hours × price &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<b>evil</b>');
    expect(html).toContain('data-chart="&lt;b&gt;evil&lt;/b&gt;/served"');
  });

  it('stays a sane size for 2,700 minutes × 4 policies', () => {
    const html = renderReport(makeSimulationResult({ minutes: 2700 }));
    expect(html.length).toBeLessThan(2_500_000);
  });

  it('draws a chart per service when there are several', () => {
    const html = renderReport(makeSimulationResult({ minutes: 30, services: ['sd21', 'mistral'], policies: ['step'] }));
    expect(html.match(/data-chart="step\/served"/g)).toHaveLength(2);
    expect(html).toContain('data-service="mistral"');
  });
});

describe('renderReport: what a reader compares across policies', () => {
  const result = makeSimulationResult({ minutes: 300 });
  const html = renderReport(result);
  const yTicks = (svg: string) => [...svg.matchAll(/<text class="ytick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/,/g, '')).join(',');
  const chart = (policy: string, kind: string) => {
    const at = html.indexOf(`data-chart="${policy}/${kind}"`);
    return html.slice(at, html.indexOf('</svg>', at));
  };

  it('draws failed requests per policy on one scale, so failures outside a shortage are not slivers', () => {
    const failedMost = Math.max(...result.runs.flatMap((r) => r.timeline.map((row) => row.failedRpm)));
    expect(failedMost).toBeGreaterThan(0);
    const axes = result.runs.map((r) => yTicks(chart(r.summary.policy, 'failed')));
    expect(new Set(axes).size).toBe(1);
    expect(axes[0]).not.toBe('');
  });

  it('marks every mode change across every chart of the policy', () => {
    for (const r of result.runs) {
      const changes = r.events.filter((e) => e.kind === 'mode-changed').length;
      for (const k of CHART_KINDS) expect(chart(r.summary.policy, k).match(/class="mode-change"/g) ?? [], `${r.summary.policy}/${k}`).toHaveLength(changes);
    }
  });

  it('draws every policy\'s p99 on the same axis', () => {
    const ticks = result.runs.map((r) => yTicks(chart(r.summary.policy, 'latency')));
    expect(ticks[0]).not.toBe('');
    expect(new Set(ticks).size).toBe(1);
  });

  it('says "Events (0)" for a run without events', () => {
    const quiet = makeSimulationResult({ minutes: 30, policies: ['static-cost'] });
    quiet.runs[0]!.events = [];
    expect(renderReport(quiet)).toContain('Events (0)');
  });

  it('reads out whole pods under the pointer', () => {
    const data = [...html.matchAll(/<script type="application\/json" class="hover-data">(.*?)<\/script>/g)].map((m) => JSON.parse(m[1]!));
    const pods = data.flatMap((d) => d.rows.flatMap((row: unknown[]) => (row[9] as number[][]).flatMap((u) => u.slice(2, 5))));
    expect(pods.length).toBeGreaterThan(0);
    for (const n of pods) expect(Number.isInteger(n)).toBe(true);
  });
});

describe('renderReport: the clairvoyant bound', () => {
  it('is a row of the comparison table, and every policy shows its ratio to it', () => {
    const result = makeSimulationResult({ minutes: 60 }, { bound: { totalCost: 80, costPerMillion: 40 } });
    const html = renderReport(result);
    const table = html.slice(html.indexOf('data-table="comparison"'), html.indexOf('</table>'));
    expect(table).toMatch(/<tr class="bound"[^>]*><th scope="row">bound<\/th><td class="num">\$80\.00<\/td><td class="num">\$40\.00<\/td><td class="num">1\.00<\/td>/);
    for (const r of result.runs) expect(table).toMatch(new RegExp(`<td class="num( best)?">${(r.summary.costPerMillion / 40).toFixed(2).replace('.', '\\.')}</td>`));
  });
});
