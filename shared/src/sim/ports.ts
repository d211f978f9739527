import type { Alert, ControllerState, UnitScaling } from '../core/types.ts';
import { initialControllerState } from '../core/state.ts';
import type { Clock, LeasePort, Ports, StateStore, StoredState, UnitMetrics, UnitPods } from '../reconcile/ports.ts';
import { MINUTE_MS, requestMinutes } from '../reconcile/request-minutes.ts';
import { podPhase, type World } from './world.ts';

/**
 * The reconcile ports over the simulated world: what the AWS and Kubernetes adapters do for
 * real, done in-process. Like the real ones, they copy data in and out so the core cannot touch
 * the world except through a plan.
 *
 * Metrics are read as the CloudWatch adapter reads them (cloudwatch-metrics.ts, its defaults):
 * the model servers' RequestCount (every request received, refused ones included) of the last
 * complete minute that ended at least METRICS_LAG_SECONDS before the tick, and the
 * HISTORY_MINUTES before it; a minute without a request reads 0 once CloudWatch has delivered it,
 * and a minute CloudWatch does not have yet (the world's metric delay) is not observed, exactly as
 * the adapter reads them (`requestMinutes`). Requests the ALB
 * answered itself (a target group with no registered target) reach no model server: no counter
 * has them. Pods are counted as the Kubernetes adapter counts them: pending only when the
 * scheduler has no node for them (Unschedulable), starting when bound and not ready. Target
 * health is the ALB's, which lags readiness by its health checks.
 *
 * Times: world second `s` is clock time `epochMs + s * 1000` (the twin maps the world onto recent
 * real time so CloudWatch and the apiserver take its timestamps).
 */
export const HISTORY_MINUTES = 30;
export const METRICS_LAG_SECONDS = 120;

export function simPorts(world: World, clock: Clock, alerts: Alert[], epochMs = 0): Ports & { store: MemoryStateStore; lease: MemoryLease } {
  const unit = (name: string) => {
    const u = world.units.get(name);
    if (!u) throw new Error(`unit ${name} is not in the simulated world`);
    return u;
  };
  return {
    clock,
    metrics: {
      async readUnitMetrics(units, at) {
        const out: Record<string, UnitMetrics> = {};
        const end = Math.floor((at - METRICS_LAG_SECONDS * 1000) / MINUTE_MS) * MINUTE_MS;
        const last = end - MINUTE_MS;
        const nowSecond = (at - epochMs) / 1000;
        const requests = new Map<string, Map<number, number>>();
        const latencyMs = new Map<string, number | null | undefined>();
        for (const { name } of units) {
          const u = world.units.get(name);
          if (!u) continue;
          // What CloudWatch holds: the minutes that had a request and whose data has arrived.
          const visible = u.minutes.filter((m) => m.visibleAt <= nowSecond && m.requests > 0);
          requests.set(name, new Map(visible.map((m) => [epochMs + m.startSecond * 1000, m.requests])));
          latencyMs.set(name, visible.find((m) => epochMs + m.startSecond * 1000 === last)?.latencyMs);
        }
        for (const [name, known] of requestMinutes(requests, end - HISTORY_MINUTES * MINUTE_MS, end)) {
          const ms = latencyMs.get(name);
          out[name] = { ...known, p99Seconds: ms == null ? null : ms / 1000 };
        }
        return out;
      },
    },
    signals: {
      async readSignals(families, since) {
        return world.signals.map((s) => ({ ...s, at: epochMs + s.at })).filter((s) => families.includes(s.family) && s.at >= since);
      },
    },
    cluster: {
      async readPods(units) {
        const now = (clock.now() - epochMs) / 1000;
        const out: Record<string, UnitPods> = {};
        for (const { name } of units) {
          const u = world.units.get(name);
          if (!u) continue;
          // Unschedulable until its node has joined the cluster (or while Karpenter is refused).
          const pending = u.pods.filter((p) => podPhase(p) === 'unschedulable');
          out[name] = {
            readyPods: u.pods.filter((p) => podPhase(p) === 'ready').length,
            desiredPods: u.pods.length,
            pendingPods: pending.length,
            oldestPendingSeconds: pending.length ? Math.floor(now - Math.min(...pending.map((p) => p.createdAt))) : 0,
            startingPods: u.pods.filter((p) => podPhase(p) === 'starting').length,
          };
        }
        return out;
      },
    },
    router: {
      async readRoute(service) {
        const units = world.unitsOf(service);
        return {
          weights: Object.fromEntries(units.map((u) => [u.unit.name, u.weight])),
          health: Object.fromEntries(units.map((u) => [u.unit.name, world.targetsOf(u, (clock.now() - epochMs) / 1000)])),
        };
      },
      async setWeights(_service, units, weights) {
        for (const u of units) unit(u.name).weight = weights[u.name] ?? 0;
      },
    },
    autoscaler: {
      async readScaling(units) {
        return Object.fromEntries(units.filter((u) => world.units.has(u.name)).map((u) => [u.name, { ...unit(u.name).scaling }]));
      },
      async setScaling(u, scaling: UnitScaling) {
        unit(u.name).scaling = { ...scaling };
      },
    },
    store: new MemoryStateStore(),
    lease: new MemoryLease(clock),
    notifier: {
      async notify(sent) {
        alerts.push(...sent);
      },
    },
  };
}

/** A state store with the conditional write of the real one. */
export class MemoryStateStore implements StateStore {
  private state: ControllerState = initialControllerState();
  private version: number | null = null;

  async load(): Promise<StoredState> {
    return { state: structuredClone(this.state), version: this.version };
  }

  async save(state: ControllerState, expectedVersion: number | null): Promise<boolean> {
    if (expectedVersion !== this.version) return false;
    this.state = structuredClone(state);
    this.version = (this.version ?? 0) + 1;
    return true;
  }
}

/** The lease with the conditional write and expiry of the DynamoDB one, on the world's clock. */
export class MemoryLease implements LeasePort {
  private holder: string | null = null;
  private expiresAtMs = 0;

  constructor(private readonly clock: Clock) {}

  async acquire(holder: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    if (this.holder !== null && this.holder !== holder && this.expiresAtMs > now) return false;
    this.holder = holder;
    this.expiresAtMs = now + ttlMs;
    return true;
  }

  async release(holder: string): Promise<void> {
    if (this.holder === holder) this.holder = null;
  }
}
