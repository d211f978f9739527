import type { Clock, Notifier, StateStore } from '../reconcile/ports.ts';
import type { FleetSpec } from '../spec/schema.ts';
import { applyOverrideCommand, parseOverrideRequest, type OverrideOutcomeKind, type OverrideRequest } from './override.ts';
import { fleetStatus, serviceStatus, type ServiceStatus } from './status.ts';

/**
 * One override invoke: validate, then load → apply → conditional save → alert. A save that
 * loses to a tick that wrote in between is retried on the fresh state; the request id keeps a
 * retried invoke from applying twice.
 */

export interface OverrideDeps {
  spec: FleetSpec;
  store: StateStore;
  notifier: Notifier;
  clock: Clock;
  /** Decide and answer, write nothing and alert nobody. */
  dryRun: boolean;
}

export type OverrideAnswer =
  | { action: 'status'; services: ServiceStatus[] }
  | {
      action: Exclude<OverrideRequest['action'], 'status'>;
      service: string;
      requestId: string;
      outcome: OverrideOutcomeKind;
      /** True when this request id had been applied before: nothing was done again. */
      replayed: boolean;
      dryRun: boolean;
      /** False when the override is saved but its SNS alert failed (say so to the operator). */
      alerted: boolean;
      status: ServiceStatus;
    };

export class StateContendedError extends Error {
  override readonly name = 'StateContendedError';
}

const SAVE_ATTEMPTS = 3;

export async function handleOverride(deps: OverrideDeps, input: unknown, signal?: AbortSignal): Promise<OverrideAnswer> {
  const request = parseOverrideRequest(input, deps.spec);
  const call = signal ? { signal } : {};
  if (request.action === 'status') {
    const { state } = await deps.store.load(call);
    return { action: 'status', services: fleetStatus(deps.spec, state, deps.clock.now(), request.service) };
  }
  for (let attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
    const stored = await deps.store.load(call);
    const now = deps.clock.now();
    const outcome = applyOverrideCommand(deps.spec, stored.state, request, now);
    const answer = (alerted: boolean) => ({
      action: request.action,
      service: request.service,
      requestId: request.requestId,
      outcome: outcome.outcome,
      replayed: outcome.replayed,
      dryRun: deps.dryRun,
      alerted,
      status: serviceStatus(deps.spec, outcome.state, request.service, now),
    });
    if (!outcome.changed || deps.dryRun) return answer(false);
    if (!(await deps.store.save({ ...outcome.state, version: stored.state.version + 1 }, stored.version, call))) continue;
    try {
      await deps.notifier.notify(outcome.alerts, call);
      return answer(true);
    } catch {
      // The override is in force; a retry would be a replay and alert nobody, so say it here.
      return answer(false);
    }
  }
  throw new StateContendedError(`the state changed under ${SAVE_ATTEMPTS} attempts to save the ${request.action} of ${request.service}; retry with the same requestId`);
}
