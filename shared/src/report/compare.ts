import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InputValidationError, validate } from '../spec/validation.ts';
import { formatDollars, formatNumber } from './format.ts';

/** Two `hwai simulate` output folders side by side (`hwai compare DIR DIR`), from their summary.json. */

const SummarySchema = z.object({
  scenario: z.string(),
  policies: z.array(
    z.object({
      policy: z.string(),
      totalCost: z.number(),
      costPerMillion: z.number(),
      failedRequests: z.number(),
      minutesOverSlo: z.number(),
      modeSwitches: z.number(),
    }),
  ),
  bound: z.object({ totalCost: z.number(), costPerMillion: z.number() }).optional(),
});

type Summary = z.infer<typeof SummarySchema>;

export function readSummary(dir: string): Summary {
  const path = join(dir, 'summary.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputValidationError(dir, [{ path: 'summary.json', message: `cannot read ${path}: ${(e as Error).message}; expected a folder written by hwai simulate` }]);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new InputValidationError(path, [{ path: '', message: `not JSON: ${(e as Error).message}` }]);
  }
  return validate(SummarySchema, data, path);
}

/** One row per policy in either run (and the bound), each figure as A | B. */
export function formatComparison(a: Summary, b: Summary, labels: [string, string]): string {
  const policies = [...new Set([...a.policies, ...b.policies].map((p) => p.policy))];
  const pick = (s: Summary, policy: string) => s.policies.find((p) => p.policy === policy);
  const figures: Array<[string, (p: Summary['policies'][number]) => string]> = [
    ['total cost', (p) => formatDollars(p.totalCost)],
    ['$ / 1M ok', (p) => formatDollars(p.costPerMillion)],
    ['failed req', (p) => formatNumber(p.failedRequests)],
    ['min > SLO', (p) => formatNumber(p.minutesOverSlo)],
    ['mode switches', (p) => formatNumber(p.modeSwitches)],
  ];
  const header = ['policy', ...figures.flatMap(([h]) => [`${h} A`, `${h} B`])];
  const rows = policies.map((policy) => {
    const [pa, pb] = [pick(a, policy), pick(b, policy)];
    return [policy, ...figures.flatMap(([, f]) => [pa ? f(pa) : '—', pb ? f(pb) : '—'])];
  });
  if (a.bound || b.bound) {
    rows.push(['bound', a.bound ? formatDollars(a.bound.totalCost) : '—', b.bound ? formatDollars(b.bound.totalCost) : '—', a.bound ? formatDollars(a.bound.costPerMillion) : '—', b.bound ? formatDollars(b.bound.costPerMillion) : '—', '', '', '', '', '', '']);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [`A: ${labels[0]} (${a.scenario})`, `B: ${labels[1]} (${b.scenario})`, '', line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}
