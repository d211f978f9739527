import { createHash } from 'node:crypto';
import { z } from 'zod';
import { initialServiceState } from '../core/state.ts';
import type { Alert, ControllerState, Override, ServiceState } from '../core/types.ts';
import type { FleetSpec } from '../spec/schema.ts';
import { InputValidationError, validate, type InputProblem } from '../spec/validation.ts';

/**
 * The operator's override, as pure functions over the controller state: payloads validated
 * against the fleet, applied at most once per request id, audited in the service's history.
 * The override function (functions/override) only loads, calls these, saves and alerts.
 */

export const MAX_OVERRIDE_MINUTES = 24 * 60;
export const MAX_FORWARD_WEIGHT = 999;
/** Audit entries kept per service, newest last (the state is one DynamoDB item: 400 KB at most). */
export const HISTORY_LIMIT = 50;

/** Free text an on-call reads in the alert: not blank, bounded. */
const text = (what: string, max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => s.trim().length > 0, `required: ${what} (blank)`)
    .transform((s) => s.trim());

const who = {
  service: z.string().min(1).max(63),
  reason: text('say why', 500),
  by: text('who asks', 200),
  requestId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'expected 1–128 of A-Z a-z 0-9 . _ : - (a retry reuses it)'),
};
const duration = z.number().int().min(1).max(MAX_OVERRIDE_MINUTES);

export const SetModeSchema = z.object({ action: z.literal('set-mode'), ...who, mode: z.enum(['cost', 'capacity']), durationMinutes: duration }).strict();
export const PinSchema = z
  .object({
    action: z.literal('pin'),
    ...who,
    weights: z.record(z.string(), z.number().int().min(0).max(MAX_FORWARD_WEIGHT)),
    durationMinutes: duration,
    /** Apply the weights at once instead of floors first and weights as pods become ready. */
    force: z.boolean().optional(),
  })
  .strict();
export const ClearSchema = z.object({ action: z.literal('clear'), ...who }).strict();
export const StatusSchema = z.object({ action: z.literal('status'), service: who.service.optional() }).strict();

export const OverrideRequestSchema = z.discriminatedUnion('action', [SetModeSchema, PinSchema, ClearSchema, StatusSchema]);
export type OverrideRequest = z.infer<typeof OverrideRequestSchema>;
export type OverrideCommand = Exclude<OverrideRequest, { action: 'status' }>;

/** One audited event of a service's override: set or cleared by a request, or expired. */
export interface HistoryEntry {
  at: number;
  event: 'override-set' | 'override-cleared' | 'override-expired';
  /** Who did it; `hwai` for what the controller did on its own (an expiry). */
  by: string;
  overrideId?: string;
  detail: string;
}

/**
 * A history entry written by an override request: the request's id, and what it asked for
 * hashed, so a retry is recognised and a request id reused for another request is refused.
 */
export type AuditEntry = HistoryEntry & { requestId: string; fingerprint: string };

/** ServiceState as stored: the core's fields, plus the audit the override logic keeps in it. */
export type AuditedServiceState = ServiceState & { history?: HistoryEntry[] };

/** The state with `entry` appended to its history, the oldest beyond HISTORY_LIMIT dropped. */
export function withHistory<S extends AuditedServiceState>(state: S, entry: HistoryEntry): S {
  return { ...state, history: [...(state.history ?? []), entry].slice(-HISTORY_LIMIT) };
}

export type OverrideOutcomeKind = 'override-set' | 'override-cleared' | 'nothing-to-clear';

/** Validates an override payload against the fleet: known service, its own units, weights that route. */
export function parseOverrideRequest(input: unknown, spec: FleetSpec): OverrideRequest {
  const request = validate(OverrideRequestSchema, input, 'override request');
  const problems: InputProblem[] = [];
  const services = Object.keys(spec.services);
  if (request.service !== undefined && !services.includes(request.service)) {
    problems.push({ path: 'service', message: `unknown service "${request.service}"; expected one of: ${services.join(', ')}` });
  }
  if (request.action === 'pin' && problems.length === 0) {
    const units = spec.units.filter((u) => u.service === request.service).map((u) => u.name);
    for (const unit of Object.keys(request.weights)) {
      if (!units.includes(unit)) problems.push({ path: `weights.${unit}`, message: `unknown unit of ${request.service}; expected one of: ${units.join(', ')}` });
    }
    if (Object.values(request.weights).reduce((s, w) => s + w, 0) <= 0) {
      problems.push({ path: 'weights', message: 'expected a positive sum: at least one unit must get traffic' });
    }
  }
  if (problems.length > 0) throw new InputValidationError('override request', problems);
  return request;
}

export class RequestIdReusedError extends Error {
  override readonly name = 'RequestIdReusedError';
}

export interface OverrideOutcome {
  /** The state to save; the input itself when nothing changed. */
  state: ControllerState;
  changed: boolean;
  outcome: OverrideOutcomeKind;
  /** True when this request id was already applied: nothing was done again. */
  replayed: boolean;
  alerts: Alert[];
}

/**
 * Applies one override command. Idempotent: a request id already in the service's history
 * changes nothing and answers as the first time did. An override that has already expired is
 * not active: clearing it is left to the controller, which alerts its expiry.
 */
export function applyOverrideCommand(spec: FleetSpec, state: ControllerState, command: OverrideCommand, now: number): OverrideOutcome {
  const service = command.service;
  const previous: AuditedServiceState = state.services[service] ?? initialServiceState();
  const fingerprint = fingerprintOf(command);
  const earlier = auditOf(previous).find((e) => e.requestId === command.requestId);
  if (earlier) {
    if (earlier.fingerprint !== fingerprint) {
      throw new RequestIdReusedError(`requestId "${command.requestId}" was already used on ${new Date(earlier.at).toISOString()} for another request; use a new requestId`);
    }
    return { state, changed: false, outcome: earlier.event === 'override-cleared' ? 'override-cleared' : 'override-set', replayed: true, alerts: [] };
  }

  const active = previous.override && previous.override.until > now ? previous.override : null;
  let next: AuditedServiceState;
  let entry: AuditEntry;
  let alert: Alert;
  if (command.action === 'clear') {
    // Nothing to undo: no write; a retry gets the same answer.
    if (!active) return { state, changed: false, outcome: 'nothing-to-clear', replayed: false, alerts: [] };
    const detail = `cleared ${active.by}'s override (${describe(active)}): ${command.reason}`;
    entry = { at: now, event: 'override-cleared', by: command.by, overrideId: active.id, detail, requestId: command.requestId, fingerprint };
    next = { ...previous, override: null };
    alert = { kind: 'override-ended', service, message: `${service}: override by ${active.by} cleared by ${command.by} (${command.reason}); automatic control resumes` };
  } else {
    const override = overrideOf(spec, command, now);
    const replacing = active ? `, replacing ${active.by}'s override` : '';
    const detail = `${describe(override)} until ${new Date(override.until).toISOString()}: ${command.reason}${replacing}`;
    entry = { at: now, event: 'override-set', by: command.by, overrideId: override.id, detail, requestId: command.requestId, fingerprint };
    next = { ...previous, override };
    alert = { kind: 'override-started', service, message: `${service}: override by ${command.by}, ${detail}` };
  }
  next = withHistory(next, entry);
  return {
    state: { ...state, services: { ...state.services, [service]: next } },
    changed: true,
    outcome: entry.event === 'override-cleared' ? 'override-cleared' : 'override-set',
    replayed: false,
    alerts: [alert],
  };
}

/** The entries an override request wrote (the controller's own entries carry no request id). */
function auditOf(state: AuditedServiceState): AuditEntry[] {
  return (state.history ?? []).filter((e): e is AuditEntry => typeof (e as Partial<AuditEntry>).requestId === 'string');
}

function overrideOf(spec: FleetSpec, command: Exclude<OverrideCommand, { action: 'clear' }>, now: number): Override {
  const base = { id: command.requestId, startedAt: now, until: now + command.durationMinutes * 60_000, reason: command.reason, by: command.by };
  if (command.action === 'set-mode') return { ...base, mode: command.mode };
  // Every unit of the service gets a weight, so "pin trn1 100" takes traffic off the others.
  const weights = Object.fromEntries(spec.units.filter((u) => u.service === command.service).map((u) => [u.name, command.weights[u.name] ?? 0]));
  return { ...base, weights, force: command.force ?? false };
}

export function describe(override: Override): string {
  if (override.mode) return `mode ${override.mode}`;
  const weights = Object.entries(override.weights ?? {})
    .map(([u, w]) => `${u}=${w}`)
    .join(', ');
  return `weights ${weights}${override.force ? ' (force)' : ''}`;
}

function fingerprintOf(command: OverrideCommand): string {
  const canonical = JSON.stringify(command, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
