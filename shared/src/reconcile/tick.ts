import { randomUUID } from 'node:crypto';
import { decide } from '../policies/index.ts';
import type { Alert, ControllerState, Decision, Observation, ServiceObservation, UnitObservation } from '../core/types.ts';
import type { FleetSpec, PolicyKind, Unit } from '../spec/schema.ts';
import { plan as planChanges, sameScaling, sameWeights, type Plan } from './plan.ts';
import type { CallOptions, LiveRoute, Ports, StoredState, UnitMetrics, UnitPods } from './ports.ts';

/**
 * One tick: observe → decide → plan, then, only when something is to change, take the lease →
 * re-check the state → apply → verify → record → release. The only place that sequences the
 * ports; everything it decides comes from the pure `decide`.
 *
 * Concurrency (two scheduled ticks, a tick and a capacity event, ticks of two shards): a tick
 * writes only while it holds the lease, and only if the state it decided on is still the stored
 * one after taking it. So of two ticks started together exactly one acts; the other writes
 * nothing at all, neither on the ALB nor on KEDA nor in the state. A tick with nothing to
 * change (empty plan, next state equal to the stored one) does not even take the lease.
 */

export const ACTUATION_ALERT_AFTER = 3;
/** The lease outlives a tick's writes but never the next tick: 0.8 of the tick. */
export const LEASE_TTL_FRACTION = 0.8;

export type TickOutcome =
  /** Held the lease and applied the plan (errors may say some of it failed). */
  | 'applied'
  /** Nothing to change: the plan was empty and the state as stored; nothing was written. */
  | 'unchanged'
  /** Another tick held the lease, or it could not be taken (see errors); nothing was written. */
  | 'lease-held'
  /** The state moved between the decision and taking the lease; nothing was written. */
  | 'state-moved'
  /** Decided and planned as asked, wrote nothing. */
  | 'dry-run';

export interface TickError {
  step: 'observe' | 'lease' | 'apply' | 'verify' | 'record';
  target: string;
  message: string;
}

export interface TickResult {
  outcome: TickOutcome;
  observation: Observation;
  decision: Decision;
  plan: Plan;
  applied: { weights: string[]; scaling: string[] };
  mismatches: string[];
  errors: TickError[];
  /** The alerts sent (only a tick that recorded its state sends them). */
  alerts: Alert[];
  /** True when the stored state is this tick's: written by it, or already equal ('unchanged'). */
  recorded: boolean;
}

export interface TickOptions {
  policy?: PolicyKind;
  /** Aborts every call (tie it to the Lambda's remaining time). */
  signal?: AbortSignal;
  /** Decide and plan, write nothing (no lease, no apply, no state, no alerts). */
  dryRun?: boolean;
  /** Only these services (the shard of one schedule); every service of the spec when absent. */
  services?: ReadonlyArray<string>;
  /** Who takes the lease; a random id when absent (the Lambda's request id is a good one). */
  holder?: string;
}

export class UnknownServiceError extends Error {
  override name = 'UnknownServiceError';
}

export async function runTick(fleet: FleetSpec, ports: Ports, options: TickOptions = {}): Promise<TickResult> {
  const spec = shardOf(fleet, options.services);
  const call: CallOptions = { signal: options.signal };
  const now = ports.clock.now();
  const errors: TickError[] = [];
  const stored = await ports.store.load(call);

  const observation = await observe(spec, ports, now, errors, call);
  const decision = decide(spec, observation, stored.state, now, options.policy);
  const plan = planChanges(decision, observation);
  const nothingApplied = { weights: [] as string[], scaling: [] as string[] };
  const result = (outcome: TickOutcome, rest: Partial<TickResult> = {}): TickResult => ({
    outcome,
    observation,
    decision,
    plan,
    applied: nothingApplied,
    mismatches: [],
    errors,
    alerts: [],
    recorded: false,
    ...rest,
  });

  if (options.dryRun) return result('dry-run');
  // Nothing to apply and nothing new to remember: no lease, no state write, no alert.
  const clean = record(decision, stored, new Set());
  if (plan.weights.length === 0 && plan.scaling.length === 0 && sameState(clean.state, stored.state)) {
    return result('unchanged', { decision: { ...decision, state: stored.state }, recorded: true });
  }

  const holder = options.holder ?? randomUUID();
  const ttlMs = LEASE_TTL_FRACTION * spec.policy.tickSeconds * 1000;
  const asked = performance.now();
  const leased = await attemptValue(errors, 'lease', 'lease', () => ports.lease.acquire(holder, ttlMs, call));
  if (!leased) return result('lease-held');
  // Writes only while the lease is ours: every call after this is abandoned when it runs out
  // (counted from when it was asked for, so never later than the lease's own expiry).
  const remaining = Math.max(0, Math.floor(ttlMs - (performance.now() - asked)));
  const held: CallOptions = { signal: AbortSignal.any([AbortSignal.timeout(remaining), ...(options.signal ? [options.signal] : [])]) };
  try {
    // Another tick may have acted between our read and our lease: its world is not the one we saw.
    const fresh = await attemptValue(errors, 'lease', 'state', () => ports.store.load(held));
    if (!fresh || fresh.version !== stored.version) return result('state-moved');

    const { applied, failedServices, mismatches } = await applyPlan(spec, ports, decision, plan, errors, held);
    const next = record(decision, stored, failedServices);
    let recorded = false;
    await attempt(errors, 'record', 'state', async () => {
      recorded = await ports.store.save(next.state, stored.version, held);
    });
    if (recorded && next.alerts.length > 0) {
      await attempt(errors, 'record', 'notify', () => ports.notifier.notify(next.alerts, held));
    }
    return result('applied', { decision: { ...decision, state: next.state }, applied, mismatches, alerts: recorded ? next.alerts : [], recorded });
  } finally {
    // If this fails (or the deadline already aborted it) the lease expires on its own.
    await attempt(errors, 'lease', 'release', () => ports.lease.release(holder, call));
  }
}

/** The spec narrowed to the services of one shard; unknown names are refused, not skipped. */
function shardOf(spec: FleetSpec, services: ReadonlyArray<string> | undefined): FleetSpec {
  if (services === undefined) return spec;
  const known = Object.keys(spec.services);
  const unknown = services.filter((s) => !known.includes(s));
  if (services.length === 0 || unknown.length > 0) {
    const what = services.length === 0 ? 'an empty list of services' : `unknown service(s) ${unknown.map((s) => JSON.stringify(s)).join(', ')}`;
    throw new UnknownServiceError(`tick options.services: ${what}; expected names from the fleet spec: ${known.join(', ')}`);
  }
  return {
    ...spec,
    services: Object.fromEntries(Object.entries(spec.services).filter(([name]) => services.includes(name))),
    units: spec.units.filter((u) => services.includes(u.service)),
  };
}

/** Capacity first (floors raised before traffic moves), then weights; then read both back. */
async function applyPlan(spec: FleetSpec, ports: Ports, decision: Decision, plan: Plan, errors: TickError[], call: CallOptions) {
  const unitsOf = (service: string) => spec.units.filter((u) => u.service === service);
  const unitByName = new Map(spec.units.map((u) => [u.name, u]));
  const applied = { weights: [] as string[], scaling: [] as string[] };
  const failedServices = new Set<string>();
  for (const change of plan.scaling) {
    const unit = unitByName.get(change.unit)!;
    const ok = await attempt(errors, 'apply', `scaledobject ${unit.name}`, async () => {
      await ports.autoscaler.setScaling(unit, change.to, call);
      applied.scaling.push(unit.name);
    });
    if (!ok) failedServices.add(unit.service);
  }
  for (const change of plan.weights) {
    const ok = await attempt(errors, 'apply', `listener rule ${change.service}`, async () => {
      await ports.router.setWeights(change.service, unitsOf(change.service), change.to, call);
      applied.weights.push(change.service);
    });
    if (!ok) failedServices.add(change.service);
  }

  // Verify: read back what was written; a mismatch is retried next tick and counted.
  const mismatches: string[] = [];
  for (const service of applied.weights) {
    const wanted = decision.services.find((d) => d.service === service)!.weights;
    await attempt(errors, 'verify', `listener rule ${service}`, async () => {
      const live = await ports.router.readRoute(service, unitsOf(service), call);
      if (!sameWeights(live.weights, wanted)) {
        mismatches.push(`${service}: weights read back ${JSON.stringify(live.weights)}, wrote ${JSON.stringify(wanted)}`);
        failedServices.add(service);
      }
    });
  }
  if (applied.scaling.length > 0) {
    const units = applied.scaling.map((n) => unitByName.get(n)!);
    await attempt(errors, 'verify', 'scaledobjects', async () => {
      const live = await ports.autoscaler.readScaling(units, call);
      for (const u of units) {
        const wanted = decision.services.find((d) => d.service === u.service)!.scaling[u.name]!;
        if (!live[u.name] || !sameScaling(live[u.name]!, wanted)) {
          mismatches.push(`${u.name}: scaling read back ${JSON.stringify(live[u.name])}`);
          failedServices.add(u.service);
        }
      }
    });
  }
  return { applied, failedServices, mismatches };
}

/** The state to store after this tick, with failing actuation counted, and the alerts to send. */
function record(decision: Decision, stored: StoredState, failedServices: ReadonlySet<string>): { state: ControllerState; alerts: Alert[] } {
  const alerts: Alert[] = decision.services.flatMap((d) => d.alerts);
  // Whatever else the state carries (records other writers keep in it) goes on as it was.
  const state: ControllerState = { ...decision.state, version: stored.state.version + 1, services: { ...decision.state.services } };
  for (const d of decision.services) {
    const failures = failedServices.has(d.service) ? d.state.actuationFailures + 1 : 0;
    state.services[d.service] = { ...d.state, actuationFailures: failures };
    if (failures === ACTUATION_ALERT_AFTER) {
      alerts.push({ kind: 'actuation-failing', service: d.service, message: `${d.service}: applying the decision failed ${failures} ticks in a row` });
    }
  }
  return { state, alerts };
}

/** Equal as stored: JSON with keys in order, `version` left out (it moves on every write). */
export function sameState(a: ControllerState, b: ControllerState): boolean {
  return canonicalJson({ ...a, version: 0 }) === canonicalJson({ ...b, version: 0 });
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v,
  );
}

async function observe(spec: FleetSpec, ports: Ports, now: number, errors: TickError[], call: CallOptions): Promise<Observation> {
  const units = spec.units;
  const families = [...new Set(units.map((u) => u.family))];
  const since = now - (spec.policy.shortageSignalSeconds + spec.policy.tickSeconds) * 1000;
  const missing: string[] = [];
  const read = async <T>(what: string, fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await fn();
    } catch (e) {
      missing.push(what);
      errors.push({ step: 'observe', target: what, message: (e as Error).message });
      return null;
    }
  };
  const serviceNames = Object.keys(spec.services).sort();
  const unitsOf = (service: string) => units.filter((u) => u.service === service);
  const [metrics, signals, pods, scaling, routes] = await Promise.all([
    read('metrics', () => ports.metrics.readUnitMetrics(units, now, call)),
    read('capacity-signals', () => ports.signals.readSignals(families, since, call)),
    read('pods', () => ports.cluster.readPods(units, call)),
    read('scaledobjects', () => ports.autoscaler.readScaling(units, call)),
    Promise.all(serviceNames.map((s) => read(`${s}: listener rule`, () => ports.router.readRoute(s, unitsOf(s), call)))),
  ]);
  const services: ServiceObservation[] = serviceNames.map((service, i) => {
    const serviceUnits = unitsOf(service);
    const unitObs = serviceUnits.map((u) => unitObservation(u, metrics?.[u.name], pods?.[u.name], routes[i]!, scaling?.[u.name] ?? null));
    const rpms = unitObs.map((o) => o.rpm);
    return {
      service,
      demandRpm: rpms.every((r) => r !== null) ? rpms.reduce((s, r) => s + r!, 0) : null,
      demandHistory: demandHistory(serviceUnits.map((u) => metrics?.[u.name]?.rpmHistory)),
      units: unitObs,
    };
  });
  // Missing entries in the order the reads were named, whatever order they failed in.
  const order = ['metrics', 'capacity-signals', 'pods', 'scaledobjects', ...serviceNames.map((s) => `${s}: listener rule`)];
  missing.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return { at: now, services, signals: signals ?? [], missing };
}

/** A service's demand per minute: only minutes every one of its units reported, summed. */
export function demandHistory(histories: ReadonlyArray<ReadonlyArray<[number, number]> | undefined>): Array<[number, number]> {
  if (histories.length === 0 || histories.some((h) => h === undefined)) return [];
  const [first, ...rest] = histories as ReadonlyArray<ReadonlyArray<[number, number]>>;
  const others = rest.map((h) => new Map(h));
  return first!
    .filter(([minute]) => others.every((m) => m.has(minute)))
    .map(([minute, rpm]): [number, number] => [minute, others.reduce((sum, m) => sum + m.get(minute)!, rpm)])
    .sort((a, b) => a[0] - b[0]);
}

function unitObservation(
  u: Unit,
  m: UnitMetrics | undefined,
  p: UnitPods | undefined,
  route: LiveRoute | null,
  scaling: UnitObservation['liveScaling'],
): UnitObservation {
  const health = route?.health[u.name];
  return {
    unit: u.name,
    rpm: m?.rpm ?? null,
    p99Seconds: m?.p99Seconds ?? null,
    readyPods: p?.readyPods ?? null,
    desiredPods: p?.desiredPods ?? null,
    pendingPods: p?.pendingPods ?? null,
    oldestPendingSeconds: p?.oldestPendingSeconds ?? null,
    healthyTargets: health?.healthy ?? null,
    registeredTargets: health?.registered ?? null,
    liveWeight: route ? (route.weights[u.name] ?? 0) : null,
    liveScaling: scaling,
  };
}

async function attempt(errors: TickError[], step: TickError['step'], target: string, fn: () => Promise<void>): Promise<boolean> {
  return (await attemptValue(errors, step, target, async () => (await fn(), true))) ?? false;
}

/** The value of `fn`, or null with the failure recorded. */
async function attemptValue<T>(errors: TickError[], step: TickError['step'], target: string, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (e) {
    errors.push({ step, target, message: (e as Error).message });
    return null;
  }
}
