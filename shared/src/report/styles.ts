/**
 * The report page's stylesheet and the SVG patterns its charts fill with (hatching for
 * shortage windows, failed requests and pending pods).
 */
import { FAILED, PENDING } from './palette.ts';

export const CSS = `
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
table.summary tr.bound th,table.summary tr.bound td{color:var(--muted);font-style:italic;font-weight:400}
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

export const DEFS = `<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
<pattern id="hatch-shortage" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#d62728" fill-opacity="0.05"/><line x1="0" y1="0" x2="0" y2="8" stroke="#d62728" stroke-opacity="0.16" stroke-width="3"/></pattern>
<pattern id="hatch-failed" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="5" height="5" fill="#fbe3e3"/><line x1="0" y1="0" x2="0" y2="5" stroke="${FAILED}" stroke-width="2.4"/></pattern>
<pattern id="hatch-pending" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="5" height="5" fill="#fbe9e9"/><line x1="0" y1="0" x2="0" y2="5" stroke="${PENDING}" stroke-width="1.6"/></pattern>
</defs></svg>`;
