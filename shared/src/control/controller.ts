import { combineSignals } from '../adapters/signals.ts';
import type { PoolSignal } from '../core/types.ts';
import type { Ports } from '../reconcile/ports.ts';
import { runTick, type TickResult } from '../reconcile/tick.ts';
import type { FleetSpec, PolicyKind } from '../spec/schema.ts';
import { familyOf, parseControllerEvent, poolSignalOf, servicesOfFamily, type ControllerEvent } from './events.ts';
import type { InstanceTypeLookup } from '../adapters/aws/ec2-instance-types.ts';
import { withLastDecisions } from './status.ts';

/**
 * One controller invoke: validate the event, turn a capacity event into a pool signal, run one
 * tick (dry-run when configured), and record the decision for `hwai status`. The Lambda handler
 * adds only logging, metrics and the deadline.
 */

export interface ControllerDeps {
  spec: FleetSpec;
  ports: Ports;
  instanceTypes: InstanceTypeLookup;
  dryRun: boolean;
  policy?: PolicyKind;
  log: Log;
  /** Who takes the tick's lease (the Lambda request id); random when absent. */
  holder?: string;
}

export interface Log {
  info(message: string, extra: Record<string, unknown>): void;
  warn(message: string, extra: Record<string, unknown>): void;
}

export interface ControllerAnswer {
  trigger: string;
  outcome: TickResult['outcome'];
  services: Array<{ service: string; mode: string; weights: Record<string, number> }>;
  applied: TickResult['applied'];
  signal: PoolSignal | null;
  errors: TickResult['errors'];
  alerts: string[];
}

export async function handleControllerEvent(deps: ControllerDeps, input: unknown, signal?: AbortSignal): Promise<{ answer: ControllerAnswer; result: TickResult }> {
  const event = parseControllerEvent(input, deps.spec);
  const call = signal ? { signal } : {};
  const { services, poolSignal, trigger } = await tickScope(deps, event, call);
  const ports = poolSignal ? { ...deps.ports, signals: combineSignals(deps.ports.signals, { readSignals: async () => [poolSignal] }) } : deps.ports;
  const result = await runTick(deps.spec, ports, {
    ...(deps.policy ? { policy: deps.policy } : {}),
    ...(signal ? { signal } : {}),
    ...(services ? { services } : {}),
    ...(deps.holder ? { holder: deps.holder } : {}),
    dryRun: deps.dryRun,
  });
  // Only over the state this tick wrote: a tick that lost the conditional write records nothing.
  if (result.outcome === 'applied' && result.recorded) await recordLastDecisions(deps, result, call);
  const answer: ControllerAnswer = {
    trigger,
    outcome: result.outcome,
    services: result.decision.services.map((d) => ({ service: d.service, mode: d.mode, weights: d.weights })),
    applied: result.applied,
    signal: poolSignal,
    errors: result.errors,
    alerts: result.alerts.map((a) => `[${a.kind}] ${a.message}`),
  };
  deps.log.info('tick', { ...answer, reasons: Object.fromEntries(result.decision.services.map((d) => [d.service, d.reasons])), plan: result.plan });
  return { answer, result };
}

async function tickScope(deps: ControllerDeps, event: ControllerEvent, call: { signal?: AbortSignal }): Promise<{ services: string[] | null; poolSignal: PoolSignal | null; trigger: string }> {
  if (event.kind === 'scheduled-tick') return { services: event.services, poolSignal: null, trigger: 'scheduled-tick' };
  const notice = event.notice;
  let instanceType: string | null = null;
  try {
    instanceType = await deps.instanceTypes.instanceTypeOf(notice.subject, call);
  } catch (e) {
    // The tick still runs on everything: it reads Karpenter's and EC2's own signals.
    deps.log.warn('capacity event: instance type unknown, ticking every service', { notice, error: (e as Error).message });
  }
  const poolSignal = poolSignalOf(notice, instanceType, deps.spec);
  return { services: servicesOfFamily(deps.spec, instanceType ? familyOf(instanceType) : null), poolSignal, trigger: `${notice.detailType}: ${notice.detail}` };
}

/**
 * Keeps the decision that was just applied, with its reasons and override progress, in the state
 * `hwai status` reads. A second, conditional write, made only by a tick that already wrote: a
 * steady tick still writes nothing. Losing it to a concurrent writer costs only the record.
 */
async function recordLastDecisions(deps: ControllerDeps, result: TickResult, call: { signal?: AbortSignal }): Promise<void> {
  try {
    const stored = await deps.ports.store.load(call);
    const next = withLastDecisions(stored.state, result.decision.services, result.decision.policy, result.decision.at);
    if (!(await deps.ports.store.save({ ...next, version: next.version + 1 }, stored.version, call))) {
      deps.log.warn('last decision not recorded: the state moved', {});
    }
  } catch (e) {
    deps.log.warn('last decision not recorded', { error: (e as Error).message });
  }
}
