import type { PoolSignal, UnitScaling } from '../core/types.ts';
import type { FleetSpec, Unit } from '../spec/schema.ts';
import type { ScenarioFile } from './scenario.ts';

/**
 * The simulated world the control loop acts on, failing the way a real fleet fails:
 *
 * - the ALB splits demand by forward weight, then within a target group onto its healthy targets
 *   (health checks lag readiness; with no healthy target it fails open onto every registered
 *   one; with none registered it answers 503 itself, and no model server counts the request);
 * - each model server queues what it cannot serve at once, serves at its breaking point (maxRpm),
 *   and answers 503 at once to what its pods could not start within maxWaitSeconds (its
 *   admission; maxQueue per pod is a hard cap); requests that would wait longer than the
 *   time-out fail (the server's request time-out, the ALB's idle time-out);
 * - KEDA/HPA scale each Deployment on what KEDA's aws-cloudwatch trigger reads: the unit's
 *   RequestCount Sum of the minute ending `kedaMetricEndTimeOffsetSeconds` or more ago, once
 *   CloudWatch has it (the same metric delay the controller sees);
 * - Karpenter launches a node per pod under per-family limits, reuses an empty node of the same
 *   instance type, and terminates a node only once it has been empty for the consolidation time;
 *   every node is billed per second from launch to termination;
 * - each model server's EMF lands in CloudWatch per minute (RequestCount: every request received,
 *   SuccessCount, ErrorCount, p99 Latency on 2xx) some minutes late.
 */

export const HPA_SYNC_SECONDS = 15;
export const HPA_TOLERANCE = 0.1;
export const HPA_SCALE_DOWN_STABILISATION_SECONDS = 300;
/** Karpenter keeps an offering it could not launch in its unavailable cache this long. */
export const ICE_CACHE_SECONDS = 180;

export interface Pod {
  id: number;
  createdAt: number;
  /** When Karpenter gave it a node (launched one, or found an empty one); null while it has none. */
  nodeAt: number | null;
  /** The node it runs on (null while it has none). */
  nodeId: number | null;
  /** When the pod was bound to a registered node (PodScheduled True); null before. */
  scheduledAt: number | null;
  /** When it turned Ready (the model loaded and warmed up); null before. */
  readyAt: number | null;
  /** Seeded spread of start-up times between pods, seconds. */
  jitterSeconds: number;
}

export interface Node {
  id: number;
  family: string;
  instanceType: string;
  pricePerHour: number;
  launchedAt: number;
  /** When the node joins the cluster (pods can be bound from then on). */
  registeredAt: number;
  /** When its last pod left; null while a pod runs on it. */
  emptySince: number | null;
}

/** A pod's phase as the Kubernetes API shows it at a time. */
export type PodPhase = 'unschedulable' | 'starting' | 'ready';

export function podPhase(p: Pod): PodPhase {
  return p.scheduledAt === null ? 'unschedulable' : p.readyAt === null ? 'starting' : 'ready';
}

/**
 * One unit's minute as the model servers' EMF puts it in CloudWatch: `requests` is RequestCount
 * (every request the unit's pods received, refused and timed-out ones included), `success` and
 * `errors` split it by answer, `latencyMs` is the p99 of 2xx answers (null when nothing was
 * served: no Latency datapoint then). `visibleAt` is when the minute can be read from CloudWatch.
 */
export interface UnitMinuteMetrics {
  /** World seconds of the minute's start. */
  startSecond: number;
  requests: number;
  success: number;
  errors: number;
  latencyMs: number | null;
  /** World second from which GetMetricData returns the minute (its end plus the metric delay). */
  visibleAt: number;
}

/** Minutes of per-unit metrics the world keeps: more than CloudWatch's lag plus the 30-minute history. */
export const METRIC_MINUTES_KEPT = 50;

export interface StepFlows {
  offeredRpm: number;
  /** Reached a model server (RequestCount). */
  receivedRpm: number;
  servedRpm: number;
  failedRpm: number;
  /** Of the failed: sent to a target group with no registered target (the ALB's own 503). */
  noTargetRpm: number;
  p99Seconds: number;
  /** Requests waiting in the unit's model-server queues at the end of the step. */
  backlog: number;
}

export interface UnitWorld {
  unit: Unit;
  pods: Pod[];
  scaling: UnitScaling;
  weight: number;
  /** HPA recommendations [at, replicas] kept for the scale-down stabilisation window. */
  recommendations: Array<[number, number]>;
  /** Requests waiting in the unit's model-server queues. */
  backlog: number;
  /** Figures of the last step. */
  last: StepFlows;
  /** Complete minutes of metrics, oldest first (the last METRIC_MINUTES_KEPT). */
  minutes: UnitMinuteMetrics[];
  /** The minute being counted. */
  minute: { requests: number; success: number; errors: number; latencyMs: number | null };
}

export interface StepFigures {
  demandRpm: Record<string, number>;
  costDollars: number;
}

/** The world's own settings, from the scenario (defaults in scenario.ts). */
export interface WorldSettings {
  metricDelaySeconds: number;
  nodeLaunchSeconds: number;
  consolidationSeconds: number;
  healthCheckIntervalSeconds: number;
  healthyThresholdCount: number;
  maxQueuePerPod: number;
  /** The model server's admission: what would wait longer than this for a slot is refused at once. */
  maxWaitSeconds: number;
  /** The shorter of the model server's request time-out and the ALB's idle time-out. */
  timeoutSeconds: number;
  /** The ScaledObject trigger's metricEndTimeOffset: KEDA reads the minute that ended this long ago or more. */
  kedaMetricEndTimeOffsetSeconds: number;
}

export class World {
  readonly units = new Map<string, UnitWorld>();
  readonly signals: PoolSignal[] = [];
  readonly nodes = new Map<number, Node>();
  /** World second of the last step's end. */
  now = -Infinity;
  private readonly refusedAt = new Map<string, number>();
  private nextPodId = 1;
  private nextNodeId = 1;
  private lastHpaAt = -Infinity;
  private readonly stepsPerMinute: number;
  readonly settings: WorldSettings;

  constructor(
    readonly fleet: FleetSpec,
    readonly scenario: ScenarioFile,
    private readonly services: string[],
    private readonly random: () => number,
  ) {
    this.stepsPerMinute = 60 / scenario.stepSeconds;
    this.settings = worldSettings(scenario);
    for (const unit of fleet.units.filter((u) => services.includes(u.service))) {
      const scaling = { minReplicas: unit.minReplicas, maxReplicas: unit.maxReplicas, targetRpm: unit.maxRpm };
      // The listener rule as deployed: every target group forwarded to with the same weight.
      const weight = 1;
      this.units.set(unit.name, {
        unit,
        pods: [],
        scaling,
        weight,
        recommendations: [],
        backlog: 0,
        last: { offeredRpm: 0, receivedRpm: 0, servedRpm: 0, failedRpm: 0, noTargetRpm: 0, p99Seconds: 0, backlog: 0 },
        minutes: [],
        minute: { requests: 0, success: 0, errors: 0, latencyMs: null },
      });
    }
  }

  /**
   * The fleet as first deployed at second `t`: each unit with the ready, healthy pods its even
   * share of the demand needs (at least one), so the world does not start with demand no counter
   * can see (a target group with no target is invisible to every per-unit metric).
   */
  deploy(t: number, demand: Record<string, number>): void {
    this.now = t;
    const healthyAfter = this.settings.healthCheckIntervalSeconds * this.settings.healthyThresholdCount;
    for (const [service, rpm] of Object.entries(demand)) {
      const units = this.unitsOf(service);
      for (const u of units) {
        const pods = clamp(Math.ceil(rpm / units.length / u.unit.maxRpm), Math.max(1, u.scaling.minReplicas), u.scaling.maxReplicas);
        for (let i = 0; i < pods; i++) {
          const since = t - healthyAfter;
          const node: Node = { id: this.nextNodeId++, family: u.unit.family, instanceType: u.unit.instanceType, pricePerHour: u.unit.pricePerHour, launchedAt: since, registeredAt: since, emptySince: null };
          this.nodes.set(node.id, node);
          u.pods.push({ ...this.newPod(since), nodeAt: since, nodeId: node.id, scheduledAt: since, readyAt: since });
        }
        // Settled: the HPA's recent recommendations are what runs, so the minutes before KEDA's
        // first datapoint (it reads the minute that ended 2–3 minutes ago) do not scale it down.
        u.recommendations = [[t, pods]];
      }
    }
  }

  unitsOf(service: string): UnitWorld[] {
    return [...this.units.values()].filter((u) => u.unit.service === service);
  }

  /** The world's start-up time of a unit's pod from its node's launch (the truth; the spec's is the policy's belief). */
  startupOf(unit: Unit): number {
    const s = this.scenario.startupSeconds;
    return s[unit.name] ?? s['default'] ?? unit.startupSeconds;
  }

  /** The capacity limit on a family at a time (seconds), or null when it is unlimited. */
  limitAt(family: string, t: number): number | 'hold' | null {
    const minute = t / 60;
    const w = this.scenario.capacity.find((c) => c.family === family && minute >= c.fromMinute && minute < c.toMinute);
    return w ? w.maxInstances : null;
  }

  nodesOf(family: string): Node[] {
    return [...this.nodes.values()].filter((n) => n.family === family);
  }

  /** Ready pods registered in the unit's target group, and those past the health checks' healthy threshold. */
  targetsOf(u: UnitWorld, t: number = this.now): { registered: number; healthy: number } {
    return { registered: u.pods.filter((p) => p.readyAt !== null).length, healthy: u.pods.filter((p) => this.isHealthy(p, t)).length };
  }

  /** The Load Balancer Controller registers a pod once it is ready; it turns healthy after the healthy threshold of passed checks. */
  isHealthy(p: Pod, t: number = this.now): boolean {
    return p.readyAt !== null && t >= p.readyAt + this.settings.healthCheckIntervalSeconds * this.settings.healthyThresholdCount;
  }

  /** Advances the world by one step ending at `t` (seconds), serving `demand` (rpm per service). */
  step(t: number, demand: Record<string, number>): StepFigures {
    const dt = this.scenario.stepSeconds;
    this.now = t;
    this.enforceLimits(t);
    this.consolidate(t);
    this.placePods(t);
    for (const u of this.units.values()) for (const p of u.pods) this.advancePod(u, p, t);

    for (const [service, rpm] of Object.entries(demand)) this.route(service, rpm, t);
    if (t % 60 === 0) for (const u of this.units.values()) this.closeMinute(u, t - 60);
    if (t - this.lastHpaAt >= HPA_SYNC_SECONDS) {
      this.lastHpaAt = t;
      for (const u of this.units.values()) this.autoscale(u, t);
    }

    let cost = 0;
    for (const n of this.nodes.values()) cost += (n.pricePerHour * dt) / 3600;
    return { demandRpm: demand, costDollars: cost };
  }

  /** A limit below the running count terminates the newest nodes, as reclaimed capacity would. */
  private enforceLimits(t: number): void {
    for (const family of new Set([...this.units.values()].map((u) => u.unit.family))) {
      const limit = this.limitAt(family, t);
      if (typeof limit !== 'number') continue;
      const nodes = this.nodesOf(family).sort((a, b) => b.launchedAt - a.launchedAt || b.id - a.id);
      const excess = nodes.length - limit;
      if (excess <= 0) continue;
      const doomed = new Set(nodes.slice(0, excess).map((n) => n.id));
      for (const id of doomed) this.nodes.delete(id);
      // The pods on them are evicted; the ReplicaSet replaces them with new, Pending ones.
      for (const u of this.units.values()) {
        u.pods = u.pods.map((p) => (p.nodeId !== null && doomed.has(p.nodeId) ? this.newPod(t) : p));
      }
      this.signals.push({ family, kind: 'interruption', at: t * 1000, detail: `${excess} node(s) reclaimed` });
    }
  }

  /** Karpenter's consolidation: a node empty for the consolidation time is terminated (its billing stops). */
  private consolidate(t: number): void {
    for (const n of [...this.nodes.values()]) if (n.emptySince !== null && t - n.emptySince >= this.settings.consolidationSeconds) this.nodes.delete(n.id);
  }

  /**
   * The scheduler and Karpenter: a pod without a node goes onto an empty node of its instance
   * type if there is one, else Karpenter launches one, unless the family is at its limit or in
   * the unavailable cache.
   */
  private placePods(t: number): void {
    for (const u of [...this.units.values()].sort((a, b) => a.unit.name.localeCompare(b.unit.name))) {
      for (const p of u.pods) {
        if (p.nodeId !== null) continue;
        const family = u.unit.family;
        const empty = [...this.nodes.values()].find((n) => n.emptySince !== null && n.instanceType === u.unit.instanceType);
        if (empty) {
          empty.emptySince = null;
          Object.assign(p, { nodeAt: t, nodeId: empty.id });
          continue;
        }
        const refused = this.refusedAt.get(family);
        if (refused !== undefined && t - refused < ICE_CACHE_SECONDS) continue;
        const limit = this.limitAt(family, t);
        const full = limit === 'hold' || (typeof limit === 'number' && this.nodesOf(family).length >= limit);
        if (full) {
          this.refusedAt.set(family, t);
          this.signals.push({ family, kind: 'insufficient-capacity', at: t * 1000, detail: `${u.unit.instanceType}: InsufficientInstanceCapacity` });
          continue;
        }
        const node: Node = { id: this.nextNodeId++, family, instanceType: u.unit.instanceType, pricePerHour: u.unit.pricePerHour, launchedAt: t, registeredAt: t + this.settings.nodeLaunchSeconds, emptySince: null };
        this.nodes.set(node.id, node);
        Object.assign(p, { nodeAt: t, nodeId: node.id });
      }
    }
  }

  /**
   * Bound once its node has joined; ready the world's start-up time after the node's launch
   * (node, image pull, model load, warm-up), or after it was bound when the node was already up.
   */
  private advancePod(u: UnitWorld, p: Pod, t: number): void {
    if (p.nodeId === null || p.readyAt !== null) return;
    const node = this.nodes.get(p.nodeId)!;
    if (p.scheduledAt === null && t >= node.registeredAt) p.scheduledAt = Math.max(node.registeredAt, p.nodeAt!);
    if (p.scheduledAt === null) return;
    const startup = this.startupOf(u.unit);
    const from = node.launchedAt === p.nodeAt ? p.nodeAt + Math.max(startup, this.settings.nodeLaunchSeconds) : p.scheduledAt + Math.max(0, startup - this.settings.nodeLaunchSeconds);
    if (t >= from + p.jitterSeconds) p.readyAt = t;
  }

  /** The ALB: split by weight, then onto each target group's healthy targets (or every registered one: fail-open). */
  private route(service: string, rpm: number, t: number): void {
    const units = this.unitsOf(service);
    const total = units.reduce((s, u) => s + u.weight, 0);
    for (const u of units) {
      const offered = total > 0 ? (rpm * u.weight) / total : 0;
      const { registered, healthy } = this.targetsOf(u, t);
      u.last = this.serve(u, offered, healthy > 0 ? healthy : registered);
      const perStep = 1 / this.stepsPerMinute;
      u.minute.requests += u.last.receivedRpm * perStep;
      u.minute.success += u.last.servedRpm * perStep;
      u.minute.errors += (u.last.receivedRpm - u.last.servedRpm) * perStep;
      if (u.last.servedRpm > 0) u.minute.latencyMs = Math.max(u.minute.latencyMs ?? 0, u.last.p99Seconds * 1000);
    }
  }

  /**
   * One step of a unit's model servers as a fluid queue: arrivals join the queue, the pods serve
   * at their breaking point, what is over the queue's bound is refused (503), and what would wait
   * longer than the time-out fails. p99 is the latency at the utilisation plus the queue's wait.
   */
  private serve(u: UnitWorld, offered: number, targets: number): StepFlows {
    const dt = this.scenario.stepSeconds;
    const slo = this.sloOf(u.unit.service);
    if (targets === 0) {
      // No target: the ALB answers 503 itself. Queued requests die with the last pod.
      const lost = u.backlog;
      u.backlog = 0;
      return { offeredRpm: offered, receivedRpm: 0, servedRpm: 0, failedRpm: offered + (lost * 60) / dt, noTargetRpm: offered, p99Seconds: 0, backlog: 0 };
    }
    const ratePerSecond = (targets * u.unit.maxRpm) / 60;
    const arrivals = (offered * dt) / 60;
    const queued = u.backlog + arrivals;
    const served = Math.min(queued, ratePerSecond * dt);
    let backlog = queued - served;
    // Admission: the queue holds what the pods can start within maxWaitSeconds, at most maxQueue each.
    const refused = Math.max(0, backlog - Math.min(targets * this.settings.maxQueuePerPod, ratePerSecond * this.settings.maxWaitSeconds));
    backlog -= refused;
    const timedOut = Math.max(0, backlog - ratePerSecond * this.settings.timeoutSeconds);
    backlog -= timedOut;
    u.backlog = backlog;
    const utilisation = offered / (ratePerSecond * 60);
    const wait = backlog / ratePerSecond;
    const toRpm = (n: number) => (n * 60) / dt;
    return {
      offeredRpm: offered,
      receivedRpm: offered,
      servedRpm: toRpm(served),
      failedRpm: toRpm(refused + timedOut),
      noTargetRpm: 0,
      p99Seconds: served > 0 ? p99At(Math.min(1, utilisation), slo) + wait : 0,
      backlog,
    };
  }

  sloOf(service: string): number {
    return this.fleet.services[service]?.sloSeconds ?? 0.9;
  }

  private closeMinute(u: UnitWorld, startSecond: number): void {
    u.minutes.push({ startSecond, ...u.minute, visibleAt: startSecond + 60 + this.settings.metricDelaySeconds });
    if (u.minutes.length > METRIC_MINUTES_KEPT) u.minutes.shift();
    u.minute = { requests: 0, success: 0, errors: 0, latencyMs: null };
  }

  /**
   * What KEDA's aws-cloudwatch trigger returns at second `t` (the rendered ScaledObject:
   * metricStat Sum, metricStatPeriod 60, metricCollectionTime 60): GetMetricData from
   * floor((t − offset) / 60)·60 − 60 to that end, the newest datapoint; a minute CloudWatch does
   * not have yet, or one with no request, returns minMetricValue (0).
   */
  kedaMetric(u: UnitWorld, t: number): number {
    const end = Math.floor((t - this.settings.kedaMetricEndTimeOffsetSeconds) / 60) * 60;
    const minute = u.minutes.find((m) => m.startSecond === end - 60);
    return minute && minute.visibleAt <= t ? minute.requests : 0;
  }

  /** KEDA/HPA: AverageValue on the trigger's per-minute RequestCount, 10% tolerance, up now, down after 300 s. */
  private autoscale(u: UnitWorld, t: number): void {
    const metric = this.kedaMetric(u, t);
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

  private newPod(t: number): Pod {
    return { id: this.nextPodId++, createdAt: t, nodeAt: null, nodeId: null, scheduledAt: null, readyAt: null, jitterSeconds: Math.round((this.random() - 0.5) * 60) };
  }

  private resize(u: UnitWorld, desired: number, t: number): void {
    while (u.pods.length < desired) u.pods.push(this.newPod(t));
    if (u.pods.length > desired) {
      // The ReplicaSet deletes unscheduled pods first, then not-ready, then the newest ready ones.
      const rank = (p: Pod) => (p.nodeId === null ? 0 : p.readyAt === null ? 1 : 2);
      u.pods.sort((a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt || b.id - a.id);
      for (const gone of u.pods.slice(0, u.pods.length - desired)) {
        // The node stays, empty, until Karpenter consolidates it.
        const node = gone.nodeId === null ? undefined : this.nodes.get(gone.nodeId);
        if (node) node.emptySince = t;
      }
      u.pods = u.pods.slice(u.pods.length - desired);
      u.pods.sort((a, b) => a.id - b.id);
    }
  }
}

export function worldSettings(s: ScenarioFile): WorldSettings {
  return {
    metricDelaySeconds: s.metricDelaySeconds,
    nodeLaunchSeconds: s.nodeLaunchSeconds,
    consolidationSeconds: s.consolidationSeconds,
    healthCheckIntervalSeconds: s.alb.healthCheckIntervalSeconds,
    healthyThresholdCount: s.alb.healthyThresholdCount,
    maxQueuePerPod: s.modelServer.maxQueue,
    maxWaitSeconds: s.modelServer.maxWaitSeconds,
    timeoutSeconds: Math.min(s.alb.idleTimeoutSeconds, s.modelServer.requestTimeoutSeconds),
    kedaMetricEndTimeOffsetSeconds: s.keda.metricEndTimeOffsetSeconds,
  };
}

/**
 * p99 latency of a unit at a utilisation (offered / breaking-point capacity) with no queue. By
 * the definition of the breaking point it reaches the SLO at utilisation 1; beyond it the queue
 * grows and its wait is added (World.serve).
 */
export function p99At(utilisation: number, slo: number): number {
  const u = Math.min(1, Math.max(0, utilisation));
  return slo * (0.55 + 0.45 * u * u);
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, x));
}
