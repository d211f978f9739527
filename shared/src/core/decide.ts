import { POLICIES } from '../policies/index.ts';
import type { PolicyContext } from '../policies/types.ts';
import type { FleetSpec, PolicyKind } from '../spec/schema.ts';
import { costSplit, capacitySplit } from '../policies/static.ts';
import { probeFloor, updatePools } from './pools.ts';
import { enforceSafety } from './safety.ts';
import { initialServiceState } from './state.ts';
import type { Alert, ControllerState, Decision, Observation, ServiceDecision, ServiceObservation, ServiceState, UnitObservation, UnitScaling } from './types.ts';

/**
 * The decision core: a pure function of the fleet spec, one observation, the state left by the
 * last tick, and the time. No I/O, no clock, no randomness: the same inputs give the same output.
 */
export function decide(spec: FleetSpec, observation: Observation, state: ControllerState, now: number, policy: PolicyKind = spec.policy.kind): Decision {
  const services: ServiceDecision[] = [];
  const next: ControllerState = { version: state.version, services: { ...state.services } };
  for (const serviceName of Object.keys(spec.services).sort()) {
    const observed = observation.services.find((s) => s.service === serviceName);
    if (!observed) continue; // not observed this tick: leave it as it is
    const decision = decideService(spec, serviceName, observed, observation, state.services[serviceName] ?? initialServiceState(), now, policy);
    services.push(decision);
    next.services[serviceName] = decision.state;
  }
  return { at: now, policy, services, state: next };
}

function decideService(
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
  const demandRpm = observed.demandRpm ?? sumKnown(observed.units.map((u) => u.rpm));

  const pools = updatePools(units, byUnit, observation.signals, previous.pools, spec.policy, now);
  reasons.push(...pools.reasons);
  let state: ServiceState = { ...previous, pools: pools.pools };

  // An override wins until it expires; then automatic control resumes where it was.
  let override = state.override;
  if (override && override.until <= now) {
    alerts.push({ kind: 'override-ended', service, message: `${service}: override by ${override.by} expired (${override.reason}); automatic control resumes` });
    reasons.push('override expired');
    override = null;
    state = { ...state, override: null };
  }

  const ctx: PolicyContext = { service, units, observed: byUnit, demandRpm, settings: spec.policy, state, now };
  const proposal = POLICIES[policyKind](ctx);
  state = { ...state, ...proposal.state };
  let mode: ServiceDecision['mode'] = proposal.mode;
  let shares = proposal.shares;
  let scaling = proposal.scaling;
  reasons.push(...proposal.reasons);

  if (override) {
    mode = 'override';
    if (override.weights) {
      shares = Object.fromEntries(units.map((u) => [u.name, override!.weights![u.name] ?? 0]));
    } else {
      const split = override.mode === 'capacity' ? capacitySplit(ctx) : costSplit(ctx);
      shares = split.shares;
      scaling = split.scaling;
    }
    reasons.unshift(`override by ${override.by} until ${new Date(override.until).toISOString()}: ${override.reason}`);
  }

  const safe = enforceSafety({
    service,
    units,
    observed: byUnit,
    wanted: shares,
    targetRpm: Object.fromEntries(Object.entries(scaling).map(([k, v]) => [k, v.targetRpm])),
    demandRpm,
    lastGoodWeights: state.lastGoodWeights,
  });
  reasons.push(...safe.reasons);
  alerts.push(...safe.alerts);

  const finalScaling: Record<string, UnitScaling> = {};
  for (const u of units) {
    const s = scaling[u.name] ?? { minReplicas: u.minReplicas, maxReplicas: u.maxReplicas, targetRpm: u.maxRpm };
    const floor = Math.max(s.minReplicas, safe.floors[u.name] ?? 0, probeFloor(state.pools, u.name));
    finalScaling[u.name] = { ...s, minReplicas: Math.min(floor, s.maxReplicas) };
  }

  const previousMode = previous.override ? 'override' : previous.mode;
  if (mode !== previousMode) {
    const kind = mode === 'override' ? 'override-started' : previousMode === 'override' ? 'override-ended' : 'mode-changed';
    if (!alerts.some((a) => a.kind === kind)) alerts.push({ kind, service, message: `${service}: mode ${previousMode} → ${mode}` });
  }
  if (safe.anyHealthy) state = { ...state, lastGoodWeights: safe.weights };

  return { service, mode, weights: safe.weights, scaling: finalScaling, reasons, alerts, state };
}

function sumKnown(values: Array<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : known.reduce((s, v) => s + v, 0);
}
