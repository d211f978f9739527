/**
 * The values the decision core works on. Everything here is plain, serialisable data: an
 * observation comes in, a decision goes out, and the state between ticks is stored as JSON.
 */

export type Mode = 'cost' | 'capacity' | 'override';

/** What one tick saw of one deployment unit. `null` means "not observed", never "zero". */
export interface UnitObservation {
  unit: string;
  /** Requests per minute the unit's target group received over the last minute (ALB RequestCount). */
  rpm: number | null;
  /** p99 latency in seconds over the last minute. */
  p99Seconds: number | null;
  readyPods: number | null;
  desiredPods: number | null;
  pendingPods: number | null;
  /** Age in seconds of the oldest Pending pod, 0 when none. */
  oldestPendingSeconds: number | null;
  /** Targets the ALB reports healthy, and registered in any state. */
  healthyTargets: number | null;
  registeredTargets: number | null;
  /** Forward weight as read from the listener rule. */
  liveWeight: number | null;
  /** The ScaledObject fields hwai owns, as read from the cluster. */
  liveScaling: UnitScaling | null;
}

/** A capacity signal about a pool (instance family): Karpenter ICE, a Spot interruption, a CR. */
export interface PoolSignal {
  family: string;
  /** `reservation-available`: an active ODCR or Capacity Block of the family has free instances
   *  now (a standing fact, stamped with the start of the read window). A short pool with one is
   *  probed without waiting out Karpenter's cache of the refused offering. */
  kind: 'insufficient-capacity' | 'interruption' | 'rebalance' | 'capacity-block-expiry' | 'reservation-available';
  at: number;
  detail?: string;
}

export interface ServiceObservation {
  service: string;
  /** Total requests per minute offered to the service over the last complete minute; null when
   *  any unit's throughput is unknown (a partial sum would understate it). */
  demandRpm: number | null;
  /** Per-minute total demand of the service, [epoch ms of the minute's start, rpm], oldest
   *  first, complete minutes only (up to 30); [] when unknown. Built by the tick from
   *  UnitMetrics.rpmHistory (a minute counts only when every unit reported it). It lives in the
   *  observation, not the state, so a steady world leaves the state unchanged. */
  demandHistory: Array<[number, number]>;
  units: UnitObservation[];
}

export interface Observation {
  /** Epoch milliseconds at which the observation was taken. */
  at: number;
  services: ServiceObservation[];
  signals: PoolSignal[];
  /** Parts that could not be read this tick (e.g. "cloudwatch", "kubernetes: sd21-g5-cuda"). */
  missing: string[];
}

/** The KEDA ScaledObject fields hwai owns for one unit. */
export interface UnitScaling {
  minReplicas: number;
  maxReplicas: number;
  /** Per-pod requests per minute the HPA aims at (the trigger's targetMetricValue). */
  targetRpm: number;
}

export interface Override {
  /** Idempotency key: the override request's id (a retried invoke with the same id is a no-op). */
  id: string;
  /** A mode to force, or explicit weights per unit. */
  mode?: 'cost' | 'capacity';
  weights?: Record<string, number>;
  /** Apply the weights at once instead of floors first and weights as pods become ready. The
   *  health rule still holds: a unit with no healthy target gets weight 0 (the ALB fails open
   *  onto its unhealthy targets, or answers 503 when none is registered), and a unit whose
   *  health was not observed gets no more than it has. */
  force?: boolean;
  startedAt: number;
  until: number;
  reason: string;
  by: string;
}

/** How far an override's target is applied (in ServiceDecision, shown by `hwai status`). */
export interface OverrideProgress {
  /** The override's weights (or its mode's split), as integer weights summing to 100. */
  target: Record<string, number>;
  /** The weights decided this tick. */
  applied: Record<string, number>;
  /** 0..1: share of the target's traffic already routed as the target says. */
  fraction: number;
  /** Units whose floors were raised and that still wait for ready pods, e.g. "sd21-trn1-neuron: 2/6 ready". */
  waitingFor: string[];
}

export interface Probe {
  unit: string;
  startedAt: number;
  /** Ready pods when the probe started; the probe succeeds once readiness passes this. */
  baselineReady: number;
  pods: number;
}

/** What the controller remembers about one pool between ticks. */
export interface PoolState {
  /** When the pool was first seen short in this episode; null when not short. */
  shortSince: number | null;
  lastSignalAt: number | null;
  /** Pods ready when the shortage began: the pool can hold at least this much. */
  readyAtShortage: number;
  lastProbeAt: number | null;
  probe: Probe | null;
  /** While short: the pool's pods on a node at the last tick that read them, and when that count
   *  last fell (a node left empty, which Karpenter keeps for a while). Absent in older states. */
  placedPods?: number | null;
  shrankAt?: number | null;
}

export interface ServiceState {
  mode: Mode;
  /** When the current automatic mode began. */
  since: number;
  badTicks: number;
  override: Override | null;
  pools: Record<string, PoolState>;
  /** The last weights applied while at least one unit was healthy. */
  lastGoodWeights: Record<string, number> | null;
  /** Recent floors per unit, for slow scale-down. */
  floors: Record<string, number>;
  /** Ticks in a row whose actuation or verification failed. */
  actuationFailures: number;
  /** The optimizer's current hold (seconds): grows when a pool turns short soon after the fallback. Absent: the policy's holdSeconds. */
  holdSeconds?: number;
  /** Since when no pool of the service has been short (the optimizer's fallback waits a hold from then); null while one is. */
  clearSince?: number | null;
}

export interface ControllerState {
  version: number;
  services: Record<string, ServiceState>;
}

export type AlertKind = 'mode-changed' | 'override-started' | 'override-ended' | 'no-healthy-unit' | 'incomplete-observation' | 'actuation-failing';

export interface Alert {
  kind: AlertKind;
  service: string;
  message: string;
}

export interface ServiceDecision {
  service: string;
  mode: Mode;
  /** Integer forward weights 0–999 per unit, with a positive sum. */
  weights: Record<string, number>;
  scaling: Record<string, UnitScaling>;
  reasons: string[];
  alerts: Alert[];
  /** The active override's progress; null when no override is active. */
  override: OverrideProgress | null;
  state: ServiceState;
}

export interface Decision {
  at: number;
  policy: string;
  services: ServiceDecision[];
  state: ControllerState;
}
