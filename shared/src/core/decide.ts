import type { FleetSpec, PolicyKind, Unit } from '../spec/schema.ts';
import { toIntegerWeights } from './cost.ts';
import type { PolicyBook, PolicyContext } from './policy.ts';
import { probeFloor, updatePools } from './pools.ts';
import { enforceSafety, healthyPods, podsFor, WEIGHT_TOTAL } from './safety.ts';
import { initialServiceState } from './state.ts';
import type {
  Alert,
  ControllerState,
  Decision,
  Observation,
  Override,
  OverrideProgress,
  ServiceDecision,
  ServiceObservation,
  ServiceState,
  UnitObservation,
  UnitScaling,
} from './types.ts';



/** How old the newest delivered minute of demand may be to stand in for one not delivered yet. */
export const RECENT_DEMAND_MS = 6 * 60_000;

/**
 * The decision core: a pure function of the fleet spec, one observation, the state left by the
 * last tick, and the time, deciding with the policies it is given. No I/O, no clock, no
 * randomness: the same inputs give the same output, and a world that does not change leaves the
 * state as it was (so the tick writes nothing).
 */
export function decideWith(book: PolicyBook, spec: FleetSpec, observation: Observation, state: ControllerState, now: number, policy: PolicyKind = spec.policy.kind): Decision {
  const services: ServiceDecision[] = [];
  const next: ControllerState = { ...state, services: { ...state.services } };
  for (const serviceName of Object.keys(spec.services).sort()) {
    const observed = observation.services.find((s) => s.service === serviceName);
    if (!observed) continue; // not observed this tick: leave it as it is
    const decision = decideService(book, spec, serviceName, observed, observation, state.services[serviceName] ?? initialServiceState(), now, policy);
    services.push(decision);
    next.services[serviceName] = decision.state;
  }
  return { at: now, policy, services, state: next };
}

function decideService(
  book: PolicyBook,
  spec: FleetSpec,
  service: string,
  observed: ServiceObservation,
  observation: Observation,
  previous: ServiceState,
  now: number,
  policyKind: PolicyKind,
): ServiceDecision {
  const units = spec.units.filter((u) => u.service === service);
  const byUnit = new Map<string, UnitObservation>(observed.units.map((o) => [o.unit, o]));
  const reasons: string[] = [];
  const alerts: Alert[] = [];
  // Entries without a service prefix (metrics, pods, …) concern every service.
  const missing = observation.missing.filter((m) => !m.includes(':') || m.startsWith(`${service}:`));
  if (missing.length > 0) {
    reasons.push(`incomplete observation (${missing.join('; ')}): deciding on what is known`);
    alerts.push({ kind: 'incomplete-observation', service, message: `${service}: could not observe ${missing.join('; ')}` });
  }
  // A sum over some of the units would understate the demand and let a shift outrun the pods.
  const rpms = units.map((u) => byUnit.get(u.name)?.rpm ?? null);
  const demandHistory = observed.demandHistory;
  const lastKnownDemandRpm = demandHistory.at(-1)?.[1] ?? null;
  let demandRpm = observed.demandRpm ?? (rpms.every((r) => r !== null) ? rpms.reduce((s, r) => s + r, 0) : null);
  // CloudWatch running a minute or two later than the read's lag: the newest minute it has
  // delivered is the demand, rather than none (which would hold every shift). Unread metrics
  // leave no history, and demand stays unknown.
  const newest = demandHistory.at(-1);
  if (demandRpm === null && newest && now - newest[0] <= RECENT_DEMAND_MS) {
    demandRpm = newest[1];
    reasons.push(`demand of the minute from ${new Date(newest[0]).toISOString()} used: CloudWatch has not delivered a later one yet`);
  }

  const pools = updatePools(units, byUnit, observation.signals, previous.pools, spec.policy, now);
  reasons.push(...pools.reasons);
  let state: ServiceState = { ...previous, pools: pools.pools };

  // An override wins until it expires; then automatic control resumes where it was.
  let override = state.override;
  if (override && override.until <= now) {
    alerts.push({ kind: 'override-ended', service, message: `${service}: override by ${override.by} expired (${override.reason}); automatic control resumes` });
    reasons.push('override expired');
    state = { ...state, override: null };
    override = null;
  }

  const ctx: PolicyContext = { service, units, observed: byUnit, demandRpm, demandHistory, settings: spec.policy, state, now };
  const proposal = book.policies[policyKind](ctx);
  state = { ...state, ...proposal.state };
  let mode: ServiceDecision['mode'] = proposal.mode;
  let shares = proposal.shares;
  let scaling = proposal.scaling;
  let floorRpm: Record<string, number> = Object.fromEntries(Object.entries(scaling).map(([k, v]) => [k, v.targetRpm]));
  reasons.push(...proposal.reasons);

  // An override sets the target: floors for its share of the demand first, weights as the pods
  // become ready (or at once when forced).
  let target: Record<string, number> | null = null;
  if (override) {
    const wanted = overrideTarget(book, ctx, override);
    if (Object.values(wanted.shares).some((w) => w > 0)) {
      target = wanted.shares;
      mode = 'override';
      shares = target;
      // Explicit weights keep the policy's targets, not the maxima it trimmed to its own plan:
      // the override's floors must fit under them.
      scaling = wanted.scaling ?? Object.fromEntries(units.map((u) => [u.name, { ...(scaling[u.name] ?? { minReplicas: u.minReplicas, targetRpm: u.maxRpm }), maxReplicas: u.maxReplicas }]));
      floorRpm = Object.fromEntries(units.map((u) => [u.name, u.maxRpm * spec.policy.targetUtilization]));
      reasons.unshift(`override by ${override.by} until ${timeOf(override.until)}${override.force ? ' (forced)' : ''}: ${override.reason}`);
    } else {
      // Only a fleet spec changed under a stored override can get here (the override function
      // validates the units): end it once, rather than report an override that does nothing.
      reasons.unshift(`override by ${override.by} names no unit of ${service} with a positive weight: ended`);
      alerts.push({ kind: 'override-ended', service, message: `${service}: override by ${override.by} names no unit of ${service} with a positive weight; automatic control resumes` });
      state = { ...state, override: null };
    }
  }

  const safe = enforceSafety({
    service,
    units,
    observed: byUnit,
    wanted: shares,
    floorRpm,
    demandRpm,
    lastKnownDemandRpm,
    lastGoodWeights: state.lastGoodWeights,
    force: target !== null && override?.force === true,
  });
  reasons.push(...safe.reasons);
  alerts.push(...safe.alerts);

  const demandForFloors = demandRpm ?? lastKnownDemandRpm;
  const overrideFloors = target ? floorsFor(units, target, demandForFloors, floorRpm) : {};
  const finalScaling: Record<string, UnitScaling> = {};
  for (const u of units) {
    const s = scaling[u.name] ?? { minReplicas: u.minReplicas, maxReplicas: u.maxReplicas, targetRpm: u.maxRpm };
    const floor = Math.max(s.minReplicas, safe.floors[u.name] ?? 0, overrideFloors[u.name] ?? 0, probeFloor(state.pools, u.name));
    finalScaling[u.name] = { ...s, minReplicas: Math.min(floor, s.maxReplicas) };
  }

  let progress: OverrideProgress | null = null;
  if (target) {
    progress = overrideProgress(units, target, safe.weights, finalScaling, overrideFloors, byUnit);
    if (progress.fraction < 1) {
      reasons.push(
        `override ${Math.round(progress.fraction * 100)}% applied` +
          (progress.waitingFor.length > 0 ? `; waiting for ${progress.waitingFor.join(', ')}` : demandForFloors === null ? '; demand unknown, floors not sized' : ''),
      );
    }
  }

  const previousMode = previous.override ? 'override' : previous.mode;
  if (mode !== previousMode) {
    const kind = mode === 'override' ? 'override-started' : previousMode === 'override' ? 'override-ended' : 'mode-changed';
    if (!alerts.some((a) => a.kind === kind)) alerts.push({ kind, service, message: `${service}: mode ${previousMode} → ${mode}` });
  }
  if (safe.anyHealthy) state = { ...state, lastGoodWeights: safe.weights };

  return { service, mode, weights: safe.weights, scaling: finalScaling, reasons, alerts, override: progress, state };
}

/** The override's target shares over the service's units, and the scaling of its mode if it names one. */
function overrideTarget(book: PolicyBook, ctx: PolicyContext, override: Override): { shares: Record<string, number>; scaling: Record<string, UnitScaling> | null } {
  if (override.weights) {
    return { shares: Object.fromEntries(ctx.units.map((u) => [u.name, Math.max(0, override.weights![u.name] ?? 0)])), scaling: null };
  }
  const split = book.splits[override.mode ?? 'cost'](ctx);
  return { shares: split.shares, scaling: split.scaling };
}

/** Pods each unit needs for its share of the demand at `podRpm` per pod; none when the demand is unknown. */
function floorsFor(units: ReadonlyArray<Unit>, shares: Record<string, number>, demand: number | null, podRpm: Record<string, number>): Record<string, number> {
  const total = Object.values(shares).reduce((s, x) => s + x, 0);
  if (demand === null || demand <= 0 || total <= 0) return {};
  return Object.fromEntries(
    units.filter((u) => (shares[u.name] ?? 0) > 0).map((u) => [u.name, podsFor((shares[u.name]! / total) * demand, podRpm[u.name] ?? u.maxRpm)]),
  );
}

/**
 * How far the target is applied: the traffic routed as the target says (the overlap of the two
 * splits), and the units whose raised floors still wait for ready pods.
 */
function overrideProgress(
  units: ReadonlyArray<Unit>,
  target: Record<string, number>,
  applied: Record<string, number>,
  scaling: Record<string, UnitScaling>,
  floors: Record<string, number>,
  observed: ReadonlyMap<string, UnitObservation>,
): OverrideProgress {
  const targetWeights = toIntegerWeights(Object.fromEntries(units.map((u) => [u.name, target[u.name] ?? 0])), WEIGHT_TOTAL);
  const appliedTotal = Object.values(applied).reduce((s, w) => s + w, 0);
  const overlap = units.reduce((s, u) => s + Math.min((applied[u.name] ?? 0) / Math.max(1, appliedTotal), (targetWeights[u.name] ?? 0) / WEIGHT_TOTAL), 0);
  const waitingFor: string[] = [];
  for (const u of units) {
    if (floors[u.name] === undefined) continue;
    const need = Math.min(floors[u.name]!, scaling[u.name]?.maxReplicas ?? u.maxReplicas);
    const ready = healthyPods(observed.get(u.name));
    if (ready < need) waitingFor.push(`${u.name}: ${ready}/${need} ready`);
  }
  return { target: targetWeights, applied: { ...applied }, fraction: Math.round(Math.min(1, overlap) * 1000) / 1000, waitingFor };
}

/** An instant for a reason; a stored time out of the Date range must not stop the tick. */
function timeOf(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms` : d.toISOString();
}
