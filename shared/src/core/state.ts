import type { ControllerState, PoolState, ServiceState } from './types.ts';

/** A service the controller has never seen starts in cost mode, long settled. */
export function initialServiceState(): ServiceState {
  return { mode: 'cost', since: 0, badTicks: 0, override: null, pools: {}, lastGoodWeights: null, floors: {}, actuationFailures: 0 };
}

export function initialControllerState(): ControllerState {
  return { version: 0, services: {} };
}

export function initialPoolState(): PoolState {
  return { shortSince: null, lastSignalAt: null, readyAtShortage: 0, lastProbeAt: null, probe: null };
}
