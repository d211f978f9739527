import type { FleetSpec, Unit } from '../spec/schema.ts';
import type { Scenario } from './scenario.ts';

/**
 * A clairvoyant lower bound on what serving the scenario's demand can cost: knowing the demand
 * and the capacity windows exactly, every minute it runs the cheapest whole pods that serve the
 * minute's demand at the breaking point (maxRpm), with no start-up, health-check or scale-down
 * waste: a pod costs only while it is needed. A numeric capacity limit caps the family's nodes;
 * a `hold` lets the family keep, never grow, the nodes it had when the hold began, which the
 * bound chooses with hindsight (a dynamic programme over the hold: the count may only fall).
 * Overlapping holds of two families: only the first is held, the other is treated as unlimited,
 * which keeps it a lower bound. Services are bounded each on its own with the whole of every
 * family's limit (services sharing a family could not all have it: again a lower bound).
 */
export interface Bound {
  totalCost: number;
  costPerMillion: number;
}

interface Slot {
  unit: Unit;
  /** Dollars per hour per pod (0 for pods already paid for). */
  price: number;
}

export function clairvoyantBound(scenario: Scenario, fleet: FleetSpec, services: string[]): Bound {
  const { file } = scenario;
  const minutes = file.durationMinutes;
  const steps = 60 / file.stepSeconds;
  const demandAt = (service: string, m: number) => {
    let sum = 0;
    for (let k = 0; k < steps; k++) sum += scenario.demand[service]!(m + k / steps);
    return sum / steps;
  };
  const holds = nonOverlappingHolds(file.capacity, minutes);
  let dollarsPerHourMinutes = 0;
  let requests = 0;
  for (const service of services) {
    const units = fleet.units.filter((u) => u.service === service);
    const demand = Array.from({ length: minutes }, (_, m) => demandAt(service, m));
    requests += demand.reduce((s, d) => s + d, 0);
    const capsAt = (m: number): Map<string, number> => {
      const caps = new Map<string, number>();
      for (const w of file.capacity) if (typeof w.maxInstances === 'number' && m >= w.fromMinute && m < w.toMinute) caps.set(w.family, Math.min(caps.get(w.family) ?? Infinity, w.maxInstances));
      return caps;
    };
    const held = new Set<number>();
    for (const h of holds) {
      if (!units.some((u) => u.family === h.family)) continue;
      for (let m = h.from; m < h.to; m++) held.add(m);
      dollarsPerHourMinutes += holdCost(units, h.family, h.from, h.to, demand, capsAt);
    }
    for (let m = 0; m < minutes; m++) if (!held.has(m)) dollarsPerHourMinutes += minCost(units.map((u) => ({ unit: u, price: u.pricePerHour })), demand[m]!, capsAt(m));
  }
  const totalCost = dollarsPerHourMinutes / 60;
  return { totalCost: round2(totalCost), costPerMillion: requests > 0 ? round2((totalCost / requests) * 1e6) : 0 };
}

/** Hold windows by start; one that overlaps an earlier one (of any family) is left out. */
function nonOverlappingHolds(capacity: Scenario['file']['capacity'], minutes: number): Array<{ family: string; from: number; to: number }> {
  const holds = capacity
    .filter((w) => w.maxInstances === 'hold')
    .map((w) => ({ family: w.family, from: Math.ceil(w.fromMinute), to: Math.min(minutes, Math.ceil(w.toMinute)) }))
    .sort((a, b) => a.from - b.from);
  const kept: typeof holds = [];
  for (const h of holds) if (!kept.some((k) => h.from < k.to && k.from < h.to)) kept.push(h);
  return kept;
}

/**
 * The cheapest way through a hold of `family` (dollars per hour, summed over its minutes): the
 * family's node count n(t) may only fall; each minute pays n(t) nodes and the cheapest other pods.
 */
function holdCost(units: Unit[], family: string, from: number, to: number, demand: number[], capsAt: (m: number) => Map<string, number>): number {
  const held = units.filter((u) => u.family === family);
  const price = Math.min(...held.map((u) => u.pricePerHour));
  const maxNodes = Math.ceil(Math.max(...demand.slice(from, to), 0) / Math.min(...held.map((u) => u.maxRpm))) + 1;
  const costWith = (m: number, n: number) => {
    const slots = units.map((u) => ({ unit: u, price: u.family === family ? 0 : u.pricePerHour }));
    const caps = new Map(capsAt(m));
    caps.set(family, Math.min(n, caps.get(family) ?? Infinity));
    return n * price + minCost(slots, demand[m]!, caps);
  };
  // next[n]: the cheapest from minute m + 1 to the end with n nodes of the family at m + 1 at most.
  let next = new Array<number>(maxNodes + 1).fill(0);
  for (let m = to - 1; m >= from; m--) {
    const here = new Array<number>(maxNodes + 1);
    let bestBelow = Infinity;
    for (let n = 0; n <= maxNodes; n++) {
      bestBelow = Math.min(bestBelow, costWith(m, n) + next[n]!);
      here[n] = bestBelow; // with n nodes at m, any count up to n may be kept
    }
    next = here;
  }
  return next[maxNodes]!;
}

/**
 * The cheapest whole pods (dollars per hour) that serve `demand` rpm at the breaking point under
 * per-family caps: branch and bound over the units in cost-per-request order, pruned by the
 * fractional (LP) bound. Demand the capacity cannot serve is left unserved, at the cost of all
 * the capacity there is.
 */
export function minCost(slots: Slot[], demand: number, caps: ReadonlyMap<string, number>): number {
  const ordered = [...slots].sort((a, b) => a.price / a.unit.maxRpm - b.price / b.unit.maxRpm || a.unit.name.localeCompare(b.unit.name));
  const capOf = (left: Map<string, number>, s: Slot) => Math.min(s.unit.maxReplicas, left.get(s.unit.family) ?? Infinity);
  const total = ordered.reduce((s, x) => s + capOf(new Map(caps), x) * x.unit.maxRpm, 0);
  const need = Math.min(demand, total) - 1e-9;
  if (need <= 0) return 0;
  let best = Infinity;
  const lp = (i: number, remaining: number, left: Map<string, number>) => {
    let cost = 0;
    const l = new Map(left);
    for (let j = i; j < ordered.length && remaining > 0; j++) {
      const s = ordered[j]!;
      const take = Math.min(remaining, capOf(l, s) * s.unit.maxRpm);
      cost += (take / s.unit.maxRpm) * s.price;
      remaining -= take;
      l.set(s.unit.family, (l.get(s.unit.family) ?? Infinity) - take / s.unit.maxRpm);
    }
    return remaining > 1e-9 ? Infinity : cost;
  };
  const search = (i: number, remaining: number, cost: number, left: Map<string, number>) => {
    if (remaining <= 0) {
      best = Math.min(best, cost);
      return;
    }
    if (i >= ordered.length || cost + lp(i, remaining, left) >= best - 1e-12) return;
    const s = ordered[i]!;
    const most = Math.min(Math.ceil(remaining / s.unit.maxRpm), Math.floor(capOf(left, s)));
    for (let k = most; k >= 0; k--) {
      const l = new Map(left);
      if (l.has(s.unit.family)) l.set(s.unit.family, l.get(s.unit.family)! - k);
      search(i + 1, remaining - k * s.unit.maxRpm, cost + k * s.price, l);
    }
  };
  search(0, need, 0, new Map(caps));
  return best;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
