import { initialServiceState } from '../core/state.ts';
import type { ControllerState, Mode, Override, OverrideProgress, ServiceDecision } from '../core/types.ts';
import type { FleetSpec } from '../spec/schema.ts';
import { withHistory, type AuditedServiceState, type HistoryEntry } from './override.ts';

/**
 * What `hwai status` shows of a service: its mode and since when, the override and how far it
 * is applied, the last decision that changed something and its reasons, and per unit the
 * weight and floor. Read from the stored state only, so the override function needs no access
 * to the ALB or the cluster.
 */

/** The last decision that changed the fleet or the state, as the controller records it. */
export interface LastDecision {
  at: number;
  policy: string;
  mode: Mode;
  weights: Record<string, number>;
  /** KEDA minReplicas decided per unit. */
  floors: Record<string, number>;
  reasons: string[];
  override: OverrideProgress | null;
}

/** ServiceState with the controller's record of its last decision (see recordLastDecisions). */
export type RecordedServiceState = AuditedServiceState & { lastDecision?: LastDecision };

export interface UnitStatus {
  unit: string;
  family: string;
  weight: number | null;
  floor: number | null;
}

export interface ServiceStatus {
  service: string;
  mode: Mode;
  since: string | null;
  override: (Override & { untilIso: string; remainingMinutes: number }) | null;
  progress: OverrideProgress | null;
  lastDecision: (Omit<LastDecision, 'at'> & { at: string }) | null;
  units: UnitStatus[];
  history: HistoryEntry[];
}

export function lastDecisionOf(decision: ServiceDecision, policy: string, at: number): LastDecision {
  return {
    at,
    policy,
    mode: decision.mode,
    weights: decision.weights,
    floors: Object.fromEntries(Object.entries(decision.scaling).map(([u, s]) => [u, s.minReplicas])),
    reasons: decision.reasons,
    override: decision.override,
  };
}

/**
 * The state with each decided service's last decision in it, and an override's expiry (which the
 * tick found and alerted) in its history. Services not decided keep what they had.
 */
export function withLastDecisions(state: ControllerState, decisions: ReadonlyArray<ServiceDecision>, policy: string, at: number): ControllerState {
  const services = { ...state.services };
  for (const d of decisions) {
    let current: RecordedServiceState | undefined = services[d.service];
    if (!current) continue;
    current = { ...current, lastDecision: lastDecisionOf(d, policy, at) };
    // The override function clears without a tick in between, so an override that ends in a
    // tick has expired (or no longer names a unit of the service); the alert says which.
    for (const alert of d.alerts.filter((a) => a.kind === 'override-ended')) {
      current = withHistory(current, { at, event: 'override-expired', by: 'hwai', detail: alert.message });
    }
    services[d.service] = current;
  }
  return { ...state, services };
}

export function serviceStatus(spec: FleetSpec, state: ControllerState, service: string, now: number, historyEntries = 5): ServiceStatus {
  const s: RecordedServiceState = state.services[service] ?? initialServiceState();
  const active = s.override && s.override.until > now ? s.override : null;
  const last = s.lastDecision ?? null;
  const weights = last?.weights ?? s.lastGoodWeights ?? {};
  const floors = last?.floors ?? s.floors ?? {};
  return {
    service,
    mode: active ? 'override' : s.mode,
    since: active ? new Date(active.startedAt).toISOString() : s.since > 0 ? new Date(s.since).toISOString() : null,
    override: active ? { ...active, untilIso: new Date(active.until).toISOString(), remainingMinutes: Math.ceil((active.until - now) / 60_000) } : null,
    // Progress belongs to the override it was measured for.
    progress: active && last?.override && last.at >= active.startedAt ? last.override : null,
    lastDecision: last ? { ...last, at: new Date(last.at).toISOString() } : null,
    units: spec.units
      .filter((u) => u.service === service)
      .map((u) => ({ unit: u.name, family: u.family, weight: weights[u.name] ?? null, floor: floors[u.name] ?? null })),
    history: (s.history ?? []).slice(-historyEntries),
  };
}

export function fleetStatus(spec: FleetSpec, state: ControllerState, now: number, service?: string): ServiceStatus[] {
  const services = service ? [service] : Object.keys(spec.services).sort();
  return services.map((name) => serviceStatus(spec, state, name, now));
}
