import type { PolicyRun, SimulationResult } from '../sim/types.ts';
import { esc, formatDollars, formatMinutesToShift, formatNumber } from './format.ts';
import { policyColor } from './palette.ts';

/**
 * The report's text parts: the comparison table of the policies, the scenario's facts, and
 * per policy its figure chips and its list of events.
 */

/** "1 policy", "4 policies". */
export function policyCount(n: number): string {
  return `${n} ${n === 1 ? 'policy' : 'policies'}`;
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

export function comparisonTable(result: SimulationResult): string {
  const cols: Column[] = [
    { header: 'Total cost', title: 'Dollars over the whole run', value: (r) => r.summary.totalCost, text: (r) => formatDollars(r.summary.totalCost), lowerIsBetter: true },
    {
      header: 'Cost per 1M successful',
      title: 'Dollars per one million successful requests',
      value: (r) => r.summary.costPerMillion,
      text: (r) => formatDollars(r.summary.costPerMillion),
      lowerIsBetter: true,
    },
    {
      header: '× bound',
      title: 'Cost per 1M successful requests over the clairvoyant lower bound',
      value: (r) => (result.bound.costPerMillion > 0 ? r.summary.costPerMillion / result.bound.costPerMillion : null),
      text: (r) => (result.bound.costPerMillion > 0 ? (r.summary.costPerMillion / result.bound.costPerMillion).toFixed(2) : '—'),
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
      const cells = cols
        .map((c, i) => {
          const v = c.value(r);
          const isBest = best[i] !== null && v !== null && Math.abs(v - (best[i] ?? 0)) < 1e-9;
          return `<td class="num${isBest ? ' best' : ''}">${esc(c.text(r))}</td>`;
        })
        .join('');
      return `<tr><th scope="row"><a href="#policy-${ri}"><i class="dot" style="--c:${policyColor(ri)}"></i>${esc(r.summary.policy)}</a></th>${cells}</tr>`;
    })
    .join('');
  // The bound serves all demand and has no behaviour: only its costs are shown.
  const b = result.bound;
  const boundRow =
    `<tr class="bound" title="Clairvoyant lower bound: exact future demand and capacity, the cheapest whole pods at the breaking point each minute, no start-up or scale-down waste">` +
    `<th scope="row">bound</th><td class="num">${esc(formatDollars(b.totalCost))}</td><td class="num">${esc(formatDollars(b.costPerMillion))}</td><td class="num">1.00</td>${'<td></td>'.repeat(cols.length - 3)}</tr>`;
  return `<table class="summary" data-table="comparison"><thead>${head}</thead><tbody>${body}${boundRow}</tbody></table>`;
}

export function scenarioFacts(result: SimulationResult): string {
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
    `<li>${policyCount(result.runs.length)}: ${result.runs.map((r) => `<code>${esc(r.summary.policy)}</code>`).join(', ')}</li></ul></div>` +
    `<div><h3>Services</h3><ul>${services}</ul></div><div><h3>Capacity</h3><ul>${windows}</ul></div></div>`
  );
}

export function eventsList(run: PolicyRun): string {
  const shown = run.events.filter((e) => e.kind !== 'probe').slice(0, 300);
  if (run.events.length === 0) return '<details class="events"><summary>Events (0)</summary><p class="muted">No mode change, shortage, probe or alert in this run.</p></details>';
  const items = shown
    .map((e) => `<li><span class="ev-min">${e.minute}</span><span class="ev-kind ev-${esc(e.kind)}">${esc(e.kind)}</span><span class="ev-svc">${esc(e.service)}</span> ${esc(e.message)}</li>`)
    .join('');
  const more = run.events.length > shown.length ? `<li class="muted">… ${run.events.length - shown.length} more (probes and later events) in the timeline JSON</li>` : '';
  return `<details class="events"><summary>Events (${formatNumber(run.events.length)})</summary><ul>${items}${more}</ul></details>`;
}

export function chips(run: PolicyRun, result: SimulationResult): string {
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
