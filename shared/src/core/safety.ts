import type { Unit } from '../spec/schema.ts';
import { toIntegerWeights } from './cost.ts';
import type { Alert, UnitObservation } from './types.ts';

/**
 * The rules every policy obeys on every tick (DESIGN §3), applied after the policy (or an
 * override) has said what it wants:
 * - a unit with no healthy targets gets weight 0 (the ALB fails open onto its unhealthy targets,
 *   or answers 503 when none is registered), unless no unit is healthy, in which case the last
 *   good weights stay and an alert goes out. This holds for a forced override too;
 * - a unit whose health was not observed gets no more than its current share;
 * - make before break: traffic moves from what is live now, and a unit's share grows only as far
 *   as its ready pods can serve at the breaking point; its floor is raised so the rest of the
 *   shift follows as pods become ready. Without the demand or the live weights there is no way to
 *   know what the ready pods can take, so nothing moves (the live weights, or the last good ones,
 *   stay) while floors are still raised for the last known demand. Only a forced override skips
 *   the limit;
 * - weights are integers 0–999 with a positive sum.
 */

export const WEIGHT_TOTAL = 100;

export interface SafeWeights {
  weights: Record<string, number>;
  /** Floors raised for make-before-break, per unit. */
  floors: Record<string, number>;
  reasons: string[];
  alerts: Alert[];
  /** False when no unit is healthy and the last good weights were kept. */
  anyHealthy: boolean;
}

export interface SafetyInput {
  service: string;
  units: ReadonlyArray<UnitView>;
  observed: ReadonlyMap<string, UnitObservation>;
  /** What the policy (or the override) wants: non-negative shares per unit, any scale. */
  wanted: Record<string, number>;
  /** Requests per minute one pod of a unit is counted for when its floor is sized. */
  floorRpm: Record<string, number>;
  /** The demand of the last complete minute; null when not observed. */
  demandRpm: number | null;
  /** The latest demand known from the history, to size floors while the current one is unknown. */
  lastKnownDemandRpm: number | null;
  lastGoodWeights: Record<string, number> | null;
  /** A forced override: the weights apply at once, no make-before-break limit. */
  force?: boolean;
}

type UnitView = Pick<Unit, 'name' | 'maxRpm'>;

export type Health = 'healthy' | 'unhealthy' | 'unknown';

export function healthyPods(o: UnitObservation | undefined): number {
  if (!o) return 0;
  const healthy = o.healthyTargets ?? o.readyPods;
  return healthy === null ? 0 : Math.max(0, healthy);
}

/** Unobserved is not unhealthy: a unit is unknown when neither the ALB nor the cluster was read. */
export function healthOf(o: UnitObservation | undefined): Health {
  if (!o || (o.healthyTargets === null && o.readyPods === null)) return 'unknown';
  return healthyPods(o) > 0 ? 'healthy' : 'unhealthy';
}

/** The live forward weights, or null when any unit's weight was not read. */
export function liveWeights(names: ReadonlyArray<string>, observed: ReadonlyMap<string, UnitObservation>): Record<string, number> | null {
  const live: Record<string, number> = {};
  for (const n of names) {
    const w = observed.get(n)?.liveWeight;
    if (w === null || w === undefined) return null;
    live[n] = Math.max(0, w);
  }
  return live;
}

export function enforceSafety(args: SafetyInput): SafeWeights {
  const { service, units, observed, demandRpm } = args;
  const reasons: string[] = [];
  const names = units.map((u) => u.name);
  const health = new Map(names.map((n) => [n, healthOf(observed.get(n))]));
  const healthy = new Set(names.filter((n) => health.get(n) === 'healthy'));
  const wanted = normalise(Object.fromEntries(names.map((n) => [n, Math.max(0, args.wanted[n] ?? 0)])));

  // What is serving now: the live weights, else the last good ones; units without a healthy
  // target are left out (their traffic fails already, so moving it off them breaks nothing).
  const live = liveWeights(names, observed);
  const usable = (w: Record<string, number>) => {
    const shares = normalise(Object.fromEntries(names.map((n) => [n, health.get(n) === 'unhealthy' ? 0 : Math.max(0, w[n] ?? 0)])));
    return sum(Object.values(shares)) > 0 ? shares : null;
  };
  const baseline = live ? usable(live) : args.lastGoodWeights ? usable(args.lastGoodWeights) : null;
  const floorDemand = demandRpm ?? args.lastKnownDemandRpm;

  if (healthy.size === 0) {
    const unknown = names.filter((n) => health.get(n) === 'unknown');
    const kept = args.lastGoodWeights && sum(Object.values(args.lastGoodWeights)) > 0 ? args.lastGoodWeights : evenly(names);
    const weights = Object.fromEntries(names.map((n) => [n, kept[n] ?? 0]));
    return {
      weights,
      floors: raiseFloors(args, wanted, normalise(weights), floorDemand, reasons),
      reasons: [
        unknown.length > 0
          ? `health of ${unknown.join(', ')} not observed and no unit known healthy: keeping the last good weights`
          : 'no unit has a healthy target: keeping the last good weights',
        ...reasons,
      ],
      alerts: unknown.length > 0 ? [] : [{ kind: 'no-healthy-unit', service, message: `${service}: no deployment unit has a healthy target; weights left as they were` }],
      anyHealthy: false,
    };
  }

  // 1. Nothing onto units without healthy targets, forced or not.
  let target = normalise(Object.fromEntries(names.map((n) => [n, healthy.has(n) ? (wanted[n] ?? 0) : 0])));
  for (const n of names) {
    if (health.get(n) !== 'unhealthy' || (wanted[n] ?? 0) <= 0) continue;
    const o = observed.get(n);
    const why = o?.registeredTargets === 0 ? 'no registered target (the ALB would answer 503)' : 'no healthy target (the ALB would fail open onto unhealthy ones)';
    reasons.push(`${n} has ${why}: weight 0${args.force ? ', even though the override forces it' : ''}`);
  }
  if (sum(Object.values(target)) === 0) {
    target = normalise(Object.fromEntries(units.map((u) => [u.name, healthy.has(u.name) ? healthyPods(observed.get(u.name)) * u.maxRpm : 0])));
    reasons.push('no unit wanted is known healthy: spreading over the healthy units by ready capacity');
  }
  // A unit of unknown health gets no more than it has: it may be down. It may give traffic up
  // (the units that take it are known healthy, and make-before-break limits them).
  const unseen = names.filter((n) => health.get(n) === 'unknown' && (baseline?.[n] ?? 0) > 0);
  if (unseen.length > 0) {
    const keep = Object.fromEntries(unseen.map((n) => [n, Math.min(baseline![n]!, wanted[n] ?? 0)]));
    const kept = sum(Object.values(keep));
    target = Object.fromEntries(names.map((n) => [n, keep[n] ?? (target[n] ?? 0) * (1 - kept)]));
    reasons.push(`health of ${unseen.join(', ')} not observed: no more traffic onto ${unseen.length === 1 ? 'it' : 'them'}`);
  }

  // 2. Make before break, from what is serving now.
  let shares = target;
  const differs = (a: Record<string, number>) => names.some((n) => Math.abs((a[n] ?? 0) - (target[n] ?? 0)) > 0.005);
  if (args.force) {
    if (baseline && differs(baseline)) reasons.push('override forced: weights applied at once, floors raised alongside');
  } else if (!baseline) {
    if (live) reasons.push('no live weight on a usable unit: applying the target at once');
    else reasons.push('live weights not read and no last good weights: applying the target');
  } else if (!live) {
    shares = baseline;
    if (differs(baseline)) reasons.push('live weights not read: keeping the last good weights, no shift until they are read');
  } else if (demandRpm === null) {
    shares = baseline;
    if (differs(baseline)) reasons.push('demand not observed: keeping the live weights, no shift until it is known');
  } else if (demandRpm > 0) {
    const capacityShare = Object.fromEntries(units.map((u) => [u.name, (healthyPods(observed.get(u.name)) * u.maxRpm) / demandRpm]));
    shares = limitShift(baseline, target, capacityShare);
  }

  return {
    weights: toIntegerWeights(shares, WEIGHT_TOTAL),
    floors: raiseFloors(args, wanted, baseline ?? {}, floorDemand, reasons, shares),
    reasons,
    alerts: [],
    anyHealthy: true,
  };
}

/**
 * Floors for every unit wanted above its current share: enough pods for its wanted share of the
 * demand, so the shift can follow as they become ready. Says which shifts are held and why.
 */
function raiseFloors(
  args: SafetyInput,
  wanted: Record<string, number>,
  current: Record<string, number>,
  demand: number | null,
  reasons: string[],
  applied: Record<string, number> = current,
): Record<string, number> {
  const floors: Record<string, number> = {};
  for (const u of args.units) {
    const want = wanted[u.name] ?? 0;
    if (want <= (current[u.name] ?? 0) + 1e-9) continue;
    const need = demand !== null && demand > 0 ? podsFor(want * demand, args.floorRpm[u.name] ?? u.maxRpm) : null;
    if (need !== null) floors[u.name] = need;
    if ((applied[u.name] ?? 0) + 0.005 < want) {
      reasons.push(`${u.name}: shift held at ${pct(applied[u.name])} of ${pct(want)} ${need === null ? 'while the demand is unknown' : `until ${need} pod(s) are ready`}`);
    }
  }
  return floors;
}

/** Pods that serve `rpm` at `podRpm` each (a hair over a whole number of pods is not one more). */
export function podsFor(rpm: number, podRpm: number): number {
  return Math.ceil(rpm / Math.max(1e-9, podRpm) - 1e-9);
}

/**
 * Moves from `live` toward `target` no faster than the growing units can absorb at their ready
 * capacity; shrinking units give up only what the growing ones take, so no traffic is stranded.
 */
export function limitShift(live: Record<string, number>, target: Record<string, number>, capacityShare: Record<string, number>): Record<string, number> {
  const names = Object.keys(target);
  let absorb = 0;
  let release = 0;
  const room: Record<string, number> = {};
  for (const n of names) {
    const l = live[n] ?? 0;
    const t = target[n] ?? 0;
    if (t > l) {
      room[n] = Math.max(0, Math.min(t, Math.max(l, capacityShare[n] ?? 0)) - l);
      absorb += room[n];
    } else {
      release += l - t;
    }
  }
  if (release <= 1e-12) return { ...target };
  const out: Record<string, number> = {};
  const moved = Math.min(absorb, release);
  for (const n of names) {
    const l = live[n] ?? 0;
    const t = target[n] ?? 0;
    out[n] = t > l ? l + (absorb > 0 ? (room[n]! * moved) / absorb : 0) : l - ((l - t) * moved) / release;
  }
  // A shift that completes lands exactly on the target, so rounding to weights cannot differ.
  return names.every((n) => Math.abs(out[n]! - (target[n] ?? 0)) < 1e-9) ? { ...target } : out;
}

function normalise(shares: Record<string, number>): Record<string, number> {
  const total = sum(Object.values(shares));
  return Object.fromEntries(Object.entries(shares).map(([k, v]) => [k, total > 0 ? v / total : 0]));
}

function evenly(names: string[]): Record<string, number> {
  return toIntegerWeights(Object.fromEntries(names.map((n) => [n, 1])), WEIGHT_TOTAL);
}

function sum(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0);
}

function pct(x: number | undefined): string {
  return `${Math.round((x ?? 0) * 100)}%`;
}
