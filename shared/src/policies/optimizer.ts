import { costPerRequest } from '../core/cost.ts';
import { isShort, podsOnNodes, probeFloor } from '../core/pools.ts';
import { healthyPods, liveWeights } from '../core/safety.ts';
import type { UnitObservation, UnitScaling } from '../core/types.ts';
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
 *   each pool can still get (a short pool keeps what it has: its ready pods and those starting on
 *   a node; once its probe's pod has a node it can get more), so capacity is ready before the
 *   demand arrives; floors fall slowly;
 * - demand now: CloudWatch's newest minute is 2–3 minutes old; on falling demand the trend says
 *   where it is now, and routing, floors and maxima use that, so pods go as the demand does;
 * - warm reserve: the next pool in cost order keeps the pods that a shortage of the cheapest pool
 *   would need while its replacements start.
 */

const HISTORY_SECONDS = 15 * 60;
const RECENT_MINUTES = 5;

export function optimizer(ctx: PolicyContext): PolicyProposal {
  const { settings, state, now } = ctx;
  const util = settings.targetUtilization;
  const reasons: string[] = [];
  const ordered = [...ctx.units].sort((a, b) => costPerRequest(a) - costPerRequest(b) || a.name.localeCompare(b.name));
  const ready = (u: Unit) => healthyPods(ctx.observed.get(u.name));
  const { mode, since, short, hold } = modeWithHold(ctx, ordered, reasons);

  // The observation's complete minutes (CloudWatch's are a few minutes late, the forecast's
  // line carries them forward to now); the state keeps none, so a steady world leaves it as it is.
  const history = ctx.demandHistory.filter(([at]) => now - at <= HISTORY_SECONDS * 1000);
  const demand = ctx.demandRpm ?? history.at(-1)?.[1] ?? 0;
  if (ctx.demandRpm === null) reasons.push(`demand not observed: using the last known ${Math.round(demand)} rpm`);
  // Growth must show on both the last 15 and the last 5 minutes' lines: a trend does, while a
  // jump that has happened steepens the long line long after the short one is flat again.
  const recent = history.slice(-RECENT_MINUTES);
  // The observed minute is 2–3 minutes old: on falling demand the lines through the last minutes
  // say where it is now (the higher of the two; never above the observed minute, and never below
  // util × it, so pods sized for it at the target still serve the observed minute at the breaking
  // point when the line is wrong, e.g. at a trough). Without this, pods follow a fall minutes late.
  const demandNow = Math.min(demand, Math.max(forecastAt(history, now, demand), forecastAt(recent, now, demand), util * demand));
  const forecastIn = (seconds: number) => Math.max(demandNow, Math.min(forecastAt(history, now + seconds * 1000, demand), forecastAt(recent, now + seconds * 1000, demand)));

  const shares = route(demandNow, ordered, ready, util, settings.maxFamilyShare, reasons);
  const floorsWanted = planFloors(ctx, ordered, short, ready, forecastIn);
  addWarmReserve(ctx, ordered, short, demand, forecastIn, floorsWanted, reasons);

  const horizonSeconds = Math.max(...ordered.map((u) => horizonOf(ctx, u)));
  const live = liveRpm(ctx, ordered, ctx.demandRpm === null ? null : demandNow);
  const atMost = trimmedMaxima(ctx, shares, live, forecastIn(horizonSeconds) > demand + 1e-9);
  // Fast up, slow down.
  const floors: Record<string, number> = {};
  const scaling: Record<string, UnitScaling> = {};
  const released: string[] = [];
  const trimmed: string[] = [];
  for (const u of ordered) {
    const previous = state.floors[u.name] ?? 0;
    const wanted = Math.min(u.maxReplicas, floorsWanted[u.name] ?? 0);
    const floor = wanted >= previous ? wanted : Math.max(wanted, previous - Math.max(1, Math.floor(previous * settings.scaleDownPerTick)));
    floors[u.name] = floor;
    // Idle: no traffic now (its live weight read as 0: the ALB has moved it off), none planned,
    // no floor and no probe. Unread weights (a metrics or ALB outage) release nothing.
    const idle = floor === 0 && (shares[u.name] ?? 0) <= 0 && ctx.observed.get(u.name)?.liveWeight === 0 && probeFloor(state.pools, u.name) === 0;
    if (idle && ready(u) > Math.max(1, u.minReplicas)) released.push(u.name);
    const maxReplicas = idle ? releasedMax(u) : Math.max(floor, atMost(u));
    if (!idle && maxReplicas < u.maxReplicas && maxReplicas < ready(u)) trimmed.push(`${u.name} to ${maxReplicas}`);
    scaling[u.name] = { minReplicas: Math.max(u.minReplicas, floor), maxReplicas, targetRpm: round1(u.maxRpm * util) };
  }
  if (released.length > 0) reasons.push(`released at once (no traffic, no floor): ${released.join(', ')}`);
  if (trimmed.length > 0) reasons.push(`demand not growing: pods beyond what the traffic needs go at once (maximum ${trimmed.join(', ')})`);

  reasons.push(
    `water-fill ${Math.round(demand)} rpm now, ${Math.round(forecastIn(horizonSeconds))} rpm forecast in ${Math.round(horizonSeconds / 60)} min` +
      (short.size > 0 ? `; short: ${[...short].join(', ')}` : ''),
  );
  return { mode, shares, scaling, reasons, state: { mode, since, floors, ...hold } };
}

/**
 * The maximum of a unit given no traffic and no floor: one pod (the HPA's least maximum) or the
 * operator's minimum. The HPA applies a lower maximum at once, without its 300 s scale-down
 * window, and KEDA takes the last pod away once its trigger reads no requests; otherwise the idle
 * unit's nodes would stay billed for the window after its traffic has moved.
 */
function releasedMax(u: Unit): number {
  return Math.max(1, u.minReplicas);
}

/**
 * Each unit's maximum while demand is not growing: the pods its traffic needs at the target
 * utilisation (the larger of what it carries now and what the plan routes to it, so a shift that
 * make-before-break still holds keeps its pods), its probe, its operator minimum. KEDA reads
 * demand 2–3 minutes late and the HPA keeps the highest count of its last 300 s, so on falling
 * demand pods stay billed for minutes after the traffic has left them; a lower maximum applies at
 * once. While the forecast grows the unit's own maximum stays, so the HPA can add pods between
 * ticks; and with the demand or the live weights unread nothing is trimmed.
 */
function trimmedMaxima(ctx: PolicyContext, shares: Record<string, number>, live: ((u: Unit) => number) | null, growing: boolean): (u: Unit) => number {
  if (growing || live === null) return (u) => u.maxReplicas;
  const util = ctx.settings.targetUtilization;
  return (u) => {
    const traffic = Math.max(shares[u.name] ?? 0, live(u));
    const needed = Math.max(podsFor(traffic, u, util), probeFloor(ctx.state.pools, u.name), u.minReplicas, 1);
    return Math.min(u.maxReplicas, needed);
  };
}

/** Whole pods that carry `rpm` at `util` of the unit's breaking point (a hair over a whole pod is not another). */
function podsFor(rpm: number, u: Unit, util: number): number {
  return Math.ceil(rpm / (u.maxRpm * util) - 1e-9);
}

/** Each unit's live share of `demand` (its forward weight over all); null when the demand or any weight is unread. */
function liveRpm(ctx: PolicyContext, ordered: ReadonlyArray<Unit>, demand: number | null): ((u: Unit) => number) | null {
  const weights = liveWeights(ordered.map((u) => u.name), ctx.observed);
  if (demand === null || weights === null) return null;
  const total = Object.values(weights).reduce((s, w) => s + w, 0);
  return (u) => (total > 0 ? ((weights[u.name] ?? 0) / total) * demand : 0);
}

/**
 * The mode changes at most once per hold time. While it holds, a fresh shortage is still routed
 * around (routing only uses ready pods), but floors keep asking the short pool. Back to cost
 * only once every pool has been clear for the hold time; and a pool that turns short again
 * within two holds of the fallback doubles the hold (up to MAX_HOLD_FACTOR × holdSeconds), so
 * capacity that flaps changes the mode a few times, not at every flip.
 */
const MAX_HOLD_FACTOR = 8;

function modeWithHold(ctx: PolicyContext, ordered: ReadonlyArray<Unit>, reasons: string[]) {
  const { state, settings, now } = ctx;
  const shortNow = ordered.filter((u) => isShort(state.pools, u.family)).map((u) => u.name);
  const base = settings.holdSeconds * 1000;
  let hold = (state.holdSeconds ?? settings.holdSeconds) * 1000;
  const clearSince = shortNow.length > 0 ? null : (state.clearSince ?? now);
  const previous: 'cost' | 'capacity' = state.mode === 'capacity' ? 'capacity' : 'cost';
  let mode = previous;
  if (previous === 'cost' && shortNow.length > 0 && now - state.since >= base) {
    mode = 'capacity';
    const flapped = now - state.since < 2 * hold && state.since > 0;
    hold = flapped ? Math.min(hold * 2, base * MAX_HOLD_FACTOR) : base;
    if (flapped) reasons.push(`pool(s) short again ${Math.round((now - state.since) / 60_000)} min after the fallback: hold ${Math.round(hold / 60_000)} min`);
  } else if (previous === 'capacity' && clearSince !== null && now - state.since >= hold && now - clearSince >= hold) {
    mode = 'cost';
  }
  if (mode === 'capacity' && shortNow.length === 0) reasons.push(`short pools are back; holding the capacity mode until they have been clear for ${Math.round(hold / 60_000)} min`);
  if (mode === 'cost' && shortNow.length > 0) reasons.push('pool(s) short again within the hold time: floors unchanged, routing only onto ready pods');
  return {
    mode,
    since: mode === previous ? state.since : now,
    short: new Set(mode === 'capacity' ? shortNow : []),
    hold: { holdSeconds: hold / 1000, clearSince },
  };
}

/** Routing onto what is ready now: cheapest first to the target utilisation, then to the breaking point, then pro rata. */
function route(demand: number, ordered: ReadonlyArray<Unit>, ready: (u: Unit) => number, util: number, shareLimit: number, reasons: string[]): Record<string, number> {
  // With a family share limit, the limited passes come first: other families take the rest
  // before any family goes beyond its share.
  const hedged = (capacity: (u: Unit) => number) => withinFamilyShare(capacity, shareLimit * demand, ordered);
  const atTarget = (u: Unit) => ready(u) * u.maxRpm * util;
  const atBreakingPoint = (u: Unit) => ready(u) * u.maxRpm;
  const passes = shareLimit < 1 ? [hedged(atTarget), hedged(atBreakingPoint), atTarget, atBreakingPoint] : [atTarget, atBreakingPoint];
  const routed = waterFill(demand, ordered, passes);
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
 * pool can still get (a short pool keeps what it has, `keptPods`, until its probe has a node). The water-fill runs once per distinct
 * horizon and a unit takes its allocation from the fill at its horizon. A unit whose cost per
 * request outweighs a request's worth (λ·c > 1) gets no planned capacity. Traffic stays on running
 * pods where moving it to cheaper pods that must first start would not pay back.
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
  const limited = (u: Unit) => short.has(u.name) && !probeLaunched(ctx, u);
  const canGet = (u: Unit) => (limited(u) ? keptPods(ctx.observed.get(u.name)) : u.maxReplicas) * u.maxRpm * util;
  const fills = new Map<number, Record<string, number>>();
  const floors: Record<string, number> = {};
  const runningRpm = (u: Unit) => ready(u) * u.maxRpm * util;
  const carried = carriedNow(ctx, ordered, runningRpm);
  for (const u of ordered) {
    const h = horizonOf(ctx, u);
    const amount = forecastIn(h);
    const share = ctx.settings.maxFamilyShare;
    if (!fills.has(h)) {
      const alloc = waterFill(amount, worthIt, share < 1 ? [withinFamilyShare(canGet, share * amount, worthIt), canGet] : [canGet]).alloc;
      fills.set(h, keepWhatMovesDoNotPayFor(ctx, worthIt, alloc, runningRpm, carried));
    }
    floors[u.name] = Math.max(0, podsFor(fills.get(h)![u.name] ?? 0, u, util));
  }
  return floors;
}

/**
 * The payback rule. Moving traffic off running pods of a unit A onto a cheaper unit B whose pods
 * must first start pays only when the saving over the time the traffic then stays on B outweighs
 * what the move costs: B's new pods billed through their start-up while they earn nothing, and
 * A's nodes billed until Karpenter consolidates them. Over a stay of H seconds once B's pods are
 * ready, per request served: moving costs c_B·(S_B + H) + c_A·T against c_A·H for staying, so it
 * pays only when c_B·(1 + S_B/H) < c_A·(1 − T/H). S is the spec's start-up time (the policy's
 * belief), T the NodePools' consolidation (emptyNodeSeconds), H what the policy can see of the
 * stay (`stayHorizonSeconds`). Where a move does not pay, A keeps the traffic its running pods
 * carry now (`carriedNow`) and B starts that many fewer pods, cheapest A first. Growth beyond what
 * runs still goes to the cheapest pods to start; the cost order among running pods is unchanged.
 * The plan is the plain cost order's otherwise (a family share limit may be exceeded by what A
 * keeps: it only keeps traffic A already carries).
 * Without it the fill starts trn1 pods to take traffic from running GPU pods minutes before inf2
 * is proven back and takes it all (a stepping stone that costs start-up and consolidation twice).
 */
function keepWhatMovesDoNotPayFor(
  ctx: PolicyContext,
  ordered: ReadonlyArray<Unit>,
  planned: Record<string, number>,
  runningRpm: (u: Unit) => number,
  carried: (u: Unit) => number,
): Record<string, number> {
  const alloc = { ...planned };
  const tail = ctx.settings.emptyNodeSeconds;
  for (const b of ordered) {
    let toStart = Math.max(0, (alloc[b.name] ?? 0) - runningRpm(b));
    if (toStart <= 0) continue;
    const stay = stayHorizonSeconds(ctx, ordered, b);
    if (stay === Infinity) continue;
    const moveCost = costPerRequest(b) * (1 + b.startupSeconds / stay);
    for (const a of ordered) {
      if (toStart <= 0) break;
      if (costPerRequest(a) <= costPerRequest(b) || moveCost < costPerRequest(a) * (1 - tail / stay)) continue;
      const kept = Math.min(Math.max(0, carried(a) - (alloc[a.name] ?? 0)), toStart);
      alloc[a.name] = (alloc[a.name] ?? 0) + kept;
      alloc[b.name] = (alloc[b.name] ?? 0) - kept;
      toStart -= kept;
    }
  }
  return alloc;
}

/**
 * The traffic each unit carries now on its running pods: its live share of the demand, up to what
 * its ready pods serve at the target utilisation. Pods that carry none (a warm reserve, pods
 * being released) are not traffic a move would take away. Unread weights or demand: none.
 */
function carriedNow(ctx: PolicyContext, ordered: ReadonlyArray<Unit>, runningRpm: (u: Unit) => number): (u: Unit) => number {
  const live = liveRpm(ctx, ordered, ctx.demandRpm);
  return (u) => (live === null ? 0 : Math.min(live(u), runningRpm(u)));
}

/**
 * How long traffic moved onto `u` can be expected to stay there: until the earliest pool cheaper
 * than `u` that is short now could be proven back by its probe (then the traffic moves on);
 * unbounded when none is short.
 */
function stayHorizonSeconds(ctx: PolicyContext, units: ReadonlyArray<Unit>, u: Unit): number {
  let stay = Infinity;
  for (const cheaper of units) {
    if (cheaper.family === u.family || costPerRequest(cheaper) >= costPerRequest(u) || !isShort(ctx.state.pools, cheaper.family)) continue;
    stay = Math.min(stay, secondsUntilProvenBack(ctx, cheaper));
  }
  return stay;
}

/**
 * The soonest a short pool's probe could prove it back, from the pool state: a running probe once
 * its pod has had its start-up; otherwise a probe started when it is next due (the probe interval,
 * the refusals aged out of Karpenter's cache, the emptied nodes consolidated) plus its start-up.
 * Start-up times are the spec's (the policy's belief).
 */
function secondsUntilProvenBack(ctx: PolicyContext, probeUnit: Unit): number {
  const { settings, now } = ctx;
  const pool = ctx.state.pools[probeUnit.family];
  if (!pool) return probeUnit.startupSeconds;
  if (pool.probe) return Math.max(0, (pool.probe.startedAt - now) / 1000 + probeUnit.startupSeconds);
  const due = Math.max(
    now,
    pool.lastProbeAt === null ? -Infinity : pool.lastProbeAt + settings.probeIntervalSeconds * 1000,
    pool.lastSignalAt === null ? -Infinity : pool.lastSignalAt + settings.shortageSignalSeconds * 1000,
    pool.shrankAt == null ? -Infinity : pool.shrankAt + settings.emptyNodeSeconds * 1000,
  );
  return (due - now) / 1000 + probeUnit.startupSeconds;
}

/**
 * The pods a short pool will still give a unit: its ready pods and those starting on a node
 * Karpenter has already launched (a hold or a refusal stops new launches, not nodes that run), not
 * its Pending ones. Counting only the ready ones started pods elsewhere for demand that pods
 * already starting here would serve.
 */
function keptPods(o: UnitObservation | undefined): number {
  return Math.max(healthyPods(o), podsOnNodes(o) ?? 0);
}

/**
 * A running probe whose pods all have a node (none Pending): the pool has launched again. The
 * probe was started only once the pool's emptied nodes were gone, so the node is a new one. The
 * plan then asks the pool for what it wants at once instead of a start-up later, when the probe's
 * pod is ready: traffic still moves only onto ready pods and the mode still waits for the probe,
 * and pods the pool refuses after all wait Pending, which bills nothing.
 */
function probeLaunched(ctx: PolicyContext, u: Unit): boolean {
  const probe = ctx.state.pools[u.family]?.probe;
  const o = ctx.observed.get(u.name);
  if (!probe || probe.unit !== u.name || o?.pendingPods == null || o.desiredPods == null) return false;
  return o.pendingPods === 0 && o.desiredPods >= probe.baselineReady + probe.pods;
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

/** A pass's capacity limited so that each family's units, in order, carry at most `budget` together. */
function withinFamilyShare(capacity: (u: Unit) => number, budget: number, ordered: ReadonlyArray<Unit>): (u: Unit) => number {
  return (u) => {
    let left = budget;
    for (const o of ordered) {
      if (o === u) break;
      if (o.family === u.family) left -= capacity(o);
    }
    return Math.max(0, Math.min(capacity(u), left));
  };
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
