import type { Alert, ControllerState, UnitScaling } from '../core/types.ts';
import { initialControllerState } from '../core/state.ts';
import type { Ports, StateStore, StoredState, UnitMetrics, UnitPods } from '../reconcile/ports.ts';
import type { World } from './world.ts';

/**
 * The reconcile ports over the simulated world: what the AWS and Kubernetes adapters do for
 * real, done in-process. Like the real ones, they copy data in and out so the core cannot touch
 * the world except through a plan.
 */
export function simPorts(world: World, clock: { now(): number }, alerts: Alert[]): Ports & { store: MemoryStateStore } {
  const unit = (name: string) => {
    const u = world.units.get(name);
    if (!u) throw new Error(`unit ${name} is not in the simulated world`);
    return u;
  };
  return {
    clock,
    metrics: {
      async readUnitMetrics(units) {
        const out: Record<string, UnitMetrics> = {};
        for (const { name } of units) {
          const u = world.units.get(name);
          if (!u) continue;
          const window = u.offeredWindow;
          out[name] = { rpm: window.length ? window.reduce((s, x) => s + x, 0) / window.length : 0, p99Seconds: u.last.p99Seconds || null };
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
          const pending = u.pods.filter((p) => p.nodeAt === null);
          out[name] = {
            readyPods: u.pods.filter((p) => p.readyAt !== null).length,
            desiredPods: u.pods.length,
            pendingPods: pending.length,
            oldestPendingSeconds: pending.length ? now - Math.min(...pending.map((p) => p.createdAt)) : 0,
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
