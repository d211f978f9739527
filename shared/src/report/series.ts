import type { Mode } from '../core/types.ts';
import type { PolicyRun, SimulationResult, TimelineRow } from '../sim/types.ts';
import { ML, PW, W } from './svg.ts';

/**
 * The data the report draws: one service of one policy run, in buckets of whole minutes, and
 * the compact form of it that the page's hover read-out reads.
 */

/** A value for the embedded data, rounded to `decimals` decimals (0 for a non-finite one). */
function dn(v: number, decimals: number): number {
  if (!Number.isFinite(v)) return 0;
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

function finite(v: number): number {
  return Number.isFinite(v) ? v : 0;
}

interface UnitBucket {
  weight: number;
  share: number;
  served: number;
  ready: number;
  starting: number;
  pending: number;
  /** Whole pods at the bucket's last minute, for the read-out (the chart draws the means). */
  podsAtEnd: [number, number, number];
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

export interface Series {
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
        podsAtEnd: lastM ? [finite(lastM.readyPods), finite(lastM.startingPods), finite(lastM.pendingPods)] : [0, 0, 0],
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

export function serviceNames(result: SimulationResult): string[] {
  const names = new Set(Object.keys(result.scenario.services));
  for (const run of result.runs) for (const row of run.timeline) names.add(row.service);
  return [...names];
}

export function unitNames(result: SimulationResult, service: string): string[] {
  const names = new Set(result.scenario.services[service]?.units ?? []);
  for (const run of result.runs) for (const row of run.timeline) if (row.service === service) for (const u of Object.keys(row.units)) names.add(u);
  return [...names];
}

export function seriesOf(run: PolicyRun, service: string, units: string[], bucketMinutes: number): Series {
  const rows = run.timeline.filter((r) => r.service === service).sort((a, b) => a.minute - b.minute);
  return { service, units, bucketMinutes, rows, buckets: bucketize(rows, units, bucketMinutes) };
}

/** The bucket data the hover read-out shows, compact. */
export function hoverData(series: Series, slo: number, duration: number): string {
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
        ...u.podsAtEnd.map((n) => Math.round(n)),
        u.p99 === null ? null : dn(u.p99, 3),
        dn(u.minReplicas, 1),
        dn(u.targetRpm, 1),
      ]),
    ]),
  };
  // Safe inside <script>: no "</" or "<!--" can close it.
  return JSON.stringify(data).replace(/</g, '\\u003c');
}
