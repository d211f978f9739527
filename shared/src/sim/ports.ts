import type { Alert, ControllerState, UnitScaling } from '../core/types.ts';
import { initialControllerState } from '../core/state.ts';
import type { Clock, LeasePort, Ports, StateStore, StoredState, UnitMetrics, UnitPods } from '../reconcile/ports.ts';
import type { World } from './world.ts';

/**
 * The reconcile ports over the simulated world: what the AWS and Kubernetes adapters do for
 * real, done in-process. Like the real ones, they copy data in and out so the core cannot touch
 * the world except through a plan.
 *
 * Metrics are not lagged: the world's CloudWatch is punctual. The per-minute history is what
 * the metrics port has seen at its reads (one a tick), up to the 30 minutes CloudWatch returns.
 */
export const HISTORY_MINUTES = 30;

export function simPorts(world: World, clock: Clock, alerts: Alert[]): Ports & { store: MemoryStateStore; lease: MemoryLease } {
  const unit = (name: string) => {
    const u = world.units.get(name);
    if (!u) throw new Error(`unit ${name} is not in the simulated world`);
    return u;
  };
  const stepsPerMinute = 60 / world.scenario.stepSeconds;
  const histories = new Map<string, Array<[number, number]>>();
  return {
    clock,
    metrics: {
      async readUnitMetrics(units) {
        const out: Record<string, UnitMetrics> = {};
        // The minute that ended at (or last before) now, as CloudWatch would stamp it.
        const minute = Math.floor(clock.now() / 60_000) * 60_000 - 60_000;
        for (const { name } of units) {
          const u = world.units.get(name);
          if (!u) continue;
          const window = u.offeredWindow;
          const rpm = window.length ? window.reduce((s, x) => s + x, 0) / window.length : 0;
          const history = histories.get(name) ?? [];
          // Only a full minute of steps is a complete minute.
          if (window.length === stepsPerMinute && history.at(-1)?.[0] !== minute) {
            history.push([minute, rpm]);
            if (history.length > HISTORY_MINUTES) history.shift();
            histories.set(name, history);
          }
          out[name] = { rpm, p99Seconds: u.last.p99Seconds || null, rpmHistory: history.map(([m, r]) => [m, r]) };
        }
        return out;
      },
    },
    signals: {
      async readSignals(families, since) {
        return world.signals.filter((s) => families.includes(s.family) && s.at >= since).map((s) => ({ ...s }));
      },
    },
    cluster: {
      async readPods(units) {
        const now = clock.now() / 1000;
        const out: Record<string, UnitPods> = {};
        for (const { name } of units) {
          const u = world.units.get(name);
          if (!u) continue;
          // No node means Karpenter could not launch one: the pod is unschedulable.
          const pending = u.pods.filter((p) => p.nodeAt === null);
          out[name] = {
            readyPods: u.pods.filter((p) => p.readyAt !== null).length,
            desiredPods: u.pods.length,
            pendingPods: pending.length,
            oldestPendingSeconds: pending.length ? now - Math.min(...pending.map((p) => p.createdAt)) : 0,
            startingPods: u.pods.filter((p) => p.nodeAt !== null && p.readyAt === null).length,
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
          health: Object.fromEntries(
            units.map((u) => {
              const ready = u.pods.filter((p) => p.readyAt !== null).length;
              return [u.unit.name, { healthy: ready, registered: ready }];
            }),
          ),
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
