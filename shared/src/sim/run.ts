import type { Alert, Mode, UnitScaling } from '../core/types.ts';
import type { Clock } from '../reconcile/ports.ts';
import { runTick } from '../reconcile/tick.ts';
import type { FleetSpec, PolicyKind } from '../spec/schema.ts';
import { simPorts } from './ports.ts';
import type { Scenario } from './scenario.ts';
import type { PolicyRun, PolicySummary, SimEvent, SimulationResult, TimelineRow, UnitMinute } from './types.ts';
import { World } from './world.ts';

/** Runs the same control loop as the Lambda, tick by tick, against the simulated world. */

export interface SimulateOptions {
  policies: ReadonlyArray<PolicyKind>;
  /** Called now and then with the policy and the fraction of its run done. */
  onProgress?: (policy: PolicyKind, fraction: number) => void;
  /** Clock time (epoch ms) of the scenario's minute 0; default 0. Must be a whole minute. */
  epochMs?: number;
  /** Stop after this many ticks (warm-up ticks included); default: the whole scenario. */
  maxTicks?: number;
  /** Called after every tick with what it left in the world. */
  onTick?: (tick: TickRecord) => void;
  /** What runs the ticks; default: runTick on the in-process ports (simPorts). */
  controller?: ControllerFactory;
}

/** What runs one tick of the control loop against the world. */
export interface Controller {
  /** Runs the tick at world second `second`; when it resolves, the world holds the weights and scaling the tick left. */
  tick(second: number): Promise<ControllerTick>;
}

export interface ControllerTick {
  services: Array<{ service: string; mode: Mode; reasons: string[] }>;
  /** Alerts the tick sent. */
  alerts: Alert[];
}

export interface RunContext {
  fleet: FleetSpec;
  world: World;
  policy: PolicyKind;
  /** The controller's clock: epochMs + the world's current second. */
  clock: Clock;
  epochMs: number;
}

export type ControllerFactory = (run: RunContext) => Promise<Controller>;

/** One tick as the world saw it: the modes decided, and the weights and KEDA settings live after it. */
export interface TickRecord {
  /** World second of the tick (negative during warm-up). */
  second: number;
  services: Array<{ service: string; mode: Mode; weights: Record<string, number>; scaling: Record<string, UnitScaling> }>;
}

/** The in-process controller: the reconcile tick on ports over the world itself. */
export const inProcessController: ControllerFactory = async ({ fleet, world, policy, clock, epochMs }) => {
  const alerts: Alert[] = [];
  const ports = simPorts(world, clock, alerts, epochMs);
  return {
    async tick() {
      const result = await runTick(fleet, ports, { policy });
      return { services: result.decision.services, alerts: alerts.splice(0) };
    },
  };
};

export async function simulate(scenario: Scenario, options: SimulateOptions): Promise<SimulationResult> {
  const services = Object.keys(scenario.demand).sort();
  const fleet = fleetFor(scenario.fleet, services);
  const runs: PolicyRun[] = [];
  for (const policy of options.policies) runs.push(await runPolicy(scenario, fleet, services, policy, options));
  return {
    scenario: {
      name: scenario.file.name,
      durationMinutes: scenario.file.durationMinutes,
      stepSeconds: scenario.file.stepSeconds,
      seed: scenario.file.seed,
      services: Object.fromEntries(services.map((s) => [s, { sloSeconds: fleet.services[s]!.sloSeconds, units: fleet.units.filter((u) => u.service === s).map((u) => u.name) }])),
      capacity: scenario.file.capacity.map((c) => ({ ...c })),
    },
    runs,
  };
}

/** Only the services the scenario drives are simulated. */
function fleetFor(fleet: FleetSpec, services: string[]): FleetSpec {
  return {
    ...fleet,
    services: Object.fromEntries(Object.entries(fleet.services).filter(([name]) => services.includes(name))),
    units: fleet.units.filter((u) => services.includes(u.service)),
  };
}

async function runPolicy(
  scenario: Scenario,
  fleet: FleetSpec,
  services: string[],
  policy: PolicyKind,
  options: SimulateOptions,
): Promise<PolicyRun> {
  const { file } = scenario;
  const { onProgress, epochMs = 0, maxTicks = Infinity } = options;
  const dt = file.stepSeconds;
  const tick = fleet.policy.tickSeconds;
  const world = new World(fleet, file, services, mulberry32(file.seed));
  let nowSeconds = -file.warmupMinutes * 60;
  const clock = { now: () => epochMs + nowSeconds * 1000 };
  const controller = await (options.controller ?? inProcessController)({ fleet, world, policy, clock, epochMs });
  let ticks = 0;

  const timeline: TimelineRow[] = [];
  const events: SimEvent[] = [];
  const modes: Record<string, Mode> = Object.fromEntries(services.map((s) => [s, 'cost' as Mode]));
  const end = file.durationMinutes * 60;
  const minute = new MinuteAccumulator(world, services);
  let cumulativeCost = 0;
  let lastReported = -1;
  let signalsSeen = 0;

  for (; nowSeconds < end; nowSeconds += dt) {
    // Scheduled every tick; an EC2 interruption (an EventBridge event in production) triggers one at once.
    const interrupted = world.signals.length > signalsSeen && world.signals.slice(signalsSeen).some((sig) => sig.kind === 'interruption');
    signalsSeen = world.signals.length;
    if (nowSeconds % tick === 0 || interrupted) {
      if (ticks++ >= maxTicks) break;
      const result = await controller.tick(nowSeconds);
      options.onTick?.(tickRecord(world, nowSeconds, result));
      const at = Math.max(0, Math.floor(nowSeconds / 60));
      for (const d of result.services) {
        if (nowSeconds >= 0 && d.mode !== modes[d.service]) {
          events.push({ minute: at, service: d.service, kind: 'mode-changed', message: `${modes[d.service]} → ${d.mode}: ${d.reasons[0] ?? ''}` });
        }
        modes[d.service] = d.mode;
        if (nowSeconds < 0) continue;
        for (const r of d.reasons) {
          if (r.startsWith('pool ')) events.push({ minute: at, service: d.service, kind: 'shortage-started', message: r });
          else if (r.startsWith('probe') || r.startsWith('probing')) events.push({ minute: at, service: d.service, kind: r.includes('succeeded') ? 'shortage-ended' : 'probe', message: r });
        }
      }
      if (nowSeconds >= 0) for (const a of result.alerts) if (a.kind !== 'mode-changed') events.push({ minute: at, service: a.service, kind: 'alert', message: a.message });
    }
    const t = nowSeconds + dt;
    const demandMinute = Math.max(0, nowSeconds / 60);
    const demand = Object.fromEntries(services.map((s) => [s, scenario.demand[s]!(demandMinute)]));
    const figures = world.step(t, demand);
    if (nowSeconds < 0) continue;
    cumulativeCost += figures.costDollars;
    minute.add(demand);
    if (t % 60 === 0) {
      timeline.push(...minute.flush(t / 60 - 1, modes, cumulativeCost));
      const done = Math.floor((t / end) * 20);
      if (onProgress && done !== lastReported) {
        lastReported = done;
        onProgress(policy, t / end);
      }
    }
  }
  return { summary: summarise(policy, timeline, events, scenario), timeline, events };
}

function tickRecord(world: World, second: number, result: ControllerTick): TickRecord {
  return {
    second,
    services: result.services.map(({ service, mode }) => {
      const units = world.unitsOf(service);
      return {
        service,
        mode,
        weights: Object.fromEntries(units.map((u) => [u.unit.name, u.weight])),
        scaling: Object.fromEntries(units.map((u) => [u.unit.name, { ...u.scaling }])),
      };
    }),
  };
}

/** Sums a minute of steps into one timeline row per service. */
class MinuteAccumulator {
  private steps = 0;
  private demand: Record<string, number> = {};
  private units: Record<string, { offered: number; served: number; failed: number; p99: number }> = {};

  constructor(
    private readonly world: World,
    private readonly services: string[],
  ) {}

  add(demand: Record<string, number>): void {
    this.steps += 1;
    for (const s of this.services) this.demand[s] = (this.demand[s] ?? 0) + (demand[s] ?? 0);
    for (const u of this.world.units.values()) {
      const acc = (this.units[u.unit.name] ??= { offered: 0, served: 0, failed: 0, p99: 0 });
      acc.offered += u.last.offeredRpm;
      acc.served += u.last.servedRpm;
      acc.failed += u.last.failedRpm;
      acc.p99 = Math.max(acc.p99, u.last.p99Seconds);
    }
  }

  flush(minute: number, modes: Record<string, Mode>, cumulativeCost: number): TimelineRow[] {
    const n = Math.max(1, this.steps);
    const rows = this.services.map((service): TimelineRow => {
      const units: Record<string, UnitMinute> = {};
      let served = 0;
      let failed = 0;
      let costPerHour = 0;
      for (const u of this.world.unitsOf(service)) {
        const acc = this.units[u.unit.name] ?? { offered: 0, served: 0, failed: 0, p99: 0 };
        const withNode = u.pods.filter((p) => p.nodeAt !== null);
        const ready = withNode.filter((p) => p.readyAt !== null).length;
        const unitCost = withNode.length * u.unit.pricePerHour;
        costPerHour += unitCost;
        served += acc.served / n;
        failed += acc.failed / n;
        units[u.unit.name] = {
          weight: u.weight,
          offeredRpm: acc.offered / n,
          servedRpm: acc.served / n,
          failedRpm: acc.failed / n,
          readyPods: ready,
          startingPods: withNode.length - ready,
          pendingPods: u.pods.length - withNode.length,
          p99Seconds: acc.p99,
          minReplicas: u.scaling.minReplicas,
          targetRpm: u.scaling.targetRpm,
          costPerHour: unitCost,
        };
      }
      const p99 = Math.max(0, ...Object.values(units).filter((u) => served > 0 && u.servedRpm >= 0.01 * served).map((u) => u.p99Seconds));
      return {
        minute,
        service,
        mode: modes[service] ?? 'cost',
        demandRpm: (this.demand[service] ?? 0) / n,
        servedRpm: served,
        failedRpm: failed,
        p99Seconds: p99,
        costPerHour,
        cumulativeCost,
        units,
      };
    });
    this.steps = 0;
    this.demand = {};
    this.units = {};
    return rows;
  }
}

function summarise(policy: string, timeline: TimelineRow[], events: SimEvent[], scenario: Scenario): PolicySummary {
  const served = timeline.reduce((s, r) => s + r.servedRpm, 0);
  const failed = timeline.reduce((s, r) => s + r.failedRpm, 0);
  const totalCost = timeline.at(-1)?.cumulativeCost ?? 0;
  const slo = (service: string) => scenario.fleet.services[service]?.sloSeconds ?? 0.9;
  return {
    policy,
    totalCost: round(totalCost, 2),
    costPerMillion: served > 0 ? round((totalCost / served) * 1e6, 2) : 0,
    servedRequests: Math.round(served),
    failedRequests: Math.round(failed),
    minutesOverSlo: timeline.filter((r) => r.p99Seconds > slo(r.service) + 1e-9).length,
    modeSwitches: events.filter((e) => e.kind === 'mode-changed').length,
    minutesToShift: minutesToShift(timeline, scenario),
  };
}

/**
 * Minutes from the first shortage's start until traffic moved off the short pool: the first
 * minute whose forward-weight share of that pool's units is a point or more below its share when
 * the shortage began. Null when nothing was short, or traffic never moved.
 */
function minutesToShift(timeline: TimelineRow[], scenario: Scenario): number | null {
  const first = [...scenario.file.capacity].sort((a, b) => a.fromMinute - b.fromMinute)[0];
  if (!first) return null;
  const units = new Set(scenario.fleet.units.filter((u) => u.family === first.family).map((u) => u.name));
  const share = (r: TimelineRow) => {
    const all = Object.values(r.units).reduce((s, u) => s + u.weight, 0);
    const pool = Object.entries(r.units).reduce((s, [n, u]) => s + (units.has(n) ? u.weight : 0), 0);
    return all > 0 ? pool / all : 0;
  };
  const rows = timeline.filter((r) => Object.keys(r.units).some((n) => units.has(n)));
  const start = rows.find((r) => r.minute >= first.fromMinute);
  if (!start) return null;
  const before = share(start);
  const moved = rows.find((r) => r.minute >= first.fromMinute && r.minute < first.toMinute && share(r) < before - 0.01);
  return moved ? moved.minute - first.fromMinute : null;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A small seeded PRNG, so the same scenario seed gives the same run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
