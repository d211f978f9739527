import type { PolicySettings, Unit } from '../spec/schema.ts';
import { initialPoolState } from './state.ts';
import type { PoolSignal, PoolState, UnitObservation } from './types.ts';

/**
 * Which pools (instance families) are short, and the bounded probe that proves one is back.
 *
 * A pool turns short on an InsufficientCapacity signal or on pods Pending past the grace time. It
 * stays short until a probe succeeds: once the signals have been quiet for as long as Karpenter
 * caches an unavailable offering, the cheapest unit of the pool has its floor raised by a few
 * pods; if they become ready the capacity is back, if the launch is refused again the probe
 * fails and is retried after the probe interval. A reservation (ODCR or Capacity Block) with free
 * instances lets the probe start without waiting for the signals to go quiet; it does not end a
 * shortage by itself: only pods that become ready prove the pool can take them.
 */

export interface PoolUpdate {
  pools: Record<string, PoolState>;
  reasons: string[];
  /** Families whose shortage began or ended on this tick. */
  started: string[];
  ended: string[];
}

type UnitView = Pick<Unit, 'name' | 'family' | 'pricePerHour' | 'maxRpm' | 'startupSeconds'>;

export function updatePools(
  units: ReadonlyArray<UnitView>,
  observed: ReadonlyMap<string, UnitObservation>,
  signals: ReadonlyArray<PoolSignal>,
  previous: Readonly<Record<string, PoolState>>,
  settings: PolicySettings,
  now: number,
): PoolUpdate {
  const reasons: string[] = [];
  const started: string[] = [];
  const ended: string[] = [];
  const pools: Record<string, PoolState> = {};
  const families = [...new Set(units.map((u) => u.family))].sort();

  for (const family of families) {
    const members = units.filter((u) => u.family === family);
    const prev = previous[family] ?? initialPoolState();
    const pool: PoolState = { ...prev, probe: prev.probe ? { ...prev.probe } : null };
    const recentSignal = latestRefusal(signals, family, now - settings.shortageSignalSeconds * 1000);
    const stuck = members.find((u) => {
      const o = observed.get(u.name);
      return (o?.pendingPods ?? 0) > 0 && (o?.oldestPendingSeconds ?? 0) > settings.pendingGraceSeconds;
    });
    const readyNow = members.reduce((s, u) => s + (observed.get(u.name)?.readyPods ?? 0), 0);

    if (recentSignal !== null || stuck) {
      if (pool.shortSince === null) {
        pool.shortSince = now;
        pool.readyAtShortage = readyNow;
        started.push(family);
        reasons.push(`pool ${family} is short: ${recentSignal !== null ? 'InsufficientCapacity' : `pods of ${stuck?.name} Pending > ${settings.pendingGraceSeconds}s`}`);
      }
      pool.lastSignalAt = Math.max(pool.lastSignalAt ?? 0, recentSignal ?? now);
    }

    if (pool.shortSince !== null) {
      // Pods going down while short leave nodes Karpenter keeps for a while: note when.
      const placed = placedOf(members, observed);
      if (placed !== null && pool.placedPods != null && placed < pool.placedPods) pool.shrankAt = now;
      if (placed !== null) pool.placedPods = placed;
      const probeUnit = cheapest(members);
      if (pool.probe) {
        // Unread pods prove nothing either way: the probe is judged on a tick that sees them
        // (a refused launch is proof enough on its own).
        const ready = observed.get(pool.probe.unit)?.readyPods ?? null;
        const refusedSince = latestRefusal(signals, family, pool.probe.startedAt);
        const deadline = pool.probe.startedAt + ((probeUnit?.startupSeconds ?? 600) + settings.pendingGraceSeconds) * 1000;
        if (ready !== null && ready >= pool.probe.baselineReady + pool.probe.pods) {
          reasons.push(`probe of ${family} succeeded: ${pool.probe.pods} pod(s) became ready on ${pool.probe.unit}; capacity is back`);
          ended.push(family);
          pools[family] = { ...initialPoolState(), lastProbeAt: now };
          continue;
        }
        if (refusedSince !== null || (ready !== null && now >= deadline)) {
          reasons.push(`probe of ${family} failed (${refusedSince !== null ? 'launch refused' : 'pods not ready in time'}); retry in ${settings.probeIntervalSeconds}s`);
          pool.probe = null;
          pool.lastProbeAt = now;
        } else if (ready === null) {
          reasons.push(`probing ${family}: pods of ${pool.probe.unit} not observed; the probe is judged when they are`);
        } else {
          reasons.push(`probing ${family}: waiting for ${pool.probe.pods} pod(s) on ${pool.probe.unit}`);
        }
      } else {
        // Karpenter keeps a refused offering cached for a while, so a probe waits for the signals
        // to go quiet; a reservation with free instances is another offering, so it need not.
        const quiet = now - (pool.lastSignalAt ?? 0) >= settings.shortageSignalSeconds * 1000;
        const reserved = reservationAvailable(signals, family, now - (settings.shortageSignalSeconds + settings.tickSeconds) * 1000);
        const due = pool.lastProbeAt === null || now - pool.lastProbeAt >= settings.probeIntervalSeconds * 1000;
        // A pod that lands on a node the pool's own scale-down left empty proves nothing.
        const emptied = pool.shrankAt != null && now - pool.shrankAt < settings.emptyNodeSeconds * 1000;
        if ((quiet || reserved) && due && emptied && probeUnit) {
          reasons.push(`probe of ${family} waits: its pods went down ${Math.round((now - pool.shrankAt!) / 1000)} s ago and Karpenter may still hold the emptied nodes`);
        } else if ((quiet || reserved) && due && probeUnit) {
          // A probe counts from the pods ready when it starts, so it needs them observed.
          const baselineReady = observed.get(probeUnit.name)?.readyPods ?? null;
          if (baselineReady === null) {
            reasons.push(`probe of ${family} waits: pods of ${probeUnit.name} not observed`);
          } else {
            pool.probe = { unit: probeUnit.name, startedAt: now, baselineReady, pods: settings.probePods };
            pool.lastProbeAt = now;
            reasons.push(
              `probing ${family}: raising ${probeUnit.name} to ${baselineReady + settings.probePods} pod(s)` +
                (quiet ? '' : ' (a capacity reservation has free instances: not waiting for the refusals to age out)'),
            );
          }
        }
      }
    }
    pools[family] = pool;
  }
  return { pools, reasons, started, ended };
}

export function isShort(pools: Readonly<Record<string, PoolState>>, family: string): boolean {
  return (pools[family]?.shortSince ?? null) !== null;
}

/** The floor a running probe needs on its unit, or 0. */
export function probeFloor(pools: Readonly<Record<string, PoolState>>, unit: string): number {
  for (const pool of Object.values(pools)) {
    if (pool.probe?.unit === unit) return pool.probe.baselineReady + pool.probe.pods;
  }
  return 0;
}

/** A unit's pods bound to a node (desired − Unschedulable): ready or starting; null when unread. */
export function podsOnNodes(o: UnitObservation | undefined): number | null {
  if (o?.desiredPods == null || o.pendingPods == null) return null;
  return Math.max(0, o.desiredPods - o.pendingPods);
}

/** The family's pods bound to a node, summed; null when any unit's are unread. */
function placedOf(members: ReadonlyArray<UnitView>, observed: ReadonlyMap<string, UnitObservation>): number | null {
  let sum = 0;
  for (const u of members) {
    const placed = podsOnNodes(observed.get(u.name));
    if (placed === null) return null;
    sum += placed;
  }
  return sum;
}

function latestRefusal(signals: ReadonlyArray<PoolSignal>, family: string, since: number): number | null {
  let latest: number | null = null;
  for (const s of signals) {
    if (s.family === family && (s.kind === 'insufficient-capacity' || s.kind === 'interruption') && s.at >= since) {
      latest = Math.max(latest ?? s.at, s.at);
    }
  }
  return latest;
}

/** An ODCR or Capacity Block of the family with free instances, read in this tick's window. */
function reservationAvailable(signals: ReadonlyArray<PoolSignal>, family: string, since: number): boolean {
  return signals.some((s) => s.family === family && s.kind === 'reservation-available' && s.at >= since);
}

function cheapest<T extends UnitView>(units: ReadonlyArray<T>): T | undefined {
  return [...units].sort((a, b) => a.pricePerHour / a.maxRpm - b.pricePerHour / b.maxRpm || a.name.localeCompare(b.name))[0];
}
