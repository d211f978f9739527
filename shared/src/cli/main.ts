import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { POLICY_KINDS, type PolicyKind } from '../spec/schema.ts';
import { loadFleetSpec } from '../spec/load.ts';
import { InputValidationError } from '../spec/validation.ts';
import { loadScenario, SEED_SCENARIO_PATH } from '../sim/scenario.ts';
import { simulate } from '../sim/run.ts';
import { formatComparisonTable } from '../report/table.ts';
import { formatComparison, readSummary } from '../report/compare.ts';
import { renderReport } from '../report/html.ts';
import { timelineCsv, timelineJson } from '../report/timeline.ts';
import { SIMULATOR_ASSUMPTIONS } from '../sim/assumptions.ts';
import { registerControlCommands, RemoteFunctionError, type ControlCommandsDeps } from './control.ts';
import { registerTwinCommand } from '../twin/command.ts';
import { registerRenderCommand } from '../render/command.ts';

/** The `hwai` command line. Returns the exit code; never calls process.exit itself. */
export async function main(
  argv: string[],
  io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream } = { out: process.stdout, err: process.stderr },
  control: ControlCommandsDeps = {},
): Promise<number> {
  const program = new Command('hwai')
    .description('hwai: keep a gen-AI service up and cheap across mixed accelerators')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });

  const spec = program.command('spec').description('work with fleet specs');
  spec
    .command('check')
    .description('validate a fleet spec and report every problem with its path')
    .argument('<file>', 'fleet spec YAML')
    .action((file: string) => {
      const fleet = loadFleetSpec(resolve(file));
      const estimates = fleet.units.filter((u) => u.estimate).length;
      io.out.write(`${file}: ok — ${Object.keys(fleet.services).length} service(s), ${fleet.units.length} unit(s)${estimates ? `, ${estimates} with estimated numbers` : ''}\n`);
    });

  program
    .command('scenario')
    .description('work with simulator scenarios')
    .command('check')
    .description('validate a scenario (and the fleet it names) and report every problem with its path')
    .argument('<file>', 'scenario YAML')
    .action((file: string) => {
      const s = loadScenario(resolve(file));
      const f = s.file;
      io.out.write(
        `${file}: ok — ${f.name}: ${f.durationMinutes} min, service(s) ${Object.keys(f.demand).join(', ')}, ${f.capacity.length} capacity window(s), ` +
          `${s.fleet.units.filter((u) => u.service in f.demand).length} unit(s), metric delay ${f.metricDelaySeconds} s\n`,
      );
    });

  program
    .command('compare')
    .description('print two simulate output folders\' summaries side by side')
    .argument('<a>', 'a folder written by hwai simulate')
    .argument('<b>', 'another one')
    .action((a: string, b: string) => {
      io.out.write(formatComparison(readSummary(resolve(a)), readSummary(resolve(b)), [a, b]));
    });

  program
    .command('simulate')
    .description('run a scenario through the control loop for one or every policy')
    .option('--scenario <file>', 'scenario YAML', SEED_SCENARIO_PATH)
    .option('--policy <name>', `one of ${POLICY_KINDS.join(', ')}, or all`, parsePolicy, 'all')
    .option('--out <dir>', 'folder for the timeline and the report', 'out/simulate')
    .option('--json', 'print one JSON summary object to stdout and nothing else')
    .action(async (opts: { scenario: string; policy: PolicyKind[] | 'all'; out: string; json?: boolean }) => {
      const scenario = loadScenario(resolve(opts.scenario));
      const policies = opts.policy === 'all' ? [...POLICY_KINDS] : opts.policy;
      // Progress goes to stderr: redrawn in place on a terminal, one line per policy otherwise.
      const tty = (io.err as NodeJS.WriteStream).isTTY === true;
      const progress = (policy: string, fraction: number) => {
        if (opts.json || (!tty && fraction < 1)) return;
        io.err.write(`${tty ? '\r' : ''}${scenario.file.name}: ${policy.padEnd(16)} ${bar(fraction)} ${Math.round(fraction * 100)}%${fraction >= 1 ? '\n' : ''}`);
      };
      const outDir = resolve(opts.out);
      claimOutputFolder(outDir); // refuse a folder or file that is not hwai's before simulating
      const started = Date.now();
      const result = await simulate(scenario, { policies, onProgress: progress });
      writeOutputs(outDir, result);
      if (opts.json) {
        io.out.write(`${JSON.stringify(summaryOf(result))}\n`);
        return;
      }
      io.out.write(`\n${formatComparisonTable(result.runs.map((r) => r.summary), { hadShortage: scenario.file.capacity.length > 0, bound: result.bound })}\n`);
      io.out.write(`\nTimeline and report in ${outDir} (report.html) — simulated in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    });

  registerControlCommands(program, io, control);
  registerTwinCommand(program, io);
  registerRenderCommand(program, io);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof InputValidationError) {
      io.err.write(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof RemoteFunctionError) {
      // The function refused the request (2) or failed (1); its message says which and why.
      io.err.write(`error: ${e.errorType}: ${e.message}\n`);
      return e.errorType === 'InputValidationError' || e.errorType === 'RequestIdReusedError' ? 2 : 1;
    }
    io.err.write(`error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

function parsePolicy(value: string): PolicyKind[] | 'all' {
  if (value === 'all') return 'all';
  const names = value.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(POLICY_KINDS as readonly string[]).includes(n)) throw new InvalidArgumentError(`expected one of ${POLICY_KINDS.join(', ')} or all, got "${n}"`);
  }
  // Each named policy runs once, in the order first named.
  return [...new Set(names)] as PolicyKind[];
}

/** The file hwai keeps in an output folder, listing what it wrote there (and so may replace). */
export const OUTPUT_MARKER = '.hwai-output.json';

/**
 * Writes the run's files into `outDir`, replacing only what hwai wrote there before: a folder
 * holding anything else is refused, and so is a file, so `--out .` or `--out notes.txt` never
 * deletes a user's work. Each file is written beside its target and renamed over it.
 */
function writeOutputs(outDir: string, result: Awaited<ReturnType<typeof simulate>>): void {
  const files: Record<string, string> = {};
  for (const run of result.runs) {
    files[`timeline-${run.summary.policy}.csv`] = timelineCsv(run);
    files[`timeline-${run.summary.policy}.json`] = timelineJson(run);
  }
  files['summary.json'] = `${JSON.stringify(summaryOf(result), null, 2)}\n`;
  files['summary.csv'] = summaryCsv(result);
  files['report.html'] = renderReport(result, SIMULATOR_ASSUMPTIONS);
  const ours = claimOutputFolder(outDir);
  for (const name of ours) if (!(name in files)) rmSync(join(outDir, name), { force: true });
  for (const [name, text] of Object.entries(files)) {
    const tmp = join(outDir, `.${name}.tmp-${process.pid}`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(outDir, name));
  }
  writeFileSync(join(outDir, OUTPUT_MARKER), `${JSON.stringify({ writtenBy: 'hwai simulate', files: Object.keys(files) }, null, 2)}\n`);
}

/** Makes `outDir` ready for hwai's files; returns the files hwai wrote there before. */
function claimOutputFolder(outDir: string): string[] {
  if (!existsSync(outDir)) {
    mkdirSync(outDir, { recursive: true });
    return [];
  }
  if (!statSync(outDir).isDirectory()) throw new InputValidationError('--out', [{ path: outDir, message: 'is a file; expected a folder (hwai never replaces a file)' }]);
  let ours: string[] = [];
  const entries = readdirSync(outDir);
  try {
    const marker = JSON.parse(readFileSync(join(outDir, OUTPUT_MARKER), 'utf8')) as { files?: unknown };
    if (Array.isArray(marker.files)) ours = marker.files.filter((f): f is string => typeof f === 'string' && !f.includes('/') && !f.includes('\\'));
  } catch {
    // No list: a folder an earlier hwai wrote (before it kept one) is still recognised, by
    // nothing in it but hwai's file names and a report hwai generated.
    if (entries.length > 0 && entries.every((f) => LEGACY_OUTPUT.test(f)) && isHwaiReport(join(outDir, 'report.html'))) ours = entries;
  }
  const foreign = entries.filter((f) => f !== OUTPUT_MARKER && !ours.includes(f));
  if (foreign.length > 0) {
    throw new InputValidationError('--out', [
      { path: outDir, message: `holds files hwai did not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? `, … ${foreign.length - 3} more` : ''}); expected a new or empty folder, or one of hwai's own output folders` },
    ]);
  }
  return ours;
}

/** The files `hwai simulate` wrote before it kept a list of them. */
const LEGACY_OUTPUT = /^(report\.html|summary\.json|timeline-[a-z0-9-]+\.(csv|json))$/;

function isHwaiReport(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').includes("<footer>Generated by hwai's simulator.");
  } catch {
    return false;
  }
}

function summaryOf(result: Awaited<ReturnType<typeof simulate>>) {
  return { scenario: result.scenario.name, policies: result.runs.map((r) => r.summary), bound: result.bound };
}

/** One row per policy and one for the bound: the totals of the table. */
function summaryCsv(result: Awaited<ReturnType<typeof simulate>>): string {
  const header = 'policy,totalCost,costPerMillion,ratioToBound,servedRequests,failedRequests,minutesOverSlo,modeSwitches,minutesToShift';
  const ratio = (c: number) => (result.bound.costPerMillion > 0 ? (c / result.bound.costPerMillion).toFixed(3) : '');
  const rows = result.runs.map(({ summary: s }) =>
    [s.policy, s.totalCost, s.costPerMillion, ratio(s.costPerMillion), s.servedRequests, s.failedRequests, s.minutesOverSlo, s.modeSwitches, s.minutesToShift ?? ''].join(','),
  );
  rows.push(['bound', result.bound.totalCost, result.bound.costPerMillion, '1.000', '', '', '', '', ''].join(','));
  return `${[header, ...rows].join('\n')}\n`;
}

function bar(fraction: number): string {
  const n = Math.round(Math.min(1, fraction) * 30);
  return `[${'#'.repeat(n)}${'.'.repeat(30 - n)}]`;
}
