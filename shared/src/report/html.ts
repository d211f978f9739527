import type { PolicyRun, SimulationResult } from '../sim/types.ts';
import { CHART_KINDS, type ChartContext, renderCharts } from './charts.ts';
import { CLIENT_SCRIPT } from './client-script.ts';
import { esc, formatNumber } from './format.ts';
import { policyColor } from './palette.ts';
import { hoverData, serviceNames, seriesOf, unitNames } from './series.ts';
import { CSS, DEFS } from './styles.ts';
import { chips, comparisonTable, eventsList, policyCount, scenarioFacts } from './summary.ts';

/**
 * The simulator's HTML report: one self-contained page (inline CSS, inline SVG, a little inline
 * JS for the hover read-out; nothing fetched). A comparison table of the policies at the top,
 * the assumptions, then one section per policy with the seed's figures 10 and 11 as that policy
 * draws them, all charts on one time axis in minutes with the shortage windows shaded.
 *
 * Every chart is an <svg data-chart="<policy>/<kind>" data-service="<service>">.
 */

export { CHART_KINDS };
export type { ChartKind } from './charts.ts';

/** Most points a line gets; longer runs are drawn from buckets of whole minutes. */
const MAX_POINTS = 600;

/** What every service block of every policy section draws on: the run's common time axis. */
interface Layout {
  result: SimulationResult;
  services: string[];
  duration: number;
  bucketMinutes: number;
}

/** One service's charts under one policy, with the hover read-out's data. */
function serviceBlock(layout: Layout, run: PolicyRun, ri: number, service: string): string {
  const { result, services, duration, bucketMinutes } = layout;
  const heading = services.length > 1 ? `<h3 class="svc">${esc(service)}</h3>` : '';
  const series = seriesOf(run, service, unitNames(result, service), bucketMinutes);
  if (series.rows.length === 0) {
    return `<div class="svc-block">${heading}<p class="muted">No timeline rows for this service.</p></div>`;
  }
  const everyRun = result.runs.map((other) => ({ policy: other.summary.policy, buckets: other === run ? series.buckets : seriesOf(other, service, [], bucketMinutes).buckets }));
  const allCosts = everyRun.map(({ policy, buckets }) => ({ policy, xs: buckets.map((b) => b.x), ys: buckets.map((b) => b.cumulativeCost) }));
  const everyBucket = everyRun.flatMap((r) => r.buckets);
  const ctx: ChartContext = {
    policy: run.summary.policy,
    policyIndex: ri,
    series,
    duration,
    slo: result.scenario.services[service]?.sloSeconds ?? 0,
    capacity: result.scenario.capacity,
    allCosts,
    modeChanges: run.events.filter((e) => e.kind === 'mode-changed' && e.service === service).map((e) => e.minute),
    failedMax: Math.max(0, ...everyBucket.map((b) => b.failed)),
    latencyMax: Math.max(0, ...everyBucket.map((b) => (Number.isFinite(b.p99) ? b.p99 : 0))),
  };
  return (
    `<div class="svc-block" data-service="${esc(service)}">${heading}` +
    `<script type="application/json" class="hover-data">${hoverData(series, ctx.slo, duration)}</script>${renderCharts(ctx)}</div>`
  );
}

function policySection(layout: Layout, run: PolicyRun, ri: number): string {
  const policy = run.summary.policy;
  const blocks = layout.services.map((service) => serviceBlock(layout, run, ri, service)).join('');
  return (
    `<section class="card policy" id="policy-${ri}" data-policy="${esc(policy)}"><div class="policy-head"><h2><i class="dot" style="--c:${policyColor(ri)}"></i>${esc(policy)}</h2>${chips(run, layout.result)}</div>` +
    `${blocks}${eventsList(run)}</section>`
  );
}

/**
 * The whole report as one HTML page. `notes` are the assumptions, shown as given (escaped).
 */
export function renderReport(result: SimulationResult, notes: string[] = []): string {
  const sc = result.scenario;
  const lastMinute = Math.max(0, ...result.runs.flatMap((r) => r.timeline.map((row) => row.minute + 1)));
  const duration = Math.max(1, sc.durationMinutes, lastMinute);
  const bucketMinutes = Math.max(1, Math.ceil(duration / MAX_POINTS));
  const layout: Layout = { result, services: serviceNames(result), duration, bucketMinutes };
  const sections = result.runs.map((run, ri) => policySection(layout, run, ri)).join('\n');

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
<header class="top"><h1>hwai simulation — ${esc(sc.name)}</h1><div class="sub">${formatNumber(sc.durationMinutes)} minutes · ${policyCount(result.runs.length)} · time axis in minutes since the start · hover a chart for the numbers</div></header>
<nav>${nav}</nav>
<main>
<section class="card" id="summary"><h2>Policies compared</h2>${comparisonTable(result)}${scenarioFacts(result)}</section>
<section class="card" id="assumptions"><h2>Assumptions</h2>${notesHtml}<p class="muted">${esc(bucketNote)}</p></section>
${sections}
<footer>Generated by hwai's simulator. Shaded: capacity shortage windows of the scenario.</footer>
</main>
<div id="tip" role="status"></div>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}
