import type { Mode } from '../core/types.ts';
import type { PolicyRun, ShortageWindow, SimulationResult, TimelineRow } from '../sim/types.ts';
import { formatDollars, formatMinutesToShift, formatNumber } from './format.ts';

/**
 * The simulator's HTML report: one self-contained page (inline CSS, inline SVG, a little inline
 * JS for the hover read-out; nothing fetched). A comparison table of the policies at the top,
 * the assumptions, then one section per policy with the seed's figures 10 and 11 as that policy
 * draws them, all charts on one time axis in minutes with the shortage windows shaded.
 *
 * Every chart is an <svg data-chart="<policy>/<kind>" data-service="<service>">.
 */

export const CHART_KINDS = ['served', 'weights', 'mode', 'pods', 'latency', 'cost'] as const;
export type ChartKind = (typeof CHART_KINDS)[number];

const CHART_TITLES: Record<ChartKind, string> = {
  served: 'Requests per minute served, by unit (failed on top, demand dashed)',
  weights: 'Forward weights (share of the listener rule, %)',
  mode: 'Mode',
  pods: 'Pods: ready by unit; starting and pending stacked on top',
  latency: 'p99 latency (s) by unit; the service p99 bold, the SLO dashed',
  cost: 'Cumulative cost ($); other policies thin',
};

/** Most points a line gets; longer runs are drawn from buckets of whole minutes. */
const MAX_POINTS = 600;

// Chart geometry, in viewBox units (the SVG scales to the page width).
const W = 1100;
const ML = 62;
const MR = 18;
const PW = W - ML - MR;
const MT = 8;
const MB = 20;
/** The mode band has no tick labels of its own. */
const MB_MODE = 3;
const HEIGHTS: Record<ChartKind, number> = { served: 210, weights: 120, mode: 28, pods: 160, latency: 150, cost: 140 };

const UNIT_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#76b7b2', '#b07aa1', '#edc948', '#9c755f', '#ff9da7', '#bab0ac', '#86bcb6'];
const POLICY_COLORS = ['#2f4b7c', '#d45087', '#ff7c43', '#665191', '#2a9d8f', '#a05195', '#f95d6a', '#003f5c'];
const MODE_COLORS: Record<Mode, string> = { cost: '#8cc8a0', capacity: '#f3c969', override: '#b4a7d6' };
const FAILED = '#d62728';
const STARTING = '#c9ced6';
const PENDING = '#d9534f';

// ---------------------------------------------------------------------------------------------
// Small helpers

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** A coordinate with one decimal, as short as possible. */
function c1(v: number): string {
  const r = Math.round(v * 10) / 10;
  return Object.is(r, -0) ? '0' : String(r);
}

/** A value for the embedded data, rounded to `decimals` decimals (0 for a non-finite one). */
function dn(v: number, decimals: number): number {
  if (!Number.isFinite(v)) return 0;
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

function finite(v: number): number {
  return Number.isFinite(v) ? v : 0;
}

/** A "nice" axis maximum and step for values up to `max`, about four ticks. */
function niceScale(max: number, ticks = 4): { max: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { max: 1, step: 0.25 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

function shortNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(2)}k`;
  return String(+v.toFixed(a < 1 ? 2 : a < 10 ? 1 : 0));
}

function timeStep(duration: number): number {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200];
  return steps.find((s) => duration / s <= 12) ?? Math.ceil(duration / 12);
}

// ---------------------------------------------------------------------------------------------
// Data: one service of one run, in buckets of whole minutes

interface UnitBucket {
  weight: number;
  share: number;
  served: number;
  ready: number;
  starting: number;
  pending: number;
  p99: number | null;
  minReplicas: number;
  targetRpm: number;
}

interface Bucket {
  /** Minute at which the bucket is drawn (mean of its minutes). */
  x: number;
  from: number;
  to: number;
  mode: Mode;
  demand: number;
  served: number;
  failed: number;
  p99: number;
  cumulativeCost: number;
  costPerHour: number;
  units: UnitBucket[];
}

interface Series {
  service: string;
  units: string[];
  bucketMinutes: number;
  buckets: Bucket[];
  rows: TimelineRow[];
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length;
}

function bucketize(rows: TimelineRow[], units: string[], bucketMinutes: number): Bucket[] {
  const groups = new Map<number, TimelineRow[]>();
  for (const row of rows) {
    const key = Math.floor(row.minute / bucketMinutes);
    const g = groups.get(key);
    if (g) g.push(row);
    else groups.set(key, [row]);
  }
  const buckets: Bucket[] = [];
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const g = groups.get(key) ?? [];
    const last = g[g.length - 1];
    if (!last) continue;
    const unitBuckets = units.map((u): UnitBucket => {
      const ms = g.map((r) => r.units[u]).filter((m) => m !== undefined);
      const served = mean(ms.map((m) => finite(m.servedRpm)));
      const lastM = ms[ms.length - 1];
      // A unit's p99 means little without traffic: a gap in its line.
      const p99s = ms.filter((m) => m.servedRpm >= 0.5).map((m) => m.p99Seconds);
      return {
        weight: mean(ms.map((m) => finite(m.weight))),
        share: 0,
        served,
        ready: mean(ms.map((m) => finite(m.readyPods))),
        starting: mean(ms.map((m) => finite(m.startingPods))),
        pending: mean(ms.map((m) => finite(m.pendingPods))),
        p99: p99s.length > 0 ? Math.max(...p99s) : null,
        minReplicas: lastM ? finite(lastM.minReplicas) : 0,
        targetRpm: lastM ? finite(lastM.targetRpm) : 0,
      };
    });
    const wsum = unitBuckets.reduce((s, u) => s + u.weight, 0);
    for (const u of unitBuckets) u.share = wsum > 0 ? (u.weight / wsum) * 100 : 0;
    buckets.push({
      x: mean(g.map((r) => r.minute)),
      from: g[0]?.minute ?? last.minute,
      to: last.minute,
      mode: last.mode,
      demand: mean(g.map((r) => finite(r.demandRpm))),
      served: mean(g.map((r) => finite(r.servedRpm))),
      failed: mean(g.map((r) => finite(r.failedRpm))),
      p99: Math.max(...g.map((r) => r.p99Seconds)),
      cumulativeCost: finite(last.cumulativeCost),
      costPerHour: mean(g.map((r) => finite(r.costPerHour))),
      units: unitBuckets,
    });
  }
  return buckets;
}

function serviceNames(result: SimulationResult): string[] {
  const names = new Set(Object.keys(result.scenario.services));
  for (const run of result.runs) for (const row of run.timeline) names.add(row.service);
  return [...names];
}

function unitNames(result: SimulationResult, service: string): string[] {
  const names = new Set(result.scenario.services[service]?.units ?? []);
  for (const run of result.runs) for (const row of run.timeline) if (row.service === service) for (const u of Object.keys(row.units)) names.add(u);
  return [...names];
}

function seriesOf(run: PolicyRun, service: string, units: string[], bucketMinutes: number): Series {
  const rows = run.timeline.filter((r) => r.service === service).sort((a, b) => a.minute - b.minute);
  return { service, units, bucketMinutes, rows, buckets: bucketize(rows, units, bucketMinutes) };
}

// ---------------------------------------------------------------------------------------------
// SVG drawing

interface Frame {
  kind: ChartKind;
  height: number;
  ph: number;
  duration: number;
  x: (minute: number) => number;
  y: (v: number) => number;
}

function frame(kind: ChartKind, duration: number, yMax: number): Frame {
  const height = HEIGHTS[kind];
  const ph = height - MT - (kind === 'mode' ? MB_MODE : MB);
  return {
    kind,
    height,
    ph,
    duration,
    x: (m) => ML + (Math.min(Math.max(m, 0), duration) / duration) * PW,
    y: (v) => MT + ph - (Math.min(Math.max(v, 0), yMax) / yMax) * ph,
  };
}

function points(f: Frame, xs: number[], ys: number[]): string {
  return xs.map((x, i) => `${c1(f.x(x))},${c1(f.y(ys[i] ?? 0))}`).join(' ');
}

/** An area from the baseline up to `ys`. Drawn largest-first, opaque, it makes a stacked chart. */
function area(f: Frame, xs: number[], ys: number[], fill: string, extra = ''): string {
  if (xs.length === 0) return '';
  const base = c1(f.y(0));
  const x0 = c1(f.x(xs[0] ?? 0));
  const xn = c1(f.x(xs[xs.length - 1] ?? 0));
  return `<path class="mark" d="M${x0},${base}L${points(f, xs, ys)} ${xn},${base}Z" fill="${fill}"${extra}/>`;
}

/** A polyline; null (or non-finite) values break it. */
function line(f: Frame, xs: number[], ys: Array<number | null>, stroke: string, width: number, extra = ''): string {
  const segments: string[][] = [];
  let current: string[] | null = null;
  xs.forEach((x, i) => {
    const v = ys[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      current = null;
      return;
    }
    if (current === null) {
      current = [];
      segments.push(current);
    }
    current.push(`${c1(f.x(x))},${c1(f.y(v))}`);
  });
  const d = segments.map((seg) => (seg.length === 1 ? `M${seg[0]}h0.1` : `M${seg[0]}L${seg.slice(1).join(' ')}`)).join('');
  if (d === '') return '';
  return `<path class="mark" d="${d}" fill="none" stroke="${stroke}" stroke-width="${width}" stroke-linejoin="round"${extra}/>`;
}

function yAxis(f: Frame, step: number, max: number, fmt: (v: number) => string): string {
  let s = '';
  for (let v = 0; v <= max + step / 1000; v += step) {
    const y = c1(f.y(v));
    s += `<line class="grid" x1="${ML}" x2="${W - MR}" y1="${y}" y2="${y}"/><text class="ytick" x="${ML - 6}" y="${y}" dy="0.32em">${esc(fmt(v))}</text>`;
  }
  return s;
}

function xAxis(f: Frame, labels: boolean, grid = true): string {
  const step = timeStep(f.duration);
  let s = '';
  for (let m = 0; m <= f.duration + 1e-9; m += step) {
    const x = c1(f.x(m));
    if (grid) s += `<line class="vgrid" x1="${x}" x2="${x}" y1="${MT}" y2="${MT + f.ph}"/>`;
    const last = m + step > f.duration + 1e-9;
    if (labels) s += `<text class="xtick${last ? ' xtick-last' : ''}" x="${x}" y="${MT + f.ph + 14}">${m}${last ? ' min' : ''}</text>`;
  }
  return s + `<line class="axis" x1="${ML}" x2="${W - MR}" y1="${MT + f.ph}" y2="${MT + f.ph}"/>`;
}

function shortageShading(f: Frame, capacity: ShortageWindow[]): string {
  return capacity
    .map((w) => {
      const x0 = f.x(w.fromMinute);
      const width = Math.max(1, f.x(w.toMinute) - x0);
      const title = `${w.family} short: ${w.maxInstances === 'hold' ? 'hold (no new launches)' : `at most ${w.maxInstances} instances`}, minutes ${w.fromMinute}–${w.toMinute}`;
      return `<g class="shortage"><title>${esc(title)}</title><rect x="${c1(x0)}" y="${MT}" width="${c1(width)}" height="${f.ph}"/></g>`;
    })
    .join('');
}

/** Names of the shortage windows, drawn over the data. */
function shortageLabels(f: Frame, capacity: ShortageWindow[]): string {
  return capacity
    .map((w) => {
      const text = `${w.family} ${w.maxInstances === 'hold' ? 'hold' : `≤ ${w.maxInstances}`}`;
      return `<text class="shortage-label" x="${c1(f.x(w.fromMinute) + 4)}" y="${MT + 11}">${esc(text)}</text>`;
    })
    .join('');
}

function svg(f: Frame, policy: string, service: string, body: string, ariaLabel: string): string {
  const cursor = `<line class="cursor" x1="0" x2="0" y1="${MT}" y2="${MT + f.ph}" visibility="hidden"/>`;
  return (
    `<svg class="chart chart-${f.kind}" data-chart="${esc(policy)}/${f.kind}" data-service="${esc(service)}" ` +
    `viewBox="0 0 ${W} ${f.height}" preserveAspectRatio="none" role="img" aria-label="${esc(ariaLabel)}">${body}${cursor}</svg>`
  );
}

interface LegendItem {
  label: string;
  color: string;
  style?: 'swatch' | 'line' | 'dash' | 'hatch';
}

function legend(items: LegendItem[]): string {
  return (
    '<div class="legend">' +
    items
      .map((i) => `<span class="key key-${i.style ?? 'swatch'}"><i style="--c:${i.color}"></i>${esc(i.label)}</span>`)
      .join('') +
    '</div>'
  );
}

function unitLegend(units: string[]): LegendItem[] {
  return units.map((u, i) => ({ label: u, color: UNIT_COLORS[i % UNIT_COLORS.length] ?? '#888' }));
}

function unitColor(i: number): string {
  return UNIT_COLORS[i % UNIT_COLORS.length] ?? '#888';
}

/** Cumulative sums of `layers` (each an array over buckets), bottom layer first. */
function stack(layers: number[][]): number[][] {
  const out: number[][] = [];
  let acc: number[] = layers[0]?.map(() => 0) ?? [];
  for (const layer of layers) {
    acc = acc.map((a, i) => a + (layer[i] ?? 0));
    out.push(acc);
  }
  return out;
}

/** Stacked areas, drawn top layer first so each lower one paints over the rest of it. */
function stackedAreas(f: Frame, xs: number[], tops: number[][], fills: string[]): string {
  let s = '';
  for (let i = tops.length - 1; i >= 0; i--) s += area(f, xs, tops[i] ?? [], fills[i] ?? '#888');
  return s;
}

interface ChartContext {
  policy: string;
  policyIndex: number;
  series: Series;
  duration: number;
  slo: number;
  capacity: ShortageWindow[];
  /** Cumulative cost of this service under every policy, for the cost chart. */
  allCosts: Array<{ policy: string; xs: number[]; ys: number[] }>;
}

function chartServed(ctx: ChartContext): string {
  const { buckets, units } = ctx.series;
  const xs = buckets.map((b) => b.x);
  const layers = units.map((_, i) => buckets.map((b) => b.units[i]?.served ?? 0));
  layers.push(buckets.map((b) => b.failed));
  const tops = stack(layers);
  const maxY = Math.max(...buckets.map((b) => b.demand), ...(tops[tops.length - 1] ?? [0]));
  const { max, step } = niceScale(maxY);
  const f = frame('served', ctx.duration, max);
  const fills = [...units.map((_, i) => unitColor(i)), 'url(#hatch-failed)'];
  const body =
    shortageShading(f, ctx.capacity) +
    yAxis(f, step, max, shortNumber) +
    xAxis(f, true) +
    stackedAreas(f, xs, tops, fills) +
    line(f, xs, buckets.map((b) => b.demand), '#111', 1.4, ' stroke-dasharray="5 3"') +
    shortageLabels(f, ctx.capacity);
  const html = svg(f, ctx.policy, ctx.series.service, body, `${ctx.policy}: requests served per unit`);
  const keys: LegendItem[] = [
    ...unitLegend(units),
    { label: 'failed', color: FAILED, style: 'hatch' },
    { label: 'demand', color: '#111', style: 'dash' },
  ];
  return panel('served', html, keys);
}

function chartWeights(ctx: ChartContext): string {
  const { buckets, units } = ctx.series;
  const xs = buckets.map((b) => b.x);
  const tops = stack(units.map((_, i) => buckets.map((b) => b.units[i]?.share ?? 0)));
  const f = frame('weights', ctx.duration, 100);
  const body =
    shortageShading(f, ctx.capacity) +
    yAxis(f, 25, 100, (v) => `${v}%`) +
    xAxis(f, true) +
    stackedAreas(f, xs, tops, units.map((_, i) => unitColor(i)));
  return panel('weights', svg(f, ctx.policy, ctx.series.service, body, `${ctx.policy}: forward weights per unit`), unitLegend(units));
}

function chartMode(ctx: ChartContext): string {
  const { rows } = ctx.series;
  const f = frame('mode', ctx.duration, 1);
  let s = '';
  let i = 0;
  const seen = new Set<Mode>();
  while (i < rows.length) {
    const start = rows[i];
    if (!start) break;
    let j = i;
    while (j + 1 < rows.length && rows[j + 1]?.mode === start.mode) j++;
    const end = rows[j] ?? start;
    const x0 = f.x(start.minute);
    const x1 = f.x((rows[j + 1]?.minute ?? end.minute + 1));
    seen.add(start.mode);
    const color = MODE_COLORS[start.mode] ?? '#ccc';
    s += `<rect class="mark mode-${esc(start.mode)}" x="${c1(x0)}" y="${MT}" width="${c1(Math.max(0.5, x1 - x0))}" height="${f.ph}" fill="${color}"><title>${esc(`${start.mode}: minutes ${start.minute}–${end.minute}`)}</title></rect>`;
    if (x1 - x0 > 56) s += `<text class="mode-label" x="${c1((x0 + x1) / 2)}" y="${MT + f.ph / 2}" dy="0.33em">${esc(start.mode)}</text>`;
    i = j + 1;
  }
  const shading = ctx.capacity
    .map((w) => `<rect class="shortage-outline" x="${c1(f.x(w.fromMinute))}" y="${MT}" width="${c1(Math.max(1, f.x(w.toMinute) - f.x(w.fromMinute)))}" height="${f.ph}"/>`)
    .join('');
  const body = s + shading + xAxis(f, false, false);
  const keys = (['cost', 'capacity', 'override'] as Mode[]).filter((m) => seen.has(m)).map((m) => ({ label: m, color: MODE_COLORS[m] }));
  return panel('mode', svg(f, ctx.policy, ctx.series.service, body, `${ctx.policy}: mode over time`), [
    ...keys,
    ...(ctx.capacity.length > 0 ? [{ label: 'shortage', color: FAILED, style: 'hatch' as const }] : []),
  ]);
}

function chartPods(ctx: ChartContext): string {
  const { buckets, units } = ctx.series;
  const xs = buckets.map((b) => b.x);
  const layers = units.map((_, i) => buckets.map((b) => b.units[i]?.ready ?? 0));
  layers.push(buckets.map((b) => b.units.reduce((s, u) => s + u.starting, 0)));
  layers.push(buckets.map((b) => b.units.reduce((s, u) => s + u.pending, 0)));
  const tops = stack(layers);
  const { max, step } = niceScale(Math.max(1, ...(tops[tops.length - 1] ?? [0])));
  const f = frame('pods', ctx.duration, max);
  const fills = [...units.map((_, i) => unitColor(i)), STARTING, 'url(#hatch-pending)'];
  const body =
    shortageShading(f, ctx.capacity) +
    yAxis(f, step, max, shortNumber) +
    xAxis(f, true) +
    stackedAreas(f, xs, tops, fills);
  return panel('pods', svg(f, ctx.policy, ctx.series.service, body, `${ctx.policy}: pods per unit`), [
    ...unitLegend(units.map((u) => `${u} ready`)),
    { label: 'starting (all units)', color: STARTING },
    { label: 'pending, no node (all units)', color: PENDING, style: 'hatch' },
  ]);
}

function chartLatency(ctx: ChartContext): string {
  const { buckets, units } = ctx.series;
  const xs = buckets.map((b) => b.x);
  const observed = Math.max(0, ...buckets.map((b) => (Number.isFinite(b.p99) ? b.p99 : 0)));
  const { max, step } = niceScale(Math.min(Math.max(observed, ctx.slo * 1.25), ctx.slo * 4));
  const f = frame('latency', ctx.duration, max);
  let body = shortageShading(f, ctx.capacity) + yAxis(f, step, max, (v) => `${+v.toFixed(2)}`) + xAxis(f, true);
  units.forEach((_, i) => {
    body += line(f, xs, buckets.map((b) => b.units[i]?.p99 ?? null), unitColor(i), 1.2, ' stroke-opacity="0.9"');
  });
  // A non-finite service p99 (every request failed) is drawn at the top of the chart.
  body += line(f, xs, buckets.map((b) => (Number.isFinite(b.p99) ? b.p99 : max)), '#222', 2);
  const ySlo = c1(f.y(ctx.slo));
  body += `<line class="slo" x1="${ML}" x2="${W - MR}" y1="${ySlo}" y2="${ySlo}"/><text class="slo-label" x="${W - MR - 4}" y="${ySlo}" dy="-0.4em">SLO ${ctx.slo} s</text>`;
  return panel('latency', svg(f, ctx.policy, ctx.series.service, body, `${ctx.policy}: p99 latency`), [
    ...unitLegend(units),
    { label: 'service p99', color: '#222', style: 'line' },
    { label: `SLO ${ctx.slo} s`, color: FAILED, style: 'dash' },
  ]);
}

function chartCost(ctx: ChartContext): string {
  const maxY = Math.max(0, ...ctx.allCosts.flatMap((c) => c.ys));
  const { max, step } = niceScale(maxY);
  const f = frame('cost', ctx.duration, max);
  let body = shortageShading(f, ctx.capacity) + yAxis(f, step, max, (v) => `$${shortNumber(v)}`) + xAxis(f, true);
  const keys: LegendItem[] = [];
  ctx.allCosts.forEach((c, i) => {
    const mine = i === ctx.policyIndex;
    const color = POLICY_COLORS[i % POLICY_COLORS.length] ?? '#555';
    if (!mine) body += line(f, c.xs, c.ys, color, 1, ' stroke-dasharray="4 3" stroke-opacity="0.75"');
    keys.push({ label: mine ? `${c.policy} (this policy)` : c.policy, color, style: mine ? 'line' : 'dash' });
  });
  const own = ctx.allCosts[ctx.policyIndex];
  if (own) {
    const color = POLICY_COLORS[ctx.policyIndex % POLICY_COLORS.length] ?? '#555';
    body += area(f, own.xs, own.ys, color, ' fill-opacity="0.12"');
    body += line(f, own.xs, own.ys, color, 2.4);
    const lastX = own.xs[own.xs.length - 1];
    const lastY = own.ys[own.ys.length - 1];
    if (lastX !== undefined && lastY !== undefined) {
      body += `<text class="end-label" x="${c1(f.x(lastX) - 4)}" y="${c1(f.y(lastY))}" dy="-0.5em">${esc(formatDollars(lastY))}</text>`;
    }
  }
  return panel('cost', svg(f, ctx.policy, ctx.series.service, body, `${ctx.policy}: cumulative cost`), keys);
}

function panel(kind: ChartKind, svgHtml: string, keys: LegendItem[]): string {
  return `<figure class="panel panel-${kind}"><figcaption><span class="ptitle">${esc(CHART_TITLES[kind])}</span>${legend(keys)}</figcaption>${svgHtml}</figure>`;
}

const DRAW: Record<ChartKind, (ctx: ChartContext) => string> = {
  served: chartServed,
  weights: chartWeights,
  mode: chartMode,
  pods: chartPods,
  latency: chartLatency,
  cost: chartCost,
};

// ---------------------------------------------------------------------------------------------
// Page

/** The bucket data the hover read-out shows, compact. */
function hoverData(series: Series, slo: number, duration: number): string {
  const data = {
    duration,
    ml: ML,
    pw: PW,
    w: W,
    slo,
    bucket: series.bucketMinutes,
    units: series.units,
    rows: series.buckets.map((b) => [
      b.from,
      b.to,
      b.mode,
      dn(b.demand, 0),
      dn(b.served, 0),
      dn(b.failed, 1),
      Number.isFinite(b.p99) ? dn(b.p99, 3) : null,
      dn(b.cumulativeCost, 2),
      dn(b.costPerHour, 2),
      b.units.map((u) => [
        dn(u.weight, 0),
        dn(u.served, 0),
        dn(u.ready, 1),
        dn(u.starting, 1),
        dn(u.pending, 1),
        u.p99 === null ? null : dn(u.p99, 3),
        dn(u.minReplicas, 1),
        dn(u.targetRpm, 1),
      ]),
    ]),
  };
  // Safe inside <script>: no "</" or "<!--" can close it.
  return JSON.stringify(data).replace(/</g, '\\u003c');
}

function hadShortage(run: PolicyRun, result: SimulationResult): boolean {
  return run.events.some((e) => e.kind === 'shortage-started') || result.scenario.capacity.length > 0;
}

interface Column {
  header: string;
  title: string;
  value: (run: PolicyRun) => number | null;
  text: (run: PolicyRun) => string;
  lowerIsBetter: boolean;
}

function comparisonTable(result: SimulationResult): string {
  const cols: Column[] = [
    { header: 'Total cost', title: 'Dollars over the whole run', value: (r) => r.summary.totalCost, text: (r) => formatDollars(r.summary.totalCost), lowerIsBetter: true },
    {
      header: 'Cost per 1M successful',
      title: 'Dollars per one million successful requests',
      value: (r) => r.summary.costPerMillion,
      text: (r) => formatDollars(r.summary.costPerMillion),
      lowerIsBetter: true,
    },
    { header: 'Served requests', title: 'Successful requests', value: (r) => r.summary.servedRequests, text: (r) => formatNumber(r.summary.servedRequests), lowerIsBetter: false },
    { header: 'Failed requests', title: 'Requests that failed (5xx)', value: (r) => r.summary.failedRequests, text: (r) => formatNumber(r.summary.failedRequests), lowerIsBetter: true },
    { header: 'Minutes over SLO', title: 'Minutes with p99 over the SLO', value: (r) => r.summary.minutesOverSlo, text: (r) => formatNumber(r.summary.minutesOverSlo), lowerIsBetter: true },
    { header: 'Mode switches', title: 'Changes of mode', value: () => null, text: (r) => formatNumber(r.summary.modeSwitches), lowerIsBetter: true },
    {
      header: 'Minutes to shift',
      title: "Minutes from the first shortage's start until traffic moved off the short pool",
      value: (r) => r.summary.minutesToShift,
      text: (r) => formatMinutesToShift(r.summary.minutesToShift, hadShortage(r, result)),
      lowerIsBetter: true,
    },
  ];
  const best = cols.map((c) => {
    const vals = result.runs.map((r) => c.value(r)).filter((v): v is number => v !== null && Number.isFinite(v));
    if (vals.length < 2 || Math.min(...vals) === Math.max(...vals)) return null;
    return c.lowerIsBetter ? Math.min(...vals) : Math.max(...vals);
  });
  const head = `<tr><th>Policy</th>${cols.map((c) => `<th title="${esc(c.title)}">${esc(c.header)}</th>`).join('')}</tr>`;
  const body = result.runs
    .map((r, ri) => {
      const color = POLICY_COLORS[ri % POLICY_COLORS.length] ?? '#555';
      const cells = cols
        .map((c, i) => {
          const v = c.value(r);
          const isBest = best[i] !== null && v !== null && Math.abs(v - (best[i] ?? 0)) < 1e-9;
          return `<td class="num${isBest ? ' best' : ''}">${esc(c.text(r))}</td>`;
        })
        .join('');
      return `<tr><th scope="row"><a href="#policy-${ri}"><i class="dot" style="--c:${color}"></i>${esc(r.summary.policy)}</a></th>${cells}</tr>`;
    })
    .join('');
  return `<table class="summary" data-table="comparison"><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

function scenarioFacts(result: SimulationResult): string {
  const s = result.scenario;
  const hours = s.durationMinutes / 60;
  const services = Object.entries(s.services)
    .map(([name, svc]) => `<li><b>${esc(name)}</b> — SLO p99 ${svc.sloSeconds} s; units: ${svc.units.map((u) => `<code>${esc(u)}</code>`).join(', ')}</li>`)
    .join('');
  const windows =
    s.capacity.length === 0
      ? '<li>no capacity limits</li>'
      : s.capacity
          .map(
            (w) =>
              `<li><span class="swatch-short"></span><b>${esc(w.family)}</b>: ${w.maxInstances === 'hold' ? 'hold (no new launches, running nodes stay)' : `at most ${esc(String(w.maxInstances))} instances`}, minutes ${w.fromMinute}–${w.toMinute}</li>`,
          )
          .join('');
  return (
    `<div class="facts"><div><h3>Scenario</h3><ul><li>${formatNumber(s.durationMinutes)} minutes (${formatNumber(hours, hours % 1 === 0 ? 0 : 1)} h), step ${s.stepSeconds} s, seed ${s.seed}</li>` +
    `<li>${result.runs.length} ${result.runs.length === 1 ? 'policy' : 'policies'}: ${result.runs.map((r) => `<code>${esc(r.summary.policy)}</code>`).join(', ')}</li></ul></div>` +
    `<div><h3>Services</h3><ul>${services}</ul></div><div><h3>Capacity</h3><ul>${windows}</ul></div></div>`
  );
}

function eventsList(run: PolicyRun): string {
  const shown = run.events.filter((e) => e.kind !== 'probe').slice(0, 300);
  if (run.events.length === 0) return '';
  const items = shown
    .map((e) => `<li><span class="ev-min">${e.minute}</span><span class="ev-kind ev-${esc(e.kind)}">${esc(e.kind)}</span><span class="ev-svc">${esc(e.service)}</span> ${esc(e.message)}</li>`)
    .join('');
  const more = run.events.length > shown.length ? `<li class="muted">… ${run.events.length - shown.length} more (probes and later events) in the timeline JSON</li>` : '';
  return `<details class="events"><summary>Events (${formatNumber(run.events.length)})</summary><ul>${items}${more}</ul></details>`;
}

function chips(run: PolicyRun, result: SimulationResult): string {
  const s = run.summary;
  const items: Array<[string, string, boolean]> = [
    ['total', formatDollars(s.totalCost), false],
    ['per 1M ok', formatDollars(s.costPerMillion), false],
    ['failed', formatNumber(s.failedRequests), s.failedRequests >= 0.5],
    ['min > SLO', formatNumber(s.minutesOverSlo), s.minutesOverSlo > 0],
    ['switches', formatNumber(s.modeSwitches), false],
    ['to shift', formatMinutesToShift(s.minutesToShift, hadShortage(run, result)), false],
  ];
  return `<div class="chips">${items.map(([k, v, bad]) => `<span class="chip${bad ? ' bad' : ''}"><small>${esc(k)}</small>${esc(v)}</span>`).join('')}</div>`;
}

const CSS = `
:root{--fg:#1d2330;--muted:#6b7280;--line:#e5e7eb;--bg:#f4f5f7;--card:#fff;--accent:#2f4b7c}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header.top{background:#1d2330;color:#fff;padding:18px 28px 14px}
header.top h1{margin:0;font-size:20px;font-weight:600}
header.top .sub{color:#c3c8d2;font-size:13px;margin-top:2px}
nav{position:sticky;top:0;z-index:5;background:#fffffff0;border-bottom:1px solid var(--line);padding:8px 28px;display:flex;gap:18px;flex-wrap:wrap;backdrop-filter:blur(4px)}
nav a{color:var(--accent);text-decoration:none;font-weight:500}
nav a:hover{text-decoration:underline}
main{max-width:1240px;margin:0 auto;padding:18px 24px 60px}
section.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:16px 0;box-shadow:0 1px 2px #0000000a}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:13px;margin:0 0 4px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f3f6;padding:1px 4px;border-radius:4px}
table.summary{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
table.summary th,table.summary td{padding:7px 10px;border-bottom:1px solid var(--line)}
table.summary thead th{text-align:right;font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
table.summary thead th:first-child,table.summary tbody th{text-align:left}
table.summary tbody th a{color:var(--fg);text-decoration:none;font-weight:600}
table.summary td.num{text-align:right;white-space:nowrap}
table.summary td.best{color:#0f7b3f;font-weight:700}
table.summary tbody tr:hover{background:#f8f9fb}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;background:var(--c);margin-right:8px;vertical-align:-1px}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:8px 24px;margin-top:14px}
.facts ul{margin:0;padding-left:18px}
.swatch-short{display:inline-block;width:12px;height:10px;margin-right:6px;background:repeating-linear-gradient(45deg,#d6272855 0 2px,#d6272818 2px 5px);border:1px solid #d6272888;vertical-align:-1px}
ul.notes{margin:0;padding-left:20px}
ul.notes li{margin:3px 0}
.policy-head{display:flex;align-items:baseline;justify-content:space-between;gap:16px;flex-wrap:wrap}
.policy-head h2{display:flex;align-items:center;gap:8px}
.chips{display:flex;gap:6px;flex-wrap:wrap}
.chip{background:#f1f3f6;border-radius:6px;padding:3px 8px;font-variant-numeric:tabular-nums;font-weight:600}
.chip small{color:var(--muted);font-weight:500;margin-right:5px}
.chip.bad{background:#fde8e8;color:#a61b1b}
h3.svc{margin:14px 0 2px}
figure.panel{margin:10px 0 0}
figcaption{display:flex;justify-content:space-between;align-items:baseline;gap:12px;flex-wrap:wrap;margin-bottom:2px}
.ptitle{font-weight:600;font-size:13px}
.legend{display:flex;flex-wrap:wrap;gap:2px 12px;font-size:12px;color:#374151}
.key{display:inline-flex;align-items:center;gap:5px;white-space:nowrap}
.key i{display:inline-block;width:12px;height:10px;border-radius:2px;background:var(--c)}
.key-line i{height:3px;border-radius:0}
.key-dash i{height:0;border-top:2px dashed var(--c);background:none;border-radius:0}
.key-hatch i{background:repeating-linear-gradient(45deg,var(--c) 0 2px,#fff 2px 4px);border:1px solid var(--c)}
svg.chart{display:block;width:100%;height:auto;overflow:visible}
svg.chart-mode{margin-top:2px}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#4b5563}
svg .ytick{text-anchor:end}
svg .xtick{text-anchor:middle}
svg .xtick-last{text-anchor:end}
svg .grid{stroke:#eceef2;stroke-width:1}
svg .vgrid{stroke:#f1f2f5;stroke-width:1}
svg .axis{stroke:#9ca3af;stroke-width:1}
svg .shortage rect{fill:url(#hatch-shortage)}
svg .shortage-outline{fill:url(#hatch-shortage);stroke:#d62728;stroke-opacity:.5;stroke-width:1}
svg .shortage-label,svg .slo-label,svg .end-label{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .shortage-label{fill:#a61b1b;font-weight:600}
svg .mode-label{text-anchor:middle;fill:#1f2937;font-weight:600}
svg .slo{stroke:#d62728;stroke-width:1.5;stroke-dasharray:6 4}
svg .slo-label{fill:#d62728;text-anchor:end;font-weight:600}
svg .end-label{text-anchor:end;font-weight:700;fill:#1f2937}
svg .cursor{stroke:#111;stroke-width:1;stroke-opacity:.55;pointer-events:none}
details.events{margin-top:12px}
details.events summary{cursor:pointer;color:var(--accent);font-weight:500}
details.events ul{list-style:none;padding:0;margin:6px 0 0;max-height:260px;overflow:auto;font-size:12px}
details.events li{padding:2px 0;border-bottom:1px dotted var(--line)}
.ev-min{display:inline-block;width:52px;text-align:right;margin-right:10px;font-variant-numeric:tabular-nums;color:var(--muted)}
.ev-kind{display:inline-block;min-width:118px;font-weight:600}
.ev-svc{color:var(--muted);margin-right:6px}
.ev-alert{color:#a61b1b}.ev-shortage-started{color:#a61b1b}.ev-mode-changed{color:#2f4b7c}
.muted{color:var(--muted)}
#tip{position:fixed;z-index:10;pointer-events:none;background:#1d2330f2;color:#fff;border-radius:8px;padding:8px 10px;font-size:12px;line-height:1.35;box-shadow:0 4px 16px #0003;display:none;max-width:560px}
#tip table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin-top:4px}
#tip td,#tip th{padding:1px 6px;text-align:right}
#tip th{color:#c3c8d2;font-weight:500}
#tip td:first-child{text-align:left}
#tip i{display:inline-block;width:8px;height:8px;border-radius:2px;margin-right:5px}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
@media print{nav{display:none}section.card{break-inside:avoid;box-shadow:none}}
`;

const DEFS = `<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
<pattern id="hatch-shortage" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#d62728" fill-opacity="0.05"/><line x1="0" y1="0" x2="0" y2="8" stroke="#d62728" stroke-opacity="0.16" stroke-width="3"/></pattern>
<pattern id="hatch-failed" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="5" height="5" fill="#fbe3e3"/><line x1="0" y1="0" x2="0" y2="5" stroke="${FAILED}" stroke-width="2.4"/></pattern>
<pattern id="hatch-pending" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="5" height="5" fill="#fbe9e9"/><line x1="0" y1="0" x2="0" y2="5" stroke="${PENDING}" stroke-width="1.6"/></pattern>
</defs></svg>`;

/** The hover read-out: one cursor across a service's charts and a tooltip with the bucket's numbers. */
const JS = `
(function(){
  var colors=${JSON.stringify(UNIT_COLORS)};
  var tip=document.getElementById('tip');
  function esc(s){return String(s).replace(/[&<>"']/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c];});}
  function fmt(v,d){if(v===null||v===undefined)return '–';return Number(v).toLocaleString('en-US',{maximumFractionDigits:d===undefined?1:d});}
  var blocks=document.querySelectorAll('.svc-block');
  Array.prototype.forEach.call(blocks,function(block){
    var el=block.querySelector('script.hover-data');
    if(!el)return;
    var data;
    try{data=JSON.parse(el.textContent);}catch(e){return;}
    var svgs=block.querySelectorAll('svg[data-chart]');
    function hide(){tip.style.display='none';Array.prototype.forEach.call(svgs,function(s){var c=s.querySelector('.cursor');if(c)c.setAttribute('visibility','hidden');});}
    function show(ev,svg){
      var r=svg.getBoundingClientRect();if(r.width<=0)return;
      var vx=(ev.clientX-r.left)/r.width*data.w;
      var minute=(vx-data.ml)/data.pw*data.duration;
      if(minute<0||minute>data.duration||!data.rows.length){hide();return;}
      var lo=0,hi=data.rows.length-1;
      while(lo<hi){var mid=(lo+hi+1)>>1;if(data.rows[mid][0]<=minute)lo=mid;else hi=mid-1;}
      var row=data.rows[lo];
      var x=data.ml+((row[0]+row[1])/2)/data.duration*data.pw;
      Array.prototype.forEach.call(svgs,function(s){var c=s.querySelector('.cursor');if(c){c.setAttribute('x1',x);c.setAttribute('x2',x);c.setAttribute('visibility','visible');}});
      var h='<b>minute '+row[0]+(row[1]!==row[0]?'–'+row[1]:'')+'</b> · mode <b>'+esc(row[2])+'</b><br>'+
        'demand '+fmt(row[3])+' rpm · served '+fmt(row[4])+' · failed '+fmt(row[5])+'<br>'+
        'p99 '+fmt(row[6],3)+' s (SLO '+data.slo+') · $'+fmt(row[8],2)+'/h · total $'+fmt(row[7],2)+
        '<table><tr><th></th><th>weight</th><th>served</th><th>ready</th><th>start</th><th>pend</th><th>floor</th><th>target</th><th>p99</th></tr>';
      data.units.forEach(function(u,i){var v=row[9][i]||[];h+='<tr><td><i style="background:'+colors[i%colors.length]+'"></i>'+esc(u)+'</td><td>'+fmt(v[0],0)+'</td><td>'+fmt(v[1])+'</td><td>'+fmt(v[2])+'</td><td>'+fmt(v[3])+'</td><td>'+fmt(v[4])+'</td><td>'+fmt(v[6])+'</td><td>'+fmt(v[7])+'</td><td>'+fmt(v[5],2)+'</td></tr>';});
      tip.innerHTML=h+'</table>';
      tip.style.display='block';
      var tx=ev.clientX+16,ty=ev.clientY+16,tw=tip.offsetWidth,th=tip.offsetHeight;
      if(tx+tw>window.innerWidth-8)tx=ev.clientX-tw-16;
      if(ty+th>window.innerHeight-8)ty=Math.max(8,ev.clientY-th-16);
      tip.style.left=tx+'px';tip.style.top=ty+'px';
    }
    Array.prototype.forEach.call(svgs,function(svg){
      svg.addEventListener('mousemove',function(ev){show(ev,svg);});
      svg.addEventListener('mouseleave',hide);
    });
  });
})();
`;

/**
 * The whole report as one HTML page. `notes` are the assumptions, shown as given (escaped).
 */
export function renderReport(result: SimulationResult, notes: string[] = []): string {
  const sc = result.scenario;
  const lastMinute = Math.max(0, ...result.runs.flatMap((r) => r.timeline.map((row) => row.minute + 1)));
  const duration = Math.max(1, sc.durationMinutes, lastMinute);
  const bucketMinutes = Math.max(1, Math.ceil(duration / MAX_POINTS));
  const services = serviceNames(result);

  const sections = result.runs
    .map((run, ri) => {
      const policy = run.summary.policy;
      const color = POLICY_COLORS[ri % POLICY_COLORS.length] ?? '#555';
      const blocks = services
        .map((service) => {
          const units = unitNames(result, service);
          const series = seriesOf(run, service, units, bucketMinutes);
          if (series.rows.length === 0) {
            return `<div class="svc-block">${services.length > 1 ? `<h3 class="svc">${esc(service)}</h3>` : ''}<p class="muted">No timeline rows for this service.</p></div>`;
          }
          const allCosts = result.runs.map((other) => {
            const rows = other === run ? series.buckets : seriesOf(other, service, [], bucketMinutes).buckets;
            return { policy: other.summary.policy, xs: rows.map((b) => b.x), ys: rows.map((b) => b.cumulativeCost) };
          });
          const ctx: ChartContext = {
            policy,
            policyIndex: ri,
            series,
            duration,
            slo: sc.services[service]?.sloSeconds ?? 0,
            capacity: sc.capacity,
            allCosts,
          };
          const charts = CHART_KINDS.map((k) => DRAW[k](ctx)).join('');
          return (
            `<div class="svc-block" data-service="${esc(service)}">` +
            (services.length > 1 ? `<h3 class="svc">${esc(service)}</h3>` : '') +
            `<script type="application/json" class="hover-data">${hoverData(series, ctx.slo, duration)}</script>${charts}</div>`
          );
        })
        .join('');
      return (
        `<section class="card policy" id="policy-${ri}" data-policy="${esc(policy)}"><div class="policy-head"><h2><i class="dot" style="--c:${color}"></i>${esc(policy)}</h2>${chips(run, result)}</div>` +
        `${blocks}${eventsList(run)}</section>`
      );
    })
    .join('\n');

  const nav = [
    '<a href="#summary">Summary</a>',
    ...result.runs.map((r, i) => `<a href="#policy-${i}">${esc(r.summary.policy)}</a>`),
  ].join('');
  const notesHtml =
    notes.length === 0 ? '<p class="muted">None given.</p>' : `<ul class="notes">${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`;
  const bucketNote =
    bucketMinutes > 1
      ? `Charts draw ${bucketMinutes}-minute buckets (means; latency: the bucket's highest p99). The per-minute figures are in the timeline CSV/JSON.`
      : 'Charts draw every minute.';

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>hwai simulation — ${esc(sc.name)}</title>
<style>${CSS}</style>
</head>
<body>
${DEFS}
<header class="top"><h1>hwai simulation — ${esc(sc.name)}</h1><div class="sub">${formatNumber(sc.durationMinutes)} minutes · ${result.runs.length} ${result.runs.length === 1 ? 'policy' : 'policies'} · time axis in minutes since the start · hover a chart for the numbers</div></header>
<nav>${nav}</nav>
<main>
<section class="card" id="summary"><h2>Policies compared</h2>${comparisonTable(result)}${scenarioFacts(result)}</section>
<section class="card" id="assumptions"><h2>Assumptions</h2>${notesHtml}<p class="muted">${esc(bucketNote)}</p></section>
${sections}
<footer>Generated by hwai's simulator. Shaded: capacity shortage windows of the scenario.</footer>
</main>
<div id="tip" role="status"></div>
<script>${JS}</script>
</body>
</html>
`;
}
