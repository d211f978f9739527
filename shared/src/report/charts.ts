import type { Mode } from '../core/types.ts';
import type { ShortageWindow } from '../sim/types.ts';
import { esc, formatDollars } from './format.ts';
import { FAILED, MODE_COLORS, PENDING, STARTING, policyColor, unitColor } from './palette.ts';
import type { Series } from './series.ts';
import {
  type Frame,
  type LegendItem,
  MR,
  MT,
  ML,
  W,
  area,
  background,
  c1,
  frame,
  legend,
  line,
  niceScale,
  shortNumber,
  shortageLabels,
  shortageRect,
  stack,
  stackedAreas,
  svg,
  xAxis,
} from './svg.ts';

/**
 * The six charts of one service under one policy, the seed's figures 10 and 11, each a titled
 * <figure> with its legend and its <svg data-chart="<policy>/<kind>">.
 */

export const CHART_KINDS = ['served', 'failed', 'weights', 'mode', 'pods', 'latency', 'cost'] as const;
export type ChartKind = (typeof CHART_KINDS)[number];

const CHART_TITLES: Record<ChartKind, string> = {
  served: 'Requests per minute served, by unit (failed on top, demand dashed)',
  failed: 'Failed requests per minute (one scale for every policy)',
  weights: 'Forward weights (share of the listener rule, %)',
  mode: 'Mode',
  pods: 'Pods: ready by unit; starting and pending stacked on top',
  latency: 'p99 latency (s) by unit; the service p99 bold, the SLO dashed (one scale for every policy)',
  cost: 'Cumulative cost ($); other policies thin',
};

const HEIGHTS: Record<ChartKind, number> = { served: 210, failed: 110, weights: 120, mode: 28, pods: 160, latency: 150, cost: 140 };
/** The mode band has no tick labels of its own. */
const MB_MODE = 3;

export interface ChartContext {
  policy: string;
  policyIndex: number;
  series: Series;
  duration: number;
  slo: number;
  capacity: ShortageWindow[];
  /** Cumulative cost of this service under every policy, for the cost chart. */
  allCosts: Array<{ policy: string; xs: number[]; ys: number[] }>;
  /** Minutes at which this policy's mode changed: a marker across every chart. */
  modeChanges: number[];
  /** The highest failed requests per minute and the highest p99 of any policy: shared scales. */
  failedMax: number;
  latencyMax: number;
}

/** A dashed vertical line at each mode change, with the minute in its tooltip. */
function modeMarkers(f: Frame<ChartKind>, minutes: number[]): string {
  return minutes
    .map((m) => {
      const x = c1(f.x(m));
      return `<line class="mode-change" x1="${x}" x2="${x}" y1="${MT}" y2="${c1(MT + f.ph)}" stroke="#444" stroke-width="1" stroke-dasharray="2 2"><title>${esc(`mode change at minute ${m}`)}</title></line>`;
    })
    .join('');
}

function chartFrame(kind: ChartKind, duration: number, yMax: number): Frame<ChartKind> {
  return frame(kind, HEIGHTS[kind], duration, yMax, kind === 'mode' ? MB_MODE : undefined);
}

/** The chart's <figure>: title and legend above the <svg>, labelled "<policy>: <what>". */
function panel(ctx: ChartContext, f: Frame<ChartKind>, body: string, what: string, keys: LegendItem[]): string {
  const html = svg(f, ctx.policy, ctx.series.service, body, `${ctx.policy}: ${what}`);
  return `<figure class="panel panel-${f.kind}"><figcaption><span class="ptitle">${esc(CHART_TITLES[f.kind])}</span>${legend(keys)}</figcaption>${html}</figure>`;
}

function unitLegend(units: string[]): LegendItem[] {
  return units.map((u, i) => ({ label: u, color: unitColor(i) }));
}

function chartServed(ctx: ChartContext): string {
  const { buckets, units } = ctx.series;
  const xs = buckets.map((b) => b.x);
  const layers = units.map((_, i) => buckets.map((b) => b.units[i]?.served ?? 0));
  layers.push(buckets.map((b) => b.failed));
  const tops = stack(layers);
  const maxY = Math.max(...buckets.map((b) => b.demand), ...(tops[tops.length - 1] ?? [0]));
  const { max, step } = niceScale(maxY);
  const f = chartFrame('served', ctx.duration, max);
  const fills = [...units.map((_, i) => unitColor(i)), 'url(#hatch-failed)'];
  const body =
    background(f, ctx.capacity, step, max, shortNumber) +
    stackedAreas(f, xs, tops, fills) +
    line(f, xs, buckets.map((b) => b.demand), '#111', 1.4, ' stroke-dasharray="5 3"') +
    shortageLabels(f, ctx.capacity);
  return panel(ctx, f, body, 'requests served per unit', [
    ...unitLegend(units),
    { label: 'failed', color: FAILED, style: 'hatch' },
    { label: 'demand', color: '#111', style: 'dash' },
  ]);
}

function chartFailed(ctx: ChartContext): string {
  const { buckets } = ctx.series;
  const xs = buckets.map((b) => b.x);
  const { max, step } = niceScale(Math.max(1, ctx.failedMax));
  const f = chartFrame('failed', ctx.duration, max);
  const failed = buckets.map((b) => b.failed);
  const none = failed.every((v) => v <= 0);
  const body =
    background(f, ctx.capacity, step, max, shortNumber) +
    (none
      ? `<text class="mark none-label" x="${c1(ML + 8)}" y="${c1(MT + f.ph / 2)}" dy="0.33em">no failed request</text>`
      : area(f, xs, failed, FAILED, ' fill-opacity="0.35"') + line(f, xs, failed, FAILED, 1.4));
  return panel(ctx, f, body, 'failed requests', [{ label: 'failed requests per minute', color: FAILED }]);
}

function chartWeights(ctx: ChartContext): string {
  const { buckets, units } = ctx.series;
  const xs = buckets.map((b) => b.x);
  const tops = stack(units.map((_, i) => buckets.map((b) => b.units[i]?.share ?? 0)));
  const f = chartFrame('weights', ctx.duration, 100);
  const body = background(f, ctx.capacity, 25, 100, (v) => `${v}%`) + stackedAreas(f, xs, tops, units.map((_, i) => unitColor(i)));
  return panel(ctx, f, body, 'forward weights per unit', unitLegend(units));
}

function chartMode(ctx: ChartContext): string {
  const { rows } = ctx.series;
  const f = chartFrame('mode', ctx.duration, 1);
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
  const shading = ctx.capacity.map((w) => shortageRect(f, w, 'shortage-outline')).join('');
  const body = s + shading + xAxis(f, false, false);
  const keys = (['cost', 'capacity', 'override'] as Mode[]).filter((m) => seen.has(m)).map((m) => ({ label: m, color: MODE_COLORS[m] }));
  return panel(ctx, f, body, 'mode over time', [
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
  const f = chartFrame('pods', ctx.duration, max);
  const fills = [...units.map((_, i) => unitColor(i)), STARTING, 'url(#hatch-pending)'];
  const body = background(f, ctx.capacity, step, max, shortNumber) + stackedAreas(f, xs, tops, fills);
  return panel(ctx, f, body, 'pods per unit', [
    ...unitLegend(units.map((u) => `${u} ready`)),
    { label: 'starting (all units)', color: STARTING },
    { label: 'pending, no node (all units)', color: PENDING, style: 'hatch' },
  ]);
}

function chartLatency(ctx: ChartContext): string {
  const { buckets, units } = ctx.series;
  const xs = buckets.map((b) => b.x);
  const { max, step } = niceScale(Math.min(Math.max(ctx.latencyMax, ctx.slo * 1.25), ctx.slo * 4));
  const f = chartFrame('latency', ctx.duration, max);
  let body = background(f, ctx.capacity, step, max, (v) => `${+v.toFixed(2)}`);
  units.forEach((_, i) => {
    body += line(f, xs, buckets.map((b) => b.units[i]?.p99 ?? null), unitColor(i), 1.2, ' stroke-opacity="0.9"');
  });
  // A non-finite service p99 (every request failed) is drawn at the top of the chart.
  body += line(f, xs, buckets.map((b) => (Number.isFinite(b.p99) ? b.p99 : max)), '#222', 2);
  const ySlo = c1(f.y(ctx.slo));
  body += `<line class="slo" x1="${ML}" x2="${W - MR}" y1="${ySlo}" y2="${ySlo}"/><text class="slo-label" x="${W - MR - 4}" y="${ySlo}" dy="-0.4em">SLO ${ctx.slo} s</text>`;
  return panel(ctx, f, body, 'p99 latency', [
    ...unitLegend(units),
    { label: 'service p99', color: '#222', style: 'line' },
    { label: `SLO ${ctx.slo} s`, color: FAILED, style: 'dash' },
  ]);
}

function chartCost(ctx: ChartContext): string {
  const maxY = Math.max(0, ...ctx.allCosts.flatMap((c) => c.ys));
  const { max, step } = niceScale(maxY);
  const f = chartFrame('cost', ctx.duration, max);
  let body = background(f, ctx.capacity, step, max, (v) => `$${shortNumber(v)}`);
  const keys: LegendItem[] = [];
  ctx.allCosts.forEach((c, i) => {
    const mine = i === ctx.policyIndex;
    const color = policyColor(i);
    if (!mine) body += line(f, c.xs, c.ys, color, 1, ' stroke-dasharray="4 3" stroke-opacity="0.75"');
    keys.push({ label: mine ? `${c.policy} (this policy)` : c.policy, color, style: mine ? 'line' : 'dash' });
  });
  const own = ctx.allCosts[ctx.policyIndex];
  if (own) {
    const color = policyColor(ctx.policyIndex);
    body += area(f, own.xs, own.ys, color, ' fill-opacity="0.12"');
    body += line(f, own.xs, own.ys, color, 2.4);
    const lastX = own.xs[own.xs.length - 1];
    const lastY = own.ys[own.ys.length - 1];
    if (lastX !== undefined && lastY !== undefined) {
      body += `<text class="end-label" x="${c1(f.x(lastX) - 4)}" y="${c1(f.y(lastY))}" dy="-0.5em">${esc(formatDollars(lastY))}</text>`;
    }
  }
  return panel(ctx, f, body, 'cumulative cost', keys);
}

const DRAW: Record<ChartKind, (ctx: ChartContext) => string> = {
  served: chartServed,
  failed: chartFailed,
  weights: chartWeights,
  mode: chartMode,
  pods: chartPods,
  latency: chartLatency,
  cost: chartCost,
};

/** Every chart kind, in CHART_KINDS order, each with the mode-change markers drawn last (on top). */
export function renderCharts(ctx: ChartContext): string {
  return CHART_KINDS.map((k) => {
    const html = DRAW[k](ctx);
    const markers = modeMarkers(chartFrame(k, ctx.duration, 1), ctx.modeChanges);
    return markers === '' ? html : html.replace(/<\/svg>/, `${markers}</svg>`);
  }).join('');
}
