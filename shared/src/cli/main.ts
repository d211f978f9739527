import { mkdirSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { POLICY_KINDS, type PolicyKind } from '../spec/schema.ts';
import { loadFleetSpec } from '../spec/load.ts';
import { InputValidationError } from '../spec/validation.ts';
import { loadScenario, SEED_SCENARIO_PATH } from '../sim/scenario.ts';
import { simulate } from '../sim/run.ts';
import { formatComparisonTable } from '../report/table.ts';
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
      const started = Date.now();
      const result = await simulate(scenario, { policies, onProgress: progress });
      const outDir = resolve(opts.out);
      writeOutputs(outDir, result);
      if (opts.json) {
        io.out.write(`${JSON.stringify({ scenario: result.scenario.name, policies: result.runs.map((r) => r.summary) })}\n`);
        return;
      }
      io.out.write(`\n${formatComparisonTable(result.runs.map((r) => r.summary), { hadShortage: scenario.file.capacity.length > 0 })}\n`);
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
  return names as PolicyKind[];
}

/** Writes into a temporary folder first, so a failed run leaves the last good output in place. */
function writeOutputs(outDir: string, result: Awaited<ReturnType<typeof simulate>>): void {
  const staging = `${outDir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const run of result.runs) {
    writeFileSync(join(staging, `timeline-${run.summary.policy}.csv`), timelineCsv(run));
    writeFileSync(join(staging, `timeline-${run.summary.policy}.json`), timelineJson(run));
  }
  writeFileSync(join(staging, 'summary.json'), `${JSON.stringify({ scenario: result.scenario.name, policies: result.runs.map((r) => r.summary) }, null, 2)}\n`);
  writeFileSync(join(staging, 'report.html'), renderReport(result, SIMULATOR_ASSUMPTIONS));
  rmSync(outDir, { recursive: true, force: true });
  renameSync(staging, outDir);
}

function bar(fraction: number): string {
  const n = Math.round(Math.min(1, fraction) * 30);
  return `[${'#'.repeat(n)}${'.'.repeat(30 - n)}]`;
}
