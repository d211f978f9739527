import type { PolicyRun, TimelineRow, UnitMinute } from '../sim/types.ts';
import { plainNumber } from './format.ts';

/** The per-unit columns of the CSV, as `<unit>.<field>`, and where each comes from. */
export const UNIT_CSV_FIELDS = [
  ['weight', 'weight'],
  ['served', 'servedRpm'],
  ['ready', 'readyPods'],
  ['starting', 'startingPods'],
  ['pending', 'pendingPods'],
  ['minReplicas', 'minReplicas'],
  ['targetRpm', 'targetRpm'],
] as const satisfies ReadonlyArray<readonly [string, keyof UnitMinute]>;

/** The service-level columns of the CSV, in order. */
export const ROW_CSV_FIELDS = [
  'minute',
  'service',
  'mode',
  'demandRpm',
  'servedRpm',
  'failedRpm',
  'p99Seconds',
  'costPerHour',
  'cumulativeCost',
] as const satisfies ReadonlyArray<keyof TimelineRow>;

/** Every unit named in the timeline, in the order first seen. */
export function timelineUnits(timeline: readonly TimelineRow[]): string[] {
  const seen = new Set<string>();
  for (const row of timeline) for (const unit of Object.keys(row.units)) seen.add(unit);
  return [...seen];
}

/** One CSV field per RFC 4180: quoted when it holds a comma, a double quote, CR or LF. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function csvLine(values: readonly string[]): string {
  return values.map(csvField).join(',');
}

/**
 * The run's per-minute timeline as CSV (RFC 4180: CRLF line ends, a header line): one row per
 * minute per service, the service-level columns, then for every unit `<unit>.weight`,
 * `.served` (rpm), `.ready`, `.starting`, `.pending` (pods), `.minReplicas`, `.targetRpm`.
 * A unit a service does not have, and a non-finite number, is an empty field.
 */
export function timelineCsv(run: PolicyRun): string {
  const units = timelineUnits(run.timeline);
  const header = [...ROW_CSV_FIELDS, ...units.flatMap((u) => UNIT_CSV_FIELDS.map(([name]) => `${u}.${name}`))];
  const lines = [csvLine(header)];
  for (const row of run.timeline) {
    const values: string[] = [
      plainNumber(row.minute),
      row.service,
      row.mode,
      plainNumber(row.demandRpm),
      plainNumber(row.servedRpm),
      plainNumber(row.failedRpm),
      plainNumber(row.p99Seconds),
      plainNumber(row.costPerHour),
      plainNumber(row.cumulativeCost),
    ];
    for (const unit of units) {
      const m = row.units[unit];
      for (const [, key] of UNIT_CSV_FIELDS) values.push(m ? plainNumber(m[key]) : '');
    }
    lines.push(csvLine(values));
  }
  return lines.join('\r\n') + '\r\n';
}

/** Numbers to at most 6 decimals (as in the CSV): no float noise, a third of the size. */
function roundNumbers(_key: string, value: unknown): unknown {
  return typeof value === 'number' && Number.isFinite(value) ? Number(value.toFixed(6)) : value;
}

/**
 * The run as JSON: `{ policy, summary, events, timeline }`, one timeline row per line so the
 * file stays diffable. Numbers are rounded to 6 decimals; non-finite ones become null (as
 * JSON.stringify does).
 */
export function timelineJson(run: PolicyRun): string {
  const head = JSON.stringify({ policy: run.summary.policy, summary: run.summary, events: run.events }, roundNumbers);
  const rows = run.timeline.map((row) => JSON.stringify(row, roundNumbers));
  const body = rows.length === 0 ? '[]' : `[\n${rows.join(',\n')}\n]`;
  return `${head.slice(0, -1)},"timeline":${body}}\n`;
}
