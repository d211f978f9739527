import { resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { startHarness } from '../../../test/harness/global-setup.ts';
import { loadScenario } from '../sim/scenario.ts';
import { POLICY_KINDS, type PolicyKind } from '../spec/schema.ts';
import { formatAgreement } from './agreement.ts';
import { runTwin, TWIN_SCENARIO_PATH } from './twin.ts';

/**
 * `hwai twin [--scenario FILE] [--ticks N] [--policy NAME]`: starts the local harness (moto,
 * etcd + kube-apiserver, the fault injector; built on first use), runs the scenario through the
 * twin and in-process, prints progress on stderr and the agreement on stdout, and stops the
 * harness. Exits 1 when a tick differs.
 */

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

const PROGRESS_EVERY = 10;

export function registerTwinCommand(program: Command, io: Io): void {
  program
    .command('twin')
    .description('run a scenario with the simulated world on a local harness (moto, kube-apiserver) and the real controller handler, and compare every tick with the in-process run')
    .option('--scenario <file>', 'scenario YAML', TWIN_SCENARIO_PATH)
    .option('--ticks <n>', 'stop after N ticks, warm-up included (default: the whole scenario)', positiveInteger)
    .addOption(new Option('--policy <name>', 'policy (default: the fleet spec’s)').choices(POLICY_KINDS))
    .action(async (opts: { scenario: string; ticks?: number; policy?: PolicyKind }, command: Command) => {
      const scenario = loadScenario(resolve(opts.scenario));
      const harness = await startHarness();
      try {
        const result = await runTwin({
          scenario,
          endpoints: harness.context,
          log: (line) => io.err.write(`[twin] ${line}\n`),
          ...(opts.policy ? { policy: opts.policy } : {}),
          ...(opts.ticks !== undefined ? { maxTicks: opts.ticks } : {}),
          onTick: ({ done, total, equal, record }) => {
            if (done % PROGRESS_EVERY !== 0 && done !== total) return;
            const modes = record.services.map((s) => `${s.service} ${s.mode}`).join(', ');
            io.err.write(`[twin] tick ${done}/${total} (minute ${record.second / 60}): ${modes}; ${equal}/${done} equal to the in-process run\n`);
          },
        });
        io.out.write(`${scenario.file.name}, policy ${result.policy}\n${formatAgreement(result.agreement)}\n`);
        io.out.write(`${result.twin.length} ticks through the controller handler in ${result.seconds.toFixed(1)} s: ${result.secondsPerTick.toFixed(3)} s per tick\n`);
        for (const { second, family } of result.interruptionTicks) io.out.write(`tick at minute ${second / 60}: EC2's interruption event for ${family} (the world took nodes away)\n`);
        for (const { second, errors } of result.tickErrors) io.out.write(`tick at minute ${second / 60}: ${errors.map((e) => `${e.step} ${e.target}: ${e.message}`).join('; ')}\n`);
        if (result.agreement.equal !== result.agreement.compared || result.agreement.unmatched > 0) {
          command.error('the twin and the in-process run decided differently', { exitCode: 1 });
        }
      } finally {
        await harness.stop();
      }
    });
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number of ticks >= 1, got "${value}"`);
  return n;
}
