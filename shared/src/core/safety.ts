import type { Unit } from '../spec/schema.ts';
import { toIntegerWeights } from './cost.ts';
import type { Alert, UnitObservation } from './types.ts';

/**
 * The rules every policy obeys on every tick (DESIGN §3), applied after the policy has said what
 * it wants:
 * - a unit with no healthy targets gets weight 0 (the ALB would fail open onto it, or 503), unless
 *   no unit is healthy, in which case the last good weights stay and an alert goes out;
 * - make before break: a unit's share grows only as far as its ready pods can serve at the
 *   breaking point; its floor is raised so the rest of the shift follows as pods become ready;
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

type UnitView = Pick<Unit, 'name' | 'maxRpm'>;

export function healthyPods(o: UnitObservation | undefined): number {
  if (!o) return 0;
  const healthy = o.healthyTargets ?? o.readyPods;
  return healthy === null ? 0 : Math.max(0, healthy);
}

export function enforceSafety(args: {
  service: string;
  units: ReadonlyArray<UnitView>;
  observed: ReadonlyMap<string, UnitObservation>;
  /** What the policy wants: non-negative shares per unit, any scale. */
  wanted: Record<string, number>;
  /** Per-unit KEDA target (requests per minute per pod) the policy set. */
  targetRpm: Record<string, number>;
  demandRpm: number | null;
  lastGoodWeights: Record<string, number> | null;
}): SafeWeights {
  const { service, units, observed, demandRpm } = args;
  const reasons: string[] = [];
  const names = units.map((u) => u.name);
  const healthy = new Set(names.filter((n) => healthyPods(observed.get(n)) > 0));

  if (healthy.size === 0) {
    // Unobserved is not unhealthy: with some health unknown, say so rather than raise the alarm.
    const unknown = names.filter((n) => {
      const o = observed.get(n);
      return !o || (o.healthyTargets === null && o.readyPods === null);
    });
    const kept = args.lastGoodWeights && sum(Object.values(args.lastGoodWeights)) > 0 ? args.lastGoodWeights : evenly(names);
    return {
      weights: Object.fromEntries(names.map((n) => [n, kept[n] ?? 0])),
      floors: {},
      reasons: [
        unknown.length > 0
          ? `health of ${unknown.join(', ')} not observed and no unit known healthy: keeping the last good weights`
          : 'no unit has a healthy target: keeping the last good weights',
      ],
      alerts: unknown.length > 0 ? [] : [{ kind: 'no-healthy-unit', service, message: `${service}: no deployment unit has a healthy target; weights left as they were` }],
      anyHealthy: false,
    };
  }

  // 1. Nothing onto units without healthy targets.
  let target = normalise(Object.fromEntries(names.map((n) => [n, healthy.has(n) ? Math.max(0, args.wanted[n] ?? 0) : 0])));
  for (const n of names) {
    if (!healthy.has(n) && (args.wanted[n] ?? 0) > 0) reasons.push(`${n} has no healthy target: weight 0`);
  }
  if (sum(Object.values(target)) === 0) {
    // The policy only wanted unhealthy units: spread over healthy ready capacity instead.
    target = normalise(Object.fromEntries(units.map((u) => [u.name, healthy.has(u.name) ? healthyPods(observed.get(u.name)) * u.maxRpm : 0])));
    reasons.push('every unit the policy chose is unhealthy: spreading over the healthy units by ready capacity');
  }

  // 2. Make before break, against what is live now: shares grow only onto ready pods, and the
  //    floor of every unit the policy wants to grow (ready or not) is raised so the shift follows.
  const floors: Record<string, number> = {};
  const live = normalise(Object.fromEntries(names.map((n) => [n, healthy.has(n) ? Math.max(0, observed.get(n)?.liveWeight ?? 0) : 0])));
  const wanted = normalise(Object.fromEntries(names.map((n) => [n, Math.max(0, args.wanted[n] ?? 0)])));
  let shares = target;
  if (demandRpm !== null && demandRpm > 0 && sum(Object.values(live)) > 0) {
    const capacityShare = Object.fromEntries(units.map((u) => [u.name, (healthyPods(observed.get(u.name)) * u.maxRpm) / demandRpm]));
    shares = limitShift(live, target, capacityShare);
    for (const u of units) {
      const want = wanted[u.name] ?? 0;
      if (want > (live[u.name] ?? 0) + 1e-9) {
        const need = Math.ceil((want * demandRpm) / Math.max(1e-9, args.targetRpm[u.name] ?? u.maxRpm) - 1e-9);
        floors[u.name] = need;
        if ((shares[u.name] ?? 0) + 0.005 < want) {
          reasons.push(`${u.name}: shift held at ${pct(shares[u.name])} of ${pct(want)} until ${need} pod(s) are ready`);
        }
      }
    }
  }

  return { weights: toIntegerWeights(shares, WEIGHT_TOTAL), floors, reasons, alerts: [], anyHealthy: true };
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
  return out;
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
