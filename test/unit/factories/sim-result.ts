/**
 * Synthetic SimulationResults for the report tests: a seed-like fleet (five sd21 units), cosine
 * demand, an inf2 shortage, and one run per policy with plausible per-minute figures. Not the
 * simulator — just data of the right shape, deterministic, with overrides.
 */
import type { Mode } from '../../../shared/src/core/types.ts';
import type {
  PolicyRun,
  PolicySummary,
  ShortageWindow,
  SimEvent,
  SimulationResult,
  TimelineRow,
  UnitMinute,
} from '../../../shared/src/sim/types.ts';

export interface FactoryUnit {
  name: string;
  family: string;
  pricePerHour: number;
  maxRpm: number;
  latencySeconds: number;
  costWeight: number;
}

export const SEED_UNITS: FactoryUnit[] = [
  { name: 'sd21-inf2-neuron', family: 'inf2', pricePerHour: 0.7582, maxRpm: 105, latencySeconds: 0.67, costWeight: 40 },
  { name: 'sd21-trn1-neuron', family: 'trn1', pricePerHour: 1.3438, maxRpm: 130, latencySeconds: 0.51, costWeight: 20 },
  { name: 'sd21-g5-triton', family: 'g5', pricePerHour: 1.006, maxRpm: 90, latencySeconds: 0.68, costWeight: 15 },
  { name: 'sd21-g6-triton', family: 'g6', pricePerHour: 0.8048, maxRpm: 61, latencySeconds: 0.96, costWeight: 10 },
  { name: 'sd21-g5-cuda', family: 'g5', pricePerHour: 1.006, maxRpm: 60, latencySeconds: 0.92, costWeight: 15 },
];

export const SEED_POLICIES = ['static-cost', 'static-capacity', 'step', 'optimizer'];

export function makeUnitMinute(overrides: Partial<UnitMinute> = {}): UnitMinute {
  return {
    weight: 20,
    offeredRpm: 100,
    servedRpm: 100,
    failedRpm: 0,
    readyPods: 2,
    startingPods: 0,
    pendingPods: 0,
    p99Seconds: 0.7,
    minReplicas: 1,
    targetRpm: 90,
    costPerHour: 2,
    ...overrides,
  };
}

export function makeTimelineRow(overrides: Partial<TimelineRow> = {}): TimelineRow {
  return {
    minute: 0,
    service: 'sd21',
    mode: 'cost',
    demandRpm: 100,
    servedRpm: 100,
    failedRpm: 0,
    p99Seconds: 0.7,
    costPerHour: 2,
    cumulativeCost: 0,
    units: { 'sd21-inf2-neuron': makeUnitMinute() },
    ...overrides,
  };
}

export function makePolicySummary(overrides: Partial<PolicySummary> = {}): PolicySummary {
  return {
    policy: 'static-cost',
    totalCost: 1234.5,
    costPerMillion: 12.345,
    servedRequests: 1_000_000,
    failedRequests: 0,
    minutesOverSlo: 0,
    modeSwitches: 0,
    minutesToShift: null,
    ...overrides,
  };
}

export interface SimResultOptions {
  minutes?: number;
  policies?: string[];
  services?: string[];
  units?: FactoryUnit[];
  capacity?: ShortageWindow[];
  sloSeconds?: number;
  name?: string;
  /** Demand: min and max requests per minute, period in minutes (cosine, starting at the max). */
  demand?: { minRpm: number; maxRpm: number; periodMinutes: number };
  /** Minutes a new pod takes to become ready. */
  startupMinutes?: number;
}

function modeFor(policy: string, minute: number, shortage: ShortageWindow | undefined): Mode {
  if (policy === 'static-capacity') return 'capacity';
  if (policy !== 'step' || !shortage) return 'cost';
  // step: fails over 5 minutes into the shortage, falls back 30 minutes after it ends.
  return minute >= shortage.fromMinute + 5 && minute < shortage.toMinute + 30 ? 'capacity' : 'cost';
}

/** One policy's run over a seed-like scenario. */
export function makePolicyRun(policy: string, options: SimResultOptions = {}): PolicyRun {
  const minutes = options.minutes ?? 180;
  const services = options.services ?? ['sd21'];
  const units = options.units ?? SEED_UNITS;
  const slo = options.sloSeconds ?? 0.9;
  const demand = options.demand ?? { minRpm: 40, maxRpm: 2960, periodMinutes: Math.max(60, minutes / 3) };
  const startup = options.startupMinutes ?? 10;
  const capacity = options.capacity ?? defaultCapacity(minutes);
  const shortage = capacity[0];
  const meanMax = units.reduce((s, u) => s + u.maxRpm, 0) / Math.max(1, units.length);

  const timeline: TimelineRow[] = [];
  const events: SimEvent[] = [];
  const summary: PolicySummary = {
    policy,
    totalCost: 0,
    costPerMillion: 0,
    servedRequests: 0,
    failedRequests: 0,
    minutesOverSlo: 0,
    modeSwitches: 0,
    minutesToShift: null,
  };
  for (const [si, service] of services.entries()) {
    const desiredHistory: number[][] = [];
    let cumulative = 0;
    let lastMode: Mode | undefined;
    let heldInf2 = 0;
    for (let t = 0; t < minutes; t++) {
      const mode = modeFor(policy, t, shortage);
      if (lastMode !== undefined && mode !== lastMode) {
        events.push({ minute: t, service, kind: 'mode-changed', message: `${lastMode} -> ${mode}` });
        if (si === 0) summary.modeSwitches++;
        if (mode === 'capacity' && summary.minutesToShift === null && shortage) summary.minutesToShift = t - shortage.fromMinute;
      }
      lastMode = mode;
      if (shortage && t === shortage.fromMinute) events.push({ minute: t, service, kind: 'shortage-started', message: `${shortage.family} short` });
      if (shortage && t === shortage.toMinute) events.push({ minute: t, service, kind: 'shortage-ended', message: `${shortage.family} back` });
      const inShortage = shortage !== undefined && t >= shortage.fromMinute && t < shortage.toMinute;

      const wave = (1 + Math.cos((2 * Math.PI * t) / demand.periodMinutes)) / 2;
      const noise = 1 + 0.03 * Math.sin(t * 1.7 + si) + 0.02 * Math.sin(t * 0.37);
      const demandRpm = (demand.minRpm + (demand.maxRpm - demand.minRpm) * wave) * noise * (si === 0 ? 1 : 0.4);

      // Targets and weights as the mode would set them.
      const targets = units.map((u) => (mode === 'capacity' ? Math.min(meanMax, u.maxRpm) : u.maxRpm * (policy === 'optimizer' ? 0.85 : 1)));
      const prevReady = units.map((_, i) => {
        const back = desiredHistory[t - startup];
        return back ? (back[i] ?? 1) : 1;
      });
      const shortUnit = (i: number): boolean => inShortage && units[i]?.family === shortage?.family;
      if (shortage && t === shortage.fromMinute) heldInf2 = prevReady[units.findIndex((u) => u.family === shortage.family)] ?? 0;

      let rawWeights: number[];
      if (mode === 'capacity') rawWeights = prevReady.map((r, i) => (shortUnit(i) ? Math.min(r, heldInf2) : r));
      else rawWeights = units.map((u) => u.costWeight);
      if (policy === 'optimizer' && inShortage) rawWeights = rawWeights.map((w, i) => (shortUnit(i) ? w * 0.3 : w));
      const wsum = rawWeights.reduce((s, w) => s + w, 0) || 1;
      const weights = rawWeights.map((w) => Math.round((w / wsum) * 100));

      const desired = units.map((_, i) => Math.max(1, Math.ceil((demandRpm * ((weights[i] ?? 0) / 100)) / (targets[i] ?? 1))));
      desiredHistory.push(desired);

      const unitMinutes: Record<string, UnitMinute> = {};
      let served = 0;
      let failed = 0;
      let perHour = 0;
      let p99 = 0;
      for (const [i, u] of units.entries()) {
        let ready = Math.max(1, Math.min(desired[i] ?? 1, prevReady[i] ?? 1) + (policy === 'static-capacity' ? 1 : 0));
        let pending = 0;
        if (shortUnit(i) && ready > heldInf2) {
          pending = ready - heldInf2;
          ready = heldInf2;
        }
        const starting = Math.max(0, (desired[i] ?? 0) - ready - pending);
        const offered = demandRpm * ((weights[i] ?? 0) / 100);
        const cap = ready * u.maxRpm;
        const s = Math.min(offered, cap);
        const util = cap > 0 ? offered / cap : 1;
        const lat = u.latencySeconds * 0.85 * (1 + 0.15 * Math.min(1, util) ** 6) * (1 + 0.02 * Math.sin(t * 0.9 + i));
        const cost = (ready + starting) * u.pricePerHour;
        unitMinutes[u.name] = {
          weight: weights[i] ?? 0,
          offeredRpm: offered,
          servedRpm: s,
          failedRpm: offered - s,
          readyPods: ready,
          startingPods: starting,
          pendingPods: pending,
          p99Seconds: lat,
          minReplicas: 1,
          targetRpm: targets[i] ?? 0,
          costPerHour: cost,
        };
        served += s;
        failed += offered - s;
        perHour += cost;
        if (s > 0.01 * demandRpm) p99 = Math.max(p99, lat);
      }
      cumulative += perHour / 60;
      timeline.push({
        minute: t,
        service,
        mode,
        demandRpm,
        servedRpm: served,
        failedRpm: failed,
        p99Seconds: p99,
        costPerHour: perHour,
        cumulativeCost: cumulative,
        units: unitMinutes,
      });
      summary.servedRequests += served;
      summary.failedRequests += failed;
      if (p99 > slo) summary.minutesOverSlo++;
    }
    summary.totalCost += cumulative;
  }
  timeline.sort((a, b) => a.minute - b.minute || a.service.localeCompare(b.service));
  summary.costPerMillion = summary.servedRequests > 0 ? (summary.totalCost / summary.servedRequests) * 1e6 : 0;
  return { summary, timeline, events };
}

function defaultCapacity(minutes: number): ShortageWindow[] {
  return [{ family: 'inf2', fromMinute: Math.round(minutes * 0.55), toMinute: Math.round(minutes * 0.8), maxInstances: 'hold' }];
}

/** A whole result: one run per policy over the same synthetic scenario. */
export function makeSimulationResult(
  options: SimResultOptions = {},
  overrides: Partial<Omit<SimulationResult, 'scenario'>> & { scenario?: Partial<SimulationResult['scenario']> } = {},
): SimulationResult {
  const minutes = options.minutes ?? 180;
  const services = options.services ?? ['sd21'];
  const units = options.units ?? SEED_UNITS;
  const capacity = options.capacity ?? defaultCapacity(minutes);
  const opts = { ...options, minutes, services, units, capacity };
  return {
    scenario: {
      name: options.name ?? 'synthetic-inf2-shortage',
      durationMinutes: minutes,
      stepSeconds: 10,
      seed: 1,
      services: Object.fromEntries(
        services.map((s) => [s, { sloSeconds: options.sloSeconds ?? 0.9, units: units.map((u) => u.name) }]),
      ),
      capacity,
      ...overrides.scenario,
    },
    runs: overrides.runs ?? (options.policies ?? SEED_POLICIES).map((p) => makePolicyRun(p, opts)),
    bound: overrides.bound ?? { totalCost: 100, costPerMillion: 50 },
  };
}
