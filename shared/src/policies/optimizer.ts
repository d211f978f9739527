import { costPerRequest } from '../core/cost.ts';
import { isShort } from '../core/pools.ts';
import { healthyPods } from '../core/safety.ts';
import type { UnitScaling } from '../core/types.ts';
import type { Unit } from '../spec/schema.ts';
import { round1 } from './static.ts';
import type { PolicyContext, PolicyProposal } from './types.ts';

/**
 * hwai's own policy: the seed's objective max ∫ (Σ T_i − λ Σ w_i C_i) dt solved per tick by
 * water-filling. Every request served is worth more than any unit's cost per request (λ is the
 * exchange rate), so all demand is served, cheapest cost per request first:
 * - routing: fill the cheapest unit's ready pods up to the target utilisation, then the next;
 *   what is left goes onto ready pods up to the breaking point, cheapest first; then pro rata;
 * - floors: the same water-filling over the demand forecast one start-up time ahead, on the pods
 *   each pool can still get (a short pool keeps what it has), so capacity is ready before the
 *   demand arrives; floors fall slowly;
 * - warm reserve: the next pool in cost order keeps the pods that a shortage of the cheapest pool
 *   would need while its replacements start.
 */

const HISTORY_SECONDS = 15 * 60;

export function optimizer(ctx: PolicyContext): PolicyProposal {
  const { settings, state, now } = ctx;
  const util = settings.targetUtilization;
  const reasons: string[] = [];
  const ordered = [...ctx.units].sort((a, b) => costPerRequest(a) - costPerRequest(b) || a.name.localeCompare(b.name));
  const ready = (u: Unit) => healthyPods(ctx.observed.get(u.name));
  const { mode, since, short } = modeWithHold(ctx, ordered, reasons);

  // The observation's complete minutes (CloudWatch's are a few minutes late, the forecast's
  // line carries them forward to now); the state keeps none, so a steady world leaves it as it is.
  const history = ctx.demandHistory.filter(([at]) => now - at <= HISTORY_SECONDS * 1000);
  const demand = ctx.demandRpm ?? history.at(-1)?.[1] ?? 0;
  if (ctx.demandRpm === null) reasons.push(`demand not observed: using the last known ${Math.round(demand)} rpm`);
  const forecastIn = (seconds: number) => Math.max(demand, forecastAt(history, now + seconds * 1000, demand));

  const shares = route(demand, ordered, ready, util, reasons);
  const floorsWanted = planFloors(ctx, ordered, short, ready, forecastIn);
  addWarmReserve(ctx, ordered, short, demand, forecastIn, floorsWanted, reasons);

  // Fast up, slow down.
  const floors: Record<string, number> = {};
  const scaling: Record<string, UnitScaling> = {};
  for (const u of ordered) {
    const previous = state.floors[u.name] ?? 0;
    const wanted = Math.min(u.maxReplicas, floorsWanted[u.name] ?? 0);
    const floor = wanted >= previous ? wanted : Math.max(wanted, previous - Math.max(1, Math.floor(previous * settings.scaleDownPerTick)));
    floors[u.name] = floor;
    scaling[u.name] = { minReplicas: Math.max(u.minReplicas, floor), maxReplicas: u.maxReplicas, targetRpm: round1(u.maxRpm * util) };
  }

  const horizonSeconds = Math.max(...ordered.map((u) => horizonOf(ctx, u)));
  reasons.push(
    `water-fill ${Math.round(demand)} rpm now, ${Math.round(forecastIn(horizonSeconds))} rpm forecast in ${Math.round(horizonSeconds / 60)} min` +
      (short.size > 0 ? `; short: ${[...short].join(', ')}` : ''),
  );
  return { mode, shares, scaling, reasons, state: { mode, since, floors } };
}

/**
 * The mode changes at most once per hold time. While it holds, a fresh shortage is still routed
 * around (routing only uses ready pods), but floors keep asking the short pool.
 */
function modeWithHold(ctx: PolicyContext, ordered: ReadonlyArray<Unit>, reasons: string[]) {
  const { state, settings, now } = ctx;
  const shortNow = ordered.filter((u) => isShort(state.pools, u.family)).map((u) => u.name);
  const held = now - state.since >= settings.holdSeconds * 1000;
  const previous: 'cost' | 'capacity' = state.mode === 'capacity' ? 'capacity' : 'cost';
  const mode: 'cost' | 'capacity' = held ? (shortNow.length > 0 ? 'capacity' : 'cost') : previous;
  if (mode === 'capacity' && shortNow.length === 0) reasons.push('short pools are back; holding the capacity mode until the hold time is over');
  if (mode === 'cost' && shortNow.length > 0) reasons.push('pool(s) short again within the hold time: floors unchanged, routing only onto ready pods');
  return { mode, since: mode === previous ? state.since : now, short: new Set(mode === 'capacity' ? shortNow : []) };
}

/** Routing onto what is ready now: cheapest first to the target utilisation, then to the breaking point, then pro rata. */
function route(demand: number, ordered: ReadonlyArray<Unit>, ready: (u: Unit) => number, util: number, reasons: string[]): Record<string, number> {
  const routed = waterFill(demand, ordered, [(u) => ready(u) * u.maxRpm * util, (u) => ready(u) * u.maxRpm]);
  const shares = routed.remaining > 0 ? addProRata(routed.alloc, routed.remaining, ordered, (u) => ready(u) * u.maxRpm) : routed.alloc;
  if (routed.remaining > 0) reasons.push(`demand exceeds ready capacity by ${Math.round(routed.remaining)} rpm: spread pro rata`);
  const idleUnit = ordered.find((u) => ready(u) > 0);
  if (demand <= 0 && idleUnit) shares[idleUnit.name] = 1; // no demand: point the rule at the cheapest ready unit
  return shares;
}

function horizonOf(ctx: PolicyContext, u: Unit): number {
  return u.startupSeconds + ctx.settings.tickSeconds;
}

/**
 * Pods each unit should have for the demand one of its own start-ups ahead, on the pods each
 * pool can still get (a short pool keeps what it has). The water-fill runs once per distinct
 * horizon and a unit takes its allocation from the fill at its horizon. A unit whose cost per
 * request outweighs a request's worth (λ·c > 1) gets no planned capacity.
 */
function planFloors(
  ctx: PolicyContext,
  ordered: ReadonlyArray<Unit>,
  short: ReadonlySet<string>,
  ready: (u: Unit) => number,
  forecastIn: (seconds: number) => number,
): Record<string, number> {
  const util = ctx.settings.targetUtilization;
  const worthIt = ordered.filter((u) => ctx.settings.lambda * costPerRequest(u) <= 1);
  const canGet = (u: Unit) => (short.has(u.name) ? ready(u) : u.maxReplicas) * u.maxRpm * util;
  const fills = new Map<number, Record<string, number>>();
  const floors: Record<string, number> = {};
  for (const u of ordered) {
    const h = horizonOf(ctx, u);
    if (!fills.has(h)) fills.set(h, waterFill(forecastIn(h), worthIt, [canGet]).alloc);
    floors[u.name] = Math.ceil((fills.get(h)![u.name] ?? 0) / (u.maxRpm * util) - 1e-9);
  }
  return floors;
}

/** Warm reserve on the next pool in cost order (another family), for growth the cheapest pool may not get. */
function addWarmReserve(
  ctx: PolicyContext,
  ordered: ReadonlyArray<Unit>,
  short: ReadonlySet<string>,
  demand: number,
  forecastIn: (seconds: number) => number,
  floors: Record<string, number>,
  reasons: string[],
): void {
  const util = ctx.settings.targetUtilization;
  const cheapest = ordered.find((u) => !short.has(u.name));
  const reserveUnit = cheapest && ordered.find((u) => u.family !== cheapest.family && !short.has(u.name));
  if (!cheapest || !reserveUnit) return;
  const o = ctx.observed.get(cheapest.name);
  const cheapestPods = Math.max(healthyPods(o), o?.desiredPods ?? 0);
  const growth = forecastIn(horizonOf(ctx, reserveUnit)) - demand;
  const reserveRpm = Math.max(0, growth - cheapestPods * cheapest.maxRpm * (1 - util));
  if (reserveRpm <= 0) return;
  const extra = Math.ceil(reserveRpm / (reserveUnit.maxRpm * util));
  floors[reserveUnit.name] = (floors[reserveUnit.name] ?? 0) + extra;
  reasons.push(`warm reserve: ${extra} pod(s) on ${reserveUnit.name} for ${Math.round(reserveRpm)} rpm of growth ${cheapest.family} may not absorb`);
}

/** Fills `amount` over units in order, pass by pass, each pass up to its own capacity per unit. */
export function waterFill(
  amount: number,
  ordered: ReadonlyArray<Unit>,
  passes: ReadonlyArray<(u: Unit) => number>,
): { alloc: Record<string, number>; remaining: number } {
  const alloc: Record<string, number> = Object.fromEntries(ordered.map((u) => [u.name, 0]));
  let remaining = Math.max(0, amount);
  for (const capacity of passes) {
    for (const u of ordered) {
      if (remaining <= 0) break;
      const take = Math.min(remaining, Math.max(0, capacity(u) - alloc[u.name]!));
      alloc[u.name]! += take;
      remaining -= take;
    }
  }
  return { alloc, remaining };
}

function addProRata(alloc: Record<string, number>, amount: number, units: ReadonlyArray<Unit>, weight: (u: Unit) => number): Record<string, number> {
  const total = units.reduce((s, u) => s + weight(u), 0);
  const out = { ...alloc };
  for (const u of units) out[u.name] = (out[u.name] ?? 0) + (total > 0 ? (amount * weight(u)) / total : amount / units.length);
  return out;
}

/** Least-squares line through the recent demand, evaluated at `at`; `fallback` with too few points. */
export function forecastAt(history: ReadonlyArray<[number, number]>, at: number, fallback: number): number {
  if (history.length < 3) return fallback;
  const t0 = history[0]![0];
  const xs = history.map(([t]) => (t - t0) / 60_000);
  const ys = history.map(([, y]) => y);
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
  const my = ys.reduce((s, y) => s + y, 0) / ys.length;
  const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  if (sxx === 0) return fallback;
  const slope = xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / sxx;
  return Math.max(0, my + slope * ((at - t0) / 60_000 - mx));
}
