import type { Mode } from '../core/types.ts';

/** Per-unit figures for one simulated minute (averages over the minute unless said otherwise). */
export interface UnitMinute {
  /** Forward weight in effect at the end of the minute. */
  weight: number;
  offeredRpm: number;
  servedRpm: number;
  failedRpm: number;
  readyPods: number;
  /** Pods with a node, starting up (not ready yet). */
  startingPods: number;
  /** Pods with no node (Pending, e.g. refused by a capacity limit). */
  pendingPods: number;
  p99Seconds: number;
  minReplicas: number;
  targetRpm: number;
  /** Dollars per hour of the unit's nodes at the end of the minute. */
  costPerHour: number;
}

export interface TimelineRow {
  minute: number;
  service: string;
  mode: Mode;
  demandRpm: number;
  servedRpm: number;
  failedRpm: number;
  /** The service's p99: the slowest unit carrying at least 1% of its served traffic. */
  p99Seconds: number;
  costPerHour: number;
  cumulativeCost: number;
  units: Record<string, UnitMinute>;
}

export interface PolicySummary {
  policy: string;
  /** Dollars over the whole run. */
  totalCost: number;
  /** Dollars per one million successful requests. */
  costPerMillion: number;
  servedRequests: number;
  failedRequests: number;
  minutesOverSlo: number;
  modeSwitches: number;
  /** Minutes from the first shortage's start until traffic moved off the short pool; null if nothing was short or it never moved. */
  minutesToShift: number | null;
}

export interface SimEvent {
  minute: number;
  service: string;
  kind: 'mode-changed' | 'shortage-started' | 'shortage-ended' | 'probe' | 'alert';
  message: string;
}

export interface PolicyRun {
  summary: PolicySummary;
  timeline: TimelineRow[];
  events: SimEvent[];
}

export interface ShortageWindow {
  family: string;
  fromMinute: number;
  toMinute: number;
  maxInstances: number | 'hold';
}

export interface SimulationResult {
  scenario: {
    name: string;
    durationMinutes: number;
    stepSeconds: number;
    seed: number;
    services: Record<string, { sloSeconds: number; units: string[] }>;
    capacity: ShortageWindow[];
  };
  runs: PolicyRun[];
  /** The clairvoyant lower bound on the cost (bound.ts). */
  bound: { totalCost: number; costPerMillion: number };
}
