import type { Unit } from '../spec/schema.ts';
import type { Alert, ControllerState, PoolSignal, UnitScaling } from '../core/types.ts';

/**
 * The narrow interfaces the reconcile pipeline needs from the outside world. The simulator's
 * world implements them in-process; the AWS and Kubernetes adapters implement them for real.
 * Every call takes an AbortSignal so a slow API gives up before the Lambda deadline.
 */

export interface CallOptions {
  signal?: AbortSignal;
}

export interface UnitMetrics {
  /** Requests in the last COMPLETE minute, lagged: CloudWatch data arrives 1–3 minutes late. */
  rpm: number | null;
  p99Seconds: number | null;
  /** [epoch ms of the minute's start, rpm], oldest first, up to 30 complete minutes. */
  rpmHistory: Array<[number, number]>;
}

/** Per-unit throughput and latency of the last complete minute, and recent per-minute demand. */
export interface MetricsPort {
  readUnitMetrics(units: ReadonlyArray<Unit>, at: number, options?: CallOptions): Promise<Record<string, UnitMetrics>>;
}

/** Capacity signals since a time: Karpenter ICE events, Spot interruptions, reservations. */
export interface CapacitySignalsPort {
  readSignals(families: ReadonlyArray<string>, since: number, options?: CallOptions): Promise<PoolSignal[]>;
}

export interface UnitPods {
  readyPods: number;
  desiredPods: number;
  /** Pods waiting for capacity: PodScheduled False with reason Unschedulable (NOT every Pending pod). */
  pendingPods: number;
  oldestPendingSeconds: number;
  /** Scheduled pods not ready yet (pulling images, loading the model). */
  startingPods: number;
}

/** Pods of each unit's Deployment (Kubernetes). */
export interface ClusterPort {
  readPods(units: ReadonlyArray<Unit>, options?: CallOptions): Promise<Record<string, UnitPods>>;
}

export interface TargetHealth {
  healthy: number;
  registered: number;
}

export interface LiveRoute {
  weights: Record<string, number>;
  health: Record<string, TargetHealth>;
}

/** The ALB listener rule of a service: its forward weights and its target groups' health. */
export interface TrafficRouter {
  readRoute(service: string, units: ReadonlyArray<Unit>, options?: CallOptions): Promise<LiveRoute>;
  setWeights(service: string, units: ReadonlyArray<Unit>, weights: Record<string, number>, options?: CallOptions): Promise<void>;
}

/** The KEDA ScaledObject fields hwai owns, per unit. */
export interface AutoscalerPort {
  readScaling(units: ReadonlyArray<Unit>, options?: CallOptions): Promise<Record<string, UnitScaling>>;
  setScaling(unit: Unit, scaling: UnitScaling, options?: CallOptions): Promise<void>;
}

export interface StoredState {
  state: ControllerState;
  /** Opaque version for the conditional write; null when nothing is stored yet. */
  version: number | null;
}

/** The controller's memory between ticks, written conditionally so two ticks cannot both win. */
export interface StateStore {
  load(options?: CallOptions): Promise<StoredState>;
  /** Resolves false when someone else wrote since `expectedVersion` was read. */
  save(state: ControllerState, expectedVersion: number | null, options?: CallOptions): Promise<boolean>;
}

export interface Notifier {
  notify(alerts: ReadonlyArray<Alert>, options?: CallOptions): Promise<void>;
}

/** A lease that only one tick holds at a time (DynamoDB conditional write with an expiry). */
export interface LeasePort {
  /** Take the lease for ttlMs if it is free or expired. False when another holder has it. */
  acquire(holder: string, ttlMs: number, options?: CallOptions): Promise<boolean>;
  /** Give it back (only if this holder still has it). */
  release(holder: string, options?: CallOptions): Promise<void>;
}

export interface Clock {
  now(): number;
}

export interface Ports {
  metrics: MetricsPort;
  signals: CapacitySignalsPort;
  cluster: ClusterPort;
  router: TrafficRouter;
  autoscaler: AutoscalerPort;
  store: StateStore;
  notifier: Notifier;
  lease: LeasePort;
  clock: Clock;
}
