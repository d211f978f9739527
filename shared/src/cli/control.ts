import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Context } from 'aws-lambda';
import type { OverrideAnswer } from '../control/override-service.ts';
import type { ServiceStatus } from '../control/status.ts';
import type { UnitScaling } from '../core/types.ts';
import type { TickResult } from '../reconcile/tick.ts';
import { InputValidationError } from '../spec/validation.ts';

/**
 * The operator's commands: `override` and `status` invoke the override Lambda (or run it
 * in-process with --local), `plan` shows what a tick would change without writing, `invoke`
 * runs either handler in-process on an event file (the local harness, or a real account).
 * Heavy modules (the SDK, the adapters) are loaded when a command runs, not when `hwai` starts.
 */

export interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** Sends an override payload somewhere and returns the answer: Lambda Invoke, or in-process. */
export type OverrideTransport = (payload: unknown) => Promise<OverrideAnswer>;

interface TargetOptions {
  function: string;
  region?: string;
  profile?: string;
  local?: boolean;
  json?: boolean;
}

/** The override function answered with an error (FunctionError): its type and message. */
export class RemoteFunctionError extends Error {
  override readonly name = 'RemoteFunctionError';
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
  }
}

function lambdaContext(): Context {
  const id = randomUUID();
  const deadline = Date.now() + 60_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'hwai-local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:hwai-local',
    memoryLimitInMB: '512',
    awsRequestId: id,
    logGroupName: 'local',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The handlers built from this process's environment, exactly as a cold start builds them. */
export async function localHandler(fn: 'controller' | 'override'): Promise<(event: unknown) => Promise<unknown>> {
  if (fn === 'controller') {
    const [{ controllerConfig }, { controllerRuntime }, { controllerHandler }] = await Promise.all([
      import('../control/config.ts'),
      import('../control/runtime.ts'),
      import('../control/controller-lambda.ts'),
    ]);
    const handler = controllerHandler(controllerRuntime(controllerConfig()));
    return (event) => handler(event, lambdaContext());
  }
  const [{ overrideConfig }, { overrideRuntime }, { overrideHandler }] = await Promise.all([
    import('../control/config.ts'),
    import('../control/override-runtime.ts'),
    import('../control/override-lambda.ts'),
  ]);
  const handler = overrideHandler(overrideRuntime(overrideConfig()));
  return (event) => handler(event, lambdaContext());
}

async function lambdaTransport(options: TargetOptions): Promise<OverrideTransport> {
  const { InvokeCommand, LambdaClient } = await import('@aws-sdk/client-lambda');
  const client = new LambdaClient({ ...(options.region ? { region: options.region } : {}), ...(options.profile ? { profile: options.profile } : {}) });
  return async (payload) => {
    const out = await client.send(new InvokeCommand({ FunctionName: options.function, Payload: Buffer.from(JSON.stringify(payload)) }));
    const body = out.Payload ? JSON.parse(Buffer.from(out.Payload).toString('utf8')) : null;
    if (out.FunctionError) {
      const e = body as { errorType?: string; errorMessage?: string } | null;
      throw new RemoteFunctionError(e?.errorType ?? out.FunctionError, e?.errorMessage ?? 'the override function failed');
    }
    return body as OverrideAnswer;
  };
}

export interface ControlCommandsDeps {
  /** Tests replace how the override function is reached. */
  transport?: (options: TargetOptions) => Promise<OverrideTransport>;
}

export function registerControlCommands(program: Command, io: Io, deps: ControlCommandsDeps = {}): void {
  const transportFor = (o: TargetOptions) => (deps.transport ? deps.transport(o) : o.local ? localHandler('override').then((h) => h as OverrideTransport) : lambdaTransport(o));
  const target = (c: Command) =>
    c
      .option('--function <name>', 'the override Lambda function (name or ARN)', 'hwai-override')
      .option('--region <region>', 'AWS region (default: the SDK’s, e.g. AWS_REGION)')
      .option('--profile <profile>', 'AWS profile from the shared config files')
      .option('--local', 'run the override handler in this process, configured by HWAI_* variables (the local harness)')
      .option('--json', 'print the function’s answer as JSON');
  const who = (c: Command) =>
    c
      .requiredOption('--service <name>', 'the service, e.g. sd21')
      .requiredOption('--reason <text>', 'why (goes into the alert and the audit)')
      .option('--by <who>', 'who asks', `${safeUser()}@${hostname()}`)
      .option('--request-id <id>', 'reuse to retry safely (default: a new id, printed)');

  const override = program.command('override').description('force a mode or weights for a while, or end an override (invokes the override function)');
  who(target(override.command('set-mode').description('force cost or capacity mode')))
    .addOption(new Option('--mode <mode>', 'the mode to force').choices(['cost', 'capacity']).makeOptionMandatory())
    .requiredOption('--minutes <n>', 'how long (1–1440)', parseInteger)
    .action(async (o) => send(io, await transportFor(o), { action: 'set-mode', ...common(o), mode: o.mode, durationMinutes: o.minutes }, o));
  who(target(override.command('pin').description('pin weights per unit (floors first, weights follow ready pods; --force at once)')))
    .requiredOption('--weight <unit=weight>', 'a unit’s forward weight 0–999, repeated per unit (units left out get 0)', collectWeight)
    .requiredOption('--minutes <n>', 'how long (1–1440)', parseInteger)
    .option('--force', 'apply the weights at once instead of as pods become ready')
    .action(async (o) => send(io, await transportFor(o), { action: 'pin', ...common(o), weights: o.weight, durationMinutes: o.minutes, ...(o.force ? { force: true } : {}) }, o));
  who(target(override.command('clear').description('end the override; automatic control resumes')))
    .action(async (o) => send(io, await transportFor(o), { action: 'clear', ...common(o) }, o));

  target(program.command('status').description('mode, override and its progress, last decision and its reasons, weights and floors per unit'))
    .option('--service <name>', 'one service (default: all)')
    .action(async (o) => send(io, await transportFor(o), { action: 'status', ...(o.service ? { service: o.service } : {}) }, o));

  program
    .command('plan')
    .description('observe and decide against the environment (HWAI_* variables, as the controller has them) and print what a tick would change; writes nothing')
    .option('--services <names>', 'only these services, comma-separated')
    .option('--json', 'print the plan and the decision as JSON')
    .action(async (o: { services?: string; json?: boolean }) => {
      const [{ controllerConfig }, { controllerRuntime }, { runTick }] = await Promise.all([
        import('../control/config.ts'),
        import('../control/runtime.ts'),
        import('../reconcile/tick.ts'),
      ]);
      const runtime = controllerRuntime(controllerConfig());
      const services = o.services?.split(',').map((s) => s.trim()).filter(Boolean);
      const result = await runTick(runtime.spec, runtime.ports, { dryRun: true, ...(runtime.policy ? { policy: runtime.policy } : {}), ...(services ? { services } : {}) });
      io.out.write(o.json ? `${JSON.stringify({ plan: result.plan, decision: result.decision.services, errors: result.errors })}\n` : formatPlan(result));
    });

  program
    .command('invoke')
    .description('run a handler in this process on an event file, configured by HWAI_* variables (the local harness, or an account)')
    .addArgument(new Command().createArgument('<function>', 'controller or override').choices(['controller', 'override']))
    .requiredOption('--event <file>', 'the event JSON (see events/)')
    .action(async (fn: 'controller' | 'override', o: { event: string }) => {
      const event = readJson(o.event);
      const handler = await localHandler(fn);
      io.out.write(`${JSON.stringify(await handler(event), null, 2)}\n`);
    });
}

function common(o: { service: string; reason: string; by: string; requestId?: string }) {
  return { service: o.service, reason: o.reason, by: o.by, requestId: o.requestId ?? `hwai-${randomUUID()}` };
}

async function send(io: Io, transport: OverrideTransport, payload: Record<string, unknown>, o: TargetOptions): Promise<void> {
  const answer = await transport(payload);
  if (o.json) {
    io.out.write(`${JSON.stringify(answer, null, 2)}\n`);
    return;
  }
  if (answer.action === 'status') {
    io.out.write(answer.services.map(formatStatus).join('\n'));
    return;
  }
  const what = answer.replayed ? `${answer.outcome} (already done by request ${answer.requestId}; nothing repeated)` : answer.outcome;
  io.out.write(`${answer.service}: ${what}${answer.dryRun ? ' [dry run: nothing written]' : ''}\n`);
  io.out.write(`request id: ${answer.requestId} (reuse it to retry safely)\n`);
  if (!answer.alerted && !answer.replayed && !answer.dryRun && answer.outcome !== 'nothing-to-clear') io.out.write('warning: applied, but the SNS alert could not be sent\n');
  io.out.write(formatStatus(answer.status));
}

export function formatStatus(s: ServiceStatus): string {
  const lines = [`${s.service}: mode ${s.mode}${s.since ? ` since ${s.since}` : ''}`];
  if (s.override) {
    const target = s.override.mode ? `mode ${s.override.mode}` : `weights ${Object.entries(s.override.weights ?? {}).map(([u, w]) => `${u}=${w}`).join(' ')}${s.override.force ? ' (force)' : ''}`;
    lines.push(`  override ${s.override.id} by ${s.override.by} until ${s.override.untilIso} (${s.override.remainingMinutes} min left): ${target} — ${s.override.reason}`);
  }
  if (s.progress) {
    lines.push(`  progress ${Math.round(s.progress.fraction * 100)}% of the target routed${s.progress.waitingFor.length ? `; waiting for ${s.progress.waitingFor.join(', ')}` : ''}`);
  }
  if (s.lastDecision) {
    lines.push(`  last decision ${s.lastDecision.at} (${s.lastDecision.policy}, mode ${s.lastDecision.mode}):`);
    for (const r of s.lastDecision.reasons) lines.push(`    - ${r}`);
  }
  lines.push(`  ${'unit'.padEnd(24)} ${'family'.padEnd(6)} ${'weight'.padStart(6)} ${'floor'.padStart(5)}`);
  for (const u of s.units) lines.push(`  ${u.unit.padEnd(24)} ${u.family.padEnd(6)} ${String(u.weight ?? '-').padStart(6)} ${String(u.floor ?? '-').padStart(5)}`);
  if (s.history.length > 0) {
    lines.push('  history:');
    for (const h of s.history) lines.push(`    ${new Date(h.at).toISOString()} ${h.event} by ${h.by}: ${h.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

export function formatPlan(result: Pick<TickResult, 'plan' | 'decision' | 'errors'>): string {
  const lines: string[] = [];
  const scaling = (x: UnitScaling | null) => (x ? `min ${x.minReplicas} max ${x.maxReplicas} target ${x.targetRpm}` : 'unknown');
  for (const d of result.decision.services) {
    lines.push(`${d.service}: mode ${d.mode}`);
    const change = result.plan.weights.find((w) => w.service === d.service);
    for (const [unit, to] of Object.entries(d.weights)) {
      const from = change ? (change.from?.[unit] ?? '?') : to;
      lines.push(`  weight  ${unit.padEnd(24)} ${String(from).padStart(4)}${change && from !== to ? ` → ${to}` : ''}`);
    }
    for (const c of result.plan.scaling.filter((c) => c.unit in d.scaling)) lines.push(`  scaling ${c.unit.padEnd(24)} ${scaling(c.from)} → ${scaling(c.to)}`);
    for (const r of d.reasons) lines.push(`  - ${r}`);
  }
  const changes = result.plan.weights.length + result.plan.scaling.length;
  lines.push(changes === 0 ? 'nothing to change' : `${changes} change(s) a tick would apply; nothing was written`);
  for (const e of result.errors) lines.push(`error (${e.step}) ${e.target}: ${e.message}`);
  return `${lines.join('\n')}\n`;
}

function readJson(file: string): unknown {
  const path = resolve(file);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputValidationError(path, [{ path: '(root)', message: `not a JSON file: ${(e as Error).message}` }]);
  }
}

function parseInteger(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`expected a whole number, got "${value}"`);
  return Number(value);
}

function collectWeight(value: string, previous: Record<string, number> | undefined): Record<string, number> {
  const match = /^([^=]+)=(\d+)$/.exec(value);
  if (!match) throw new InvalidArgumentError(`expected unit=weight (e.g. sd21-trn1-neuron=100), got "${value}"`);
  return { ...previous, [match[1]!]: Number(match[2]) };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
