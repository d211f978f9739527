import { decide } from '../core/decide.ts';
import type { Alert, ControllerState, Decision, Observation, ServiceObservation, UnitObservation } from '../core/types.ts';
import type { FleetSpec, PolicyKind, Unit } from '../spec/schema.ts';
import { plan as planChanges, sameScaling, sameWeights, type Plan } from './plan.ts';
import type { LiveRoute, Ports, UnitMetrics, UnitPods } from './ports.ts';

/**
 * One tick: observe → decide → plan → apply → verify → record. The only place that sequences
 * the ports; everything it decides comes from the pure `decide`.
 */

export const ACTUATION_ALERT_AFTER = 3;

export interface TickError {
  step: 'observe' | 'apply' | 'verify' | 'record';
  target: string;
  message: string;
}

export interface TickResult {
  observation: Observation;
  decision: Decision;
  plan: Plan;
  applied: { weights: string[]; scaling: string[] };
  mismatches: string[];
  errors: TickError[];
  alerts: Alert[];
  /** False when another tick wrote the state first; this tick's alerts were then not sent. */
  recorded: boolean;
}

export interface TickOptions {
  policy?: PolicyKind;
  signal?: AbortSignal;
}

export async function runTick(spec: FleetSpec, ports: Ports, options: TickOptions = {}): Promise<TickResult> {
  const call = { signal: options.signal };
  const now = ports.clock.now();
  const errors: TickError[] = [];
  const stored = await ports.store.load(call);

  const observation = await observe(spec, ports, now, errors, call);
  const decision = decide(spec, observation, stored.state, now, options.policy);
  const plan = planChanges(decision, observation);
  const unitsOf = (service: string) => spec.units.filter((u) => u.service === service);
  const unitByName = new Map(spec.units.map((u) => [u.name, u]));

  // Apply: capacity first (floors raised before traffic moves), then weights.
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

  // Record: count failing actuation, then a conditional write; alerts only from the winner.
  const alerts: Alert[] = decision.services.flatMap((d) => d.alerts);
  const next: ControllerState = { version: stored.state.version + 1, services: { ...decision.state.services } };
  for (const d of decision.services) {
    const failures = failedServices.has(d.service) ? d.state.actuationFailures + 1 : 0;
    next.services[d.service] = { ...d.state, actuationFailures: failures };
    if (failures === ACTUATION_ALERT_AFTER) {
      alerts.push({ kind: 'actuation-failing', service: d.service, message: `${d.service}: applying the decision failed ${failures} ticks in a row` });
    }
  }
  let recorded = false;
  await attempt(errors, 'record', 'state', async () => {
    recorded = await ports.store.save(next, stored.version, call);
  });
  if (recorded && alerts.length > 0) {
    await attempt(errors, 'record', 'notify', () => ports.notifier.notify(alerts, call));
  }
  return { observation, decision: { ...decision, state: next }, plan, applied, mismatches, errors, alerts: recorded ? alerts : [], recorded };
}

async function observe(spec: FleetSpec, ports: Ports, now: number, errors: TickError[], call: { signal?: AbortSignal }): Promise<Observation> {
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
  const [metrics, signals, pods, scaling] = await Promise.all([
    read('metrics', () => ports.metrics.readUnitMetrics(units, now, call)),
    read('capacity-signals', () => ports.signals.readSignals(families, since, call)),
    read('pods', () => ports.cluster.readPods(units, call)),
    read('scaledobjects', () => ports.autoscaler.readScaling(units, call)),
  ]);
  const services: ServiceObservation[] = [];
  for (const service of Object.keys(spec.services).sort()) {
    const serviceUnits = units.filter((u) => u.service === service);
    const route = await read(`${service}: listener rule`, () => ports.router.readRoute(service, serviceUnits, call));
    const unitObs = serviceUnits.map((u) => unitObservation(u, metrics?.[u.name], pods?.[u.name], route, scaling?.[u.name] ?? null));
    const rpms = unitObs.map((o) => o.rpm);
    services.push({ service, demandRpm: rpms.every((r) => r !== null) ? rpms.reduce((s, r) => s + r!, 0) : null, units: unitObs });
  }
  return { at: now, services, signals: signals ?? [], missing };
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
  try {
    await fn();
    return true;
  } catch (e) {
    errors.push({ step, target, message: (e as Error).message });
    return false;
  }
}
