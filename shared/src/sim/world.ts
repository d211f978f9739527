import type { PoolSignal, UnitScaling } from '../core/types.ts';
import type { FleetSpec, Unit } from '../spec/schema.ts';
import type { ScenarioFile } from './scenario.ts';

/**
 * The simulated world the control loop acts on: an ALB that splits demand by weight, KEDA/HPA as
 * they behave, Karpenter launching one node per pod under per-family limits, pods that start up,
 * serve up to their breaking point and fail what is beyond it, and the node-hour bill.
 */

export const HPA_SYNC_SECONDS = 15;
export const HPA_TOLERANCE = 0.1;
export const HPA_SCALE_DOWN_STABILISATION_SECONDS = 300;
/** Karpenter keeps an offering it could not launch in its unavailable cache this long. */
export const ICE_CACHE_SECONDS = 180;
/** Beyond the breaking point p99 grows with the queue; it is capped at the ALB's idle timeout. */
export const MAX_LATENCY_SECONDS = 60;

export interface Pod {
  id: number;
  createdAt: number;
  /** When Karpenter gave it a node; null while Pending. */
  nodeAt: number | null;
  readyAt: number | null;
  /** Seeded spread of start-up times between pods, seconds. */
  jitterSeconds: number;
}

/**
 * One unit's minute as the model servers' EMF metrics put it in CloudWatch: the requests the ALB
 * sent it (RequestCount summed over the minute) and the minute's p99 latency in milliseconds
 * (null when it served nothing, as no Latency datapoint is emitted then).
 */
export interface UnitMinuteMetrics {
  /** World seconds of the minute's start. */
  startSecond: number;
  requests: number;
  latencyMs: number | null;
}

/** Minutes of per-unit metrics the world keeps: more than CloudWatch's lag plus the 30-minute history. */
export const METRIC_MINUTES_KEPT = 40;

export interface UnitWorld {
  unit: Unit;
  pods: Pod[];
  scaling: UnitScaling;
  weight: number;
  /** HPA recommendations [at, replicas] kept for the scale-down stabilisation window. */
  recommendations: Array<[number, number]>;
  /** Offered requests per step for the last minute, newest last. */
  offeredWindow: number[];
  /** Figures of the last step. */
  last: { offeredRpm: number; servedRpm: number; failedRpm: number; p99Seconds: number };
  /** Complete minutes of metrics, oldest first (the last METRIC_MINUTES_KEPT). */
  minutes: UnitMinuteMetrics[];
  /** The minute being counted. */
  minute: { requests: number; latencyMs: number | null };
}

export interface StepFigures {
  demandRpm: Record<string, number>;
  costDollars: number;
}

export class World {
  readonly units = new Map<string, UnitWorld>();
  readonly signals: PoolSignal[] = [];
  private readonly refusedAt = new Map<string, number>();
  private nextPodId = 1;
  private lastHpaAt = -Infinity;
  private readonly stepsPerMinute: number;

  constructor(
    readonly fleet: FleetSpec,
    readonly scenario: ScenarioFile,
    private readonly services: string[],
    private readonly random: () => number,
  ) {
    this.stepsPerMinute = 60 / scenario.stepSeconds;
    for (const unit of fleet.units.filter((u) => services.includes(u.service))) {
      const scaling = { minReplicas: unit.minReplicas, maxReplicas: unit.maxReplicas, targetRpm: unit.maxRpm };
      const weight = fleet.units.filter((u) => u.service === unit.service).length === 1 ? 1 : 0;
      this.units.set(unit.name, {
        unit,
        pods: [],
        scaling,
        weight,
        recommendations: [],
        offeredWindow: [],
        last: { offeredRpm: 0, servedRpm: 0, failedRpm: 0, p99Seconds: 0 },
        minutes: [],
        minute: { requests: 0, latencyMs: null },
      });
    }
  }

  unitsOf(service: string): UnitWorld[] {
    return [...this.units.values()].filter((u) => u.unit.service === service);
  }

  /** The capacity limit on a family at a time (seconds), or null when it is unlimited. */
  limitAt(family: string, t: number): number | 'hold' | null {
    const minute = t / 60;
    const w = this.scenario.capacity.find((c) => c.family === family && minute >= c.fromMinute && minute < c.toMinute);
    return w ? w.maxInstances : null;
  }

  nodesOf(family: string): Pod[] {
    return [...this.units.values()].filter((u) => u.unit.family === family).flatMap((u) => u.pods.filter((p) => p.nodeAt !== null));
  }

  /** Advances the world by one step ending at `t` (seconds), serving `demand` (rpm per service). */
  step(t: number, demand: Record<string, number>): StepFigures {
    const dt = this.scenario.stepSeconds;
    this.enforceLimits(t);
    this.launchNodes(t);
    for (const u of this.units.values()) for (const p of u.pods) if (p.nodeAt !== null && p.readyAt === null) this.maybeReady(u, p, t);

    for (const [service, rpm] of Object.entries(demand)) this.route(service, rpm);
    if (t % 60 === 0) for (const u of this.units.values()) closeMinute(u, t - 60);
    if (t - this.lastHpaAt >= HPA_SYNC_SECONDS) {
      this.lastHpaAt = t;
      for (const u of this.units.values()) this.autoscale(u, t);
    }

    let cost = 0;
    for (const u of this.units.values()) cost += (u.pods.filter((p) => p.nodeAt !== null).length * u.unit.pricePerHour * dt) / 3600;
    return { demandRpm: demand, costDollars: cost };
  }

  /** A limit below the running count terminates the newest nodes, as an interruption would. */
  private enforceLimits(t: number): void {
    for (const family of new Set([...this.units.values()].map((u) => u.unit.family))) {
      const limit = this.limitAt(family, t);
      if (typeof limit !== 'number') continue;
      const nodes = this.nodesOf(family).sort((a, b) => b.nodeAt! - a.nodeAt! || b.id - a.id);
      const excess = nodes.length - limit;
      if (excess <= 0) continue;
      const doomed = new Set(nodes.slice(0, excess).map((p) => p.id));
      for (const u of this.units.values()) if (u.unit.family === family) u.pods = u.pods.filter((p) => !doomed.has(p.id));
      this.signals.push({ family, kind: 'interruption', at: t * 1000, detail: `${excess} node(s) reclaimed` });
    }
  }

  /** Karpenter: one node per Pending pod, unless the family is at its limit or in the ICE cache. */
  private launchNodes(t: number): void {
    for (const u of [...this.units.values()].sort((a, b) => a.unit.name.localeCompare(b.unit.name))) {
      for (const p of u.pods) {
        if (p.nodeAt !== null) continue;
        const family = u.unit.family;
        const refused = this.refusedAt.get(family);
        if (refused !== undefined && t - refused < ICE_CACHE_SECONDS) continue;
        const limit = this.limitAt(family, t);
        const full = limit === 'hold' || (typeof limit === 'number' && this.nodesOf(family).length >= limit);
        if (full) {
          this.refusedAt.set(family, t);
          this.signals.push({ family, kind: 'insufficient-capacity', at: t * 1000, detail: `${u.unit.instanceType}: InsufficientInstanceCapacity` });
          continue;
        }
        p.nodeAt = t;
      }
    }
  }

  /** Start-up counts from the node launch: the node, image pull, model load and warm-up. */
  private maybeReady(u: UnitWorld, p: Pod, t: number): void {
    if (t >= p.nodeAt! + Math.max(u.unit.startupSeconds, this.scenario.nodeLaunchSeconds) + p.jitterSeconds) p.readyAt = t;
  }

  /** The ALB: split by weight; a target group with no registered targets answers 503. */
  private route(service: string, rpm: number): void {
    const units = this.unitsOf(service);
    const total = units.reduce((s, u) => s + u.weight, 0);
    for (const u of units) {
      const offered = total > 0 ? (rpm * u.weight) / total : 0;
      const ready = u.pods.filter((p) => p.readyAt !== null).length;
      const capacity = ready * u.unit.maxRpm;
      const served = Math.min(offered, capacity);
      const utilisation = capacity > 0 ? offered / capacity : 0;
      u.last = { offeredRpm: offered, servedRpm: served, failedRpm: offered - served, p99Seconds: served > 0 ? p99At(utilisation, this.sloOf(service)) : 0 };
      u.offeredWindow.push(offered);
      if (u.offeredWindow.length > this.stepsPerMinute) u.offeredWindow.shift();
      u.minute.requests += offered / this.stepsPerMinute;
      if (served > 0) u.minute.latencyMs = Math.max(u.minute.latencyMs ?? 0, u.last.p99Seconds * 1000);
    }
  }

  sloOf(service: string): number {
    return this.fleet.services[service]?.sloSeconds ?? 0.9;
  }

  /** KEDA/HPA: AverageValue on the unit's requests per minute, 10% tolerance, up now, down after 300 s. */
  private autoscale(u: UnitWorld, t: number): void {
    const metric = u.offeredWindow.reduce((s, x) => s + x, 0) / Math.max(1, u.offeredWindow.length);
    const current = u.pods.length;
    const ratio = current > 0 ? metric / (u.scaling.targetRpm * current) : Infinity;
    const raw = current > 0 && Math.abs(ratio - 1) <= HPA_TOLERANCE ? current : Math.ceil(metric / u.scaling.targetRpm);
    const recommendation = clamp(raw, u.scaling.minReplicas, u.scaling.maxReplicas);
    u.recommendations.push([t, recommendation]);
    u.recommendations = u.recommendations.filter(([at]) => t - at <= HPA_SCALE_DOWN_STABILISATION_SECONDS);
    const desired = recommendation >= current
      ? Math.min(recommendation, Math.max(current * 2, current + 4)) // HPA's default scale-up policy
      : Math.min(current, Math.max(...u.recommendations.map(([, r]) => r))); // highest of the last 300 s
    this.resize(u, clamp(desired, u.scaling.minReplicas, u.scaling.maxReplicas), t);
  }

  private resize(u: UnitWorld, desired: number, t: number): void {
    while (u.pods.length < desired) u.pods.push({ id: this.nextPodId++, createdAt: t, nodeAt: null, readyAt: null, jitterSeconds: Math.round((this.random() - 0.5) * 60) });
    if (u.pods.length > desired) {
      // The ReplicaSet deletes unscheduled pods first, then not-ready, then the newest ready ones.
      const rank = (p: Pod) => (p.nodeAt === null ? 0 : p.readyAt === null ? 1 : 2);
      u.pods.sort((a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt || b.id - a.id);
      u.pods = u.pods.slice(u.pods.length - desired);
      u.pods.sort((a, b) => a.id - b.id);
    }
  }
}

/**
 * p99 latency of a unit at a utilisation (offered / breaking-point capacity). By the definition
 * of the breaking point it crosses the SLO at utilisation 1; below, it rises gently; beyond, the
 * queue grows and so does latency.
 */
export function p99At(utilisation: number, slo: number): number {
  if (utilisation <= 1) return slo * (0.55 + 0.45 * utilisation * utilisation);
  return Math.min(MAX_LATENCY_SECONDS, slo * (1 + 4 * (utilisation - 1)));
}

function closeMinute(u: UnitWorld, startSecond: number): void {
  u.minutes.push({ startSecond, ...u.minute });
  if (u.minutes.length > METRIC_MINUTES_KEPT) u.minutes.shift();
  u.minute = { requests: 0, latencyMs: null };
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, x));
}
