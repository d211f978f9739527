import type { PolicySummary } from '../sim/types.ts';
import { formatDollars, formatMinutesToShift, formatNumber } from './format.ts';

export interface ComparisonTableOptions {
  /**
   * Whether the scenario had a shortage to react to: a null `minutesToShift` then reads "never"
   * (traffic never moved off the short pool); without one it reads "—". Default false.
   */
  hadShortage?: boolean;
  /** The clairvoyant lower bound: printed as a last row, and each policy's cost per 1M over it. */
  bound?: { totalCost: number; costPerMillion: number };
}

interface Column {
  header: string;
  align: 'left' | 'right';
  cell: (s: PolicySummary) => string;
}

/**
 * The policies side by side as a fixed-width text table for the terminal: the policy name
 * left-aligned, every number right-aligned, dollars with two decimals and thousands separators.
 */
export function formatComparisonTable(summaries: PolicySummary[], options: ComparisonTableOptions = {}): string {
  const hadShortage = options.hadShortage ?? false;
  const columns: Column[] = [
    { header: 'policy', align: 'left', cell: (s) => s.policy },
    { header: 'total cost', align: 'right', cell: (s) => formatDollars(s.totalCost) },
    { header: '$ / 1M ok', align: 'right', cell: (s) => formatDollars(s.costPerMillion) },
    { header: 'served req', align: 'right', cell: (s) => formatNumber(s.servedRequests) },
    { header: 'failed req', align: 'right', cell: (s) => formatNumber(s.failedRequests) },
    { header: 'min > SLO', align: 'right', cell: (s) => formatNumber(s.minutesOverSlo) },
    { header: 'mode switches', align: 'right', cell: (s) => formatNumber(s.modeSwitches) },
    { header: 'min to shift', align: 'right', cell: (s) => formatMinutesToShift(s.minutesToShift, hadShortage) },
  ];
  const bound = options.bound;
  if (bound) columns.splice(3, 0, { header: '× bound', align: 'right', cell: (s) => (bound.costPerMillion > 0 ? `${(s.costPerMillion / bound.costPerMillion).toFixed(2)}` : '—') });
  const cells = summaries.map((s) => columns.map((c) => c.cell(s)));
  // The bound serves everything and has no policy's behaviour: only its costs are shown.
  if (bound) cells.push(columns.map((c) => (c.header === 'policy' ? 'bound' : c.header === 'total cost' ? formatDollars(bound.totalCost) : c.header === '$ / 1M ok' ? formatDollars(bound.costPerMillion) : c.header === '× bound' ? '1.00' : '')));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (values: string[]): string =>
    values
      .map((v, i) => {
        const w = widths[i] ?? v.length;
        return columns[i]?.align === 'left' ? v.padEnd(w) : v.padStart(w);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(columns.map((c) => c.header)), rule, ...cells.map(line)].join('\n') + '\n';
}
