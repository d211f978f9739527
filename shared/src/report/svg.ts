import type { ShortageWindow } from '../sim/types.ts';
import { esc } from './format.ts';

/**
 * SVG primitives for the report's charts: the shared geometry, axis scales, lines, areas,
 * axes, shortage shading and legends. Every chart is one time axis in minutes.
 */

// Chart geometry, in viewBox units (the SVG scales to the page width).
export const W = 1100;
export const ML = 62;
export const MR = 18;
export const PW = W - ML - MR;
export const MT = 8;
const MB = 20;

/** A coordinate with one decimal, as short as possible. */
export function c1(v: number): string {
  const r = Math.round(v * 10) / 10;
  return Object.is(r, -0) ? '0' : String(r);
}

/** A "nice" axis maximum and step for values up to `max`, about four ticks. */
export function niceScale(max: number, ticks = 4): { max: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { max: 1, step: 0.25 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

export function shortNumber(v: number): string {
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

/** One chart's plot area and scales: minutes 0..duration across, 0..yMax up (clamped). */
export interface Frame<K extends string = string> {
  kind: K;
  height: number;
  ph: number;
  duration: number;
  x: (minute: number) => number;
  y: (v: number) => number;
}

/** `marginBottom` leaves room for the minute labels; a chart without them needs less. */
export function frame<K extends string>(kind: K, height: number, duration: number, yMax: number, marginBottom = MB): Frame<K> {
  const ph = height - MT - marginBottom;
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
export function area(f: Frame, xs: number[], ys: number[], fill: string, extra = ''): string {
  if (xs.length === 0) return '';
  const base = c1(f.y(0));
  const x0 = c1(f.x(xs[0] ?? 0));
  const xn = c1(f.x(xs[xs.length - 1] ?? 0));
  return `<path class="mark" d="M${x0},${base}L${points(f, xs, ys)} ${xn},${base}Z" fill="${fill}"${extra}/>`;
}

/** A polyline; null (or non-finite) values break it. */
export function line(f: Frame, xs: number[], ys: Array<number | null>, stroke: string, width: number, extra = ''): string {
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

/** Cumulative sums of `layers` (each an array over buckets), bottom layer first. */
export function stack(layers: number[][]): number[][] {
  const out: number[][] = [];
  let acc: number[] = layers[0]?.map(() => 0) ?? [];
  for (const layer of layers) {
    acc = acc.map((a, i) => a + (layer[i] ?? 0));
    out.push(acc);
  }
  return out;
}

/** Stacked areas, drawn top layer first so each lower one paints over the rest of it. */
export function stackedAreas(f: Frame, xs: number[], tops: number[][], fills: string[]): string {
  let s = '';
  for (let i = tops.length - 1; i >= 0; i--) s += area(f, xs, tops[i] ?? [], fills[i] ?? '#888');
  return s;
}

function yAxis(f: Frame, step: number, max: number, fmt: (v: number) => string): string {
  let s = '';
  for (let v = 0; v <= max + step / 1000; v += step) {
    const y = c1(f.y(v));
    s += `<line class="grid" x1="${ML}" x2="${W - MR}" y1="${y}" y2="${y}"/><text class="ytick" x="${ML - 6}" y="${y}" dy="0.32em">${esc(fmt(v))}</text>`;
  }
  return s;
}

export function xAxis(f: Frame, labels: boolean, grid = true): string {
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

/** What every chart with a value axis draws first: the shortage windows, then both axes. */
export function background(f: Frame, capacity: ShortageWindow[], step: number, max: number, fmt: (v: number) => string): string {
  return shortageShading(f, capacity) + yAxis(f, step, max, fmt) + xAxis(f, true);
}

/** A shortage window's full-height rectangle. */
export function shortageRect(f: Frame, w: ShortageWindow, cls = ''): string {
  const x0 = f.x(w.fromMinute);
  const width = Math.max(1, f.x(w.toMinute) - x0);
  return `<rect${cls === '' ? '' : ` class="${cls}"`} x="${c1(x0)}" y="${MT}" width="${c1(width)}" height="${f.ph}"/>`;
}

function shortageShading(f: Frame, capacity: ShortageWindow[]): string {
  return capacity
    .map((w) => {
      const title = `${w.family} short: ${w.maxInstances === 'hold' ? 'hold (no new launches)' : `at most ${w.maxInstances} instances`}, minutes ${w.fromMinute}–${w.toMinute}`;
      return `<g class="shortage"><title>${esc(title)}</title>${shortageRect(f, w)}</g>`;
    })
    .join('');
}

/** Names of the shortage windows, drawn over the data. */
export function shortageLabels(f: Frame, capacity: ShortageWindow[]): string {
  return capacity
    .map((w) => {
      const text = `${w.family} ${w.maxInstances === 'hold' ? 'hold' : `≤ ${w.maxInstances}`}`;
      return `<text class="shortage-label" x="${c1(f.x(w.fromMinute) + 4)}" y="${MT + 11}">${esc(text)}</text>`;
    })
    .join('');
}

/** The chart element: <svg data-chart="<policy>/<kind>" data-service="<service>"> with a hidden hover cursor. */
export function svg(f: Frame, policy: string, service: string, body: string, ariaLabel: string): string {
  const cursor = `<line class="cursor" x1="0" x2="0" y1="${MT}" y2="${MT + f.ph}" visibility="hidden"/>`;
  return (
    `<svg class="chart chart-${f.kind}" data-chart="${esc(policy)}/${f.kind}" data-service="${esc(service)}" ` +
    `viewBox="0 0 ${W} ${f.height}" preserveAspectRatio="none" role="img" aria-label="${esc(ariaLabel)}">${body}${cursor}</svg>`
  );
}

export interface LegendItem {
  label: string;
  color: string;
  style?: 'swatch' | 'line' | 'dash' | 'hatch';
}

export function legend(items: LegendItem[]): string {
  return (
    '<div class="legend">' +
    items
      .map((i) => `<span class="key key-${i.style ?? 'swatch'}"><i style="--c:${i.color}"></i>${esc(i.label)}</span>`)
      .join('') +
    '</div>'
  );
}
