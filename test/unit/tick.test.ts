import { describe, expect, it } from 'vitest';
import type { Alert } from '../../shared/src/core/types.ts';
import { plan } from '../../shared/src/reconcile/plan.ts';
import type { Ports } from '../../shared/src/reconcile/ports.ts';
import { ACTUATION_ALERT_AFTER, demandHistory, runTick, sameState, UnknownServiceError } from '../../shared/src/reconcile/tick.ts';
import { simPorts } from '../../shared/src/sim/ports.ts';
import { parseScenario } from '../../shared/src/sim/scenario.ts';
import { World, mulberry32 } from '../../shared/src/sim/index.ts';

// The reconcile pipeline against the simulator's world (the in-process implementation of the
// ports). Faults the world cannot produce come from named fault injectors wrapping its ports.

function settledWorld(demand: Record<string, number> = { sd21: 900 }) {
  const services = Object.keys(demand);
  const scenario = parseScenario(
    { name: 't', durationMinutes: 60, fleet: 'default', demand: Object.fromEntries(services.map((s) => [s, { points: [[0, demand[s]!]] }])) },
    `${process.cwd()}/test/unit/inline.yaml`,
  );
  const fleet = {
    ...scenario.fleet,
    services: Object.fromEntries(services.map((s) => [s, scenario.fleet.services[s]!])),
    units: scenario.fleet.units.filter((u) => services.includes(u.service)),
  };
  const world = new World(fleet, scenario.file, services, mulberry32(1));
  let now = 0;
  const alerts: Alert[] = [];
  const ports = simPorts(world, { now: () => now * 1000 }, alerts);
  const advance = async (seconds: number, policy: 'static-cost' | 'optimizer' = 'static-cost') => {
    for (let t = 0; t < seconds; t += 10) {
      if (now % 60 === 0) await runTick(fleet, ports, { policy });
      now += 10;
      world.step(now, demand);
    }
  };
  return { fleet, world, ports, alerts, advance, at: () => now };
}

/** Counts every write that passes through the ports: ALB, KEDA, lease, state and SNS. */
function countingWrites(ports: Ports) {
  const counts = { setWeights: 0, setScaling: 0, acquire: 0, release: 0, save: 0, notify: 0 };
  const count = <A extends unknown[], R>(key: keyof typeof counts, fn: (...a: A) => R) => (...a: A): R => (counts[key]++, fn(...a));
  const counted: Ports = {
    ...ports,
    router: { ...ports.router, setWeights: count('setWeights', ports.router.setWeights.bind(ports.router)) },
    autoscaler: { ...ports.autoscaler, setScaling: count('setScaling', ports.autoscaler.setScaling.bind(ports.autoscaler)) },
    lease: { acquire: count('acquire', ports.lease.acquire.bind(ports.lease)), release: count('release', ports.lease.release.bind(ports.lease)) },
    store: { load: ports.store.load.bind(ports.store), save: count('save', ports.store.save.bind(ports.store)) },
    notifier: { notify: count('notify', ports.notifier.notify.bind(ports.notifier)) },
  };
  return { ports: counted, counts };
}

const NO_WRITES = { setWeights: 0, setScaling: 0, acquire: 0, release: 0, save: 0, notify: 0 };

describe('runTick', () => {
  it('a tick on a settled fleet writes nothing: no ALB or KEDA write, no lease, no state', async () => {
    const { fleet, ports, advance } = settledWorld();
    await advance(40 * 60);
    const { ports: counted, counts } = countingWrites(ports);
    const result = await runTick(fleet, counted, { policy: 'static-cost' });
    expect(result.outcome).toBe('unchanged');
    expect(result.plan).toEqual({ weights: [], scaling: [] });
    expect(counts).toEqual(NO_WRITES);
    expect(result.recorded).toBe(true);
  });

  it('the first tick writes the weights under the lease, reads them back, and gives the lease back', async () => {
    const { fleet, ports } = settledWorld();
    const { ports: counted, counts } = countingWrites(ports);
    const result = await runTick(fleet, counted, { policy: 'static-cost' });
    expect(result.outcome).toBe('applied');
    expect(result.applied.weights).toEqual(['sd21']);
    expect(result.mismatches).toEqual([]);
    expect(counts).toMatchObject({ acquire: 1, release: 1, save: 1 });
    const route = await ports.router.readRoute('sd21', fleet.units);
    expect(route.weights).toEqual(result.decision.services[0]!.weights);
    // Released: another holder can take it at once.
    expect(await ports.lease.acquire('someone-else', 1000)).toBe(true);
  });

  it('raises capacity before it moves traffic', async () => {
    const { fleet, ports, advance } = settledWorld();
    await advance(40 * 60);
    const order: string[] = [];
    const spy: Ports = {
      ...ports,
      router: { ...ports.router, setWeights: async (...a) => (order.push('weights'), ports.router.setWeights(...a)) },
      autoscaler: { ...ports.autoscaler, setScaling: async (...a) => (order.push('scaling'), ports.autoscaler.setScaling(...a)) },
    };
    await runTick(fleet, spy, { policy: 'optimizer' });
    expect(order.length).toBeGreaterThan(0);
    expect(order.lastIndexOf('scaling')).toBeLessThan(order.indexOf('weights') === -1 ? Infinity : order.indexOf('weights'));
  });

  it('of two concurrent ticks exactly one acts; the other writes nothing and sends nothing', async () => {
    const { fleet, ports, alerts } = settledWorld();
    const { ports: counted, counts } = countingWrites(ports);
    const [a, b] = await Promise.all([runTick(fleet, counted, { policy: 'step' }), runTick(fleet, counted, { policy: 'step' })]);
    const outcomes = [a.outcome, b.outcome].sort();
    expect(outcomes[0]).toBe('applied');
    expect(['lease-held', 'state-moved']).toContain(outcomes[1]);
    const [winner, loser] = a.outcome === 'applied' ? [a, b] : [b, a];
    expect(loser.applied).toEqual({ weights: [], scaling: [] });
    expect(loser.alerts).toEqual([]);
    expect(loser.recorded).toBe(false);
    // Every write is the winner's: one rule write, one state write, its alerts once.
    expect(counts.setWeights).toBe(winner.applied.weights.length);
    expect(counts.setScaling).toBe(winner.applied.scaling.length);
    expect(counts.save).toBe(1);
    expect(alerts.length).toBe(winner.alerts.length);
  });

  it('a tick that finds the lease held writes nothing at all', async () => {
    const { fleet, ports } = settledWorld();
    await ports.lease.acquire('another-tick', 50_000);
    const { ports: counted, counts } = countingWrites(ports);
    const result = await runTick(fleet, counted, { policy: 'static-cost' });
    expect(result.outcome).toBe('lease-held');
    expect(result.plan.weights).toHaveLength(1);
    expect(counts).toEqual({ ...NO_WRITES, acquire: 1 });
    expect((await ports.store.load()).version).toBeNull();
  });

  it('a lease its holder never gave back (a crashed tick) expires, and the next tick acts', async () => {
    const { fleet, ports, advance, at } = settledWorld();
    await ports.lease.acquire('crashed-tick', 48_000);
    await advance(50);

    const result = await runTick(fleet, ports, { policy: 'static-cost' });

    expect(at()).toBe(50);
    expect(result.outcome).toBe('applied');
  });

  it('a tick whose state moved before it took the lease writes nothing, and gives the lease back', async () => {
    const { fleet, ports } = settledWorld();
    const { ports: counted, counts } = countingWrites(ports);
    // Fault injector: another writer (an override, a tick) saves the state just before our lease.
    const racing: Ports = {
      ...counted,
      lease: {
        ...counted.lease,
        acquire: async (...a) => (await ports.store.save({ version: 1, services: {} }, null), counted.lease.acquire(...a)),
      },
    };
    const result = await runTick(fleet, racing, { policy: 'static-cost' });
    expect(result.outcome).toBe('state-moved');
    expect(counts).toEqual({ ...NO_WRITES, acquire: 1, release: 1 });
    expect((await ports.router.readRoute('sd21', fleet.units)).weights).toEqual(Object.fromEntries(fleet.units.map((u) => [u.name, 0])));
  });

  it('keeps what other writers record in the state, and a steady tick still writes nothing', async () => {
    const { fleet, ports, advance } = settledWorld();
    await advance(40 * 60);
    const stored = await ports.store.load();
    const audit = [{ at: 1, event: 'override-set', by: 'ops' }];
    await ports.store.save({ ...stored.state, audit } as never, stored.version);
    const { ports: counted, counts } = countingWrites(ports);

    const steady = await runTick(fleet, counted, { policy: 'static-cost' });
    // Someone moves the weights by hand: the next tick puts them back and records its state.
    await ports.router.setWeights('sd21', fleet.units, Object.fromEntries(fleet.units.map((u) => [u.name, 1])));
    const applied = await runTick(fleet, counted, { policy: 'static-cost' });

    expect(steady.outcome).toBe('unchanged');
    expect(applied.outcome).toBe('applied');
    expect(counts.save).toBe(1);
    expect(((await ports.store.load()).state as unknown as { audit: unknown }).audit).toEqual(audit);
  });

  it('a dry run decides and plans, and writes nothing', async () => {
    const { fleet, ports } = settledWorld();
    const { ports: counted, counts } = countingWrites(ports);
    const result = await runTick(fleet, counted, { policy: 'static-cost', dryRun: true });
    expect(result.outcome).toBe('dry-run');
    expect(result.plan.weights.map((w) => w.service)).toEqual(['sd21']);
    expect(counts).toEqual(NO_WRITES);
  });

  it('a shard tick observes, decides and writes only its services, and keeps the others’ state', async () => {
    const { fleet, ports } = settledWorld({ sd21: 900, vit: 1200 });
    await runTick(fleet, ports, { policy: 'static-cost', services: ['vit'] });
    const vitState = (await ports.store.load()).state.services['vit'];
    const { ports: counted, counts } = countingWrites(ports);

    const result = await runTick(fleet, counted, { policy: 'static-cost', services: ['sd21'] });

    expect(result.observation.services.map((s) => s.service)).toEqual(['sd21']);
    expect(result.decision.services.map((d) => d.service)).toEqual(['sd21']);
    expect(result.applied.weights).toEqual(['sd21']);
    expect(counts.setWeights).toBe(1);
    const stored = (await ports.store.load()).state.services;
    expect(Object.keys(stored).sort()).toEqual(['sd21', 'vit']);
    expect(stored['vit']).toEqual(vitState);
  });

  it.each([
    [['sd22'], /unknown service\(s\) "sd22"; expected names from the fleet spec: sd21/],
    [[], /an empty list of services/],
  ])('refuses a shard of %j, naming what was wrong', async (services, message) => {
    const { fleet, ports } = settledWorld();
    await expect(runTick(fleet, ports, { services })).rejects.toThrow(UnknownServiceError);
    await expect(runTick(fleet, ports, { services })).rejects.toThrow(message);
  });

  it('gives the decision the service’s demand per complete minute, up to 30 minutes', async () => {
    const { fleet, ports, advance } = settledWorld();
    await advance(40 * 60);
    const result = await runTick(fleet, ports, { policy: 'static-cost', dryRun: true });
    const history = result.observation.services[0]!.demandHistory;
    expect(history).toHaveLength(30);
    expect(history.every(([minute], i) => i === 0 || minute - history[i - 1]![0] === 60_000)).toBe(true);
    expect(history.at(-1)![1]).toBeCloseTo(900, 6);
  });

  it(`alerts once when applying fails ${ACTUATION_ALERT_AFTER} ticks in a row, and keeps retrying`, async () => {
    const { fleet, ports, alerts } = settledWorld();
    // Fault injector: the listener rule refuses every write, as a throttled or denied API would.
    const failing: Ports = { ...ports, router: { ...ports.router, setWeights: async () => Promise.reject(new Error('ThrottlingException: Rate exceeded')) } };
    const results = [];
    for (let i = 0; i < ACTUATION_ALERT_AFTER + 1; i++) results.push(await runTick(fleet, failing, { policy: 'static-cost' }));
    expect(results.every((r) => r.errors.some((e) => e.step === 'apply' && e.message.includes('ThrottlingException')))).toBe(true);
    expect(results.every((r) => r.plan.weights.length === 1)).toBe(true);
    expect(alerts.filter((a) => a.kind === 'actuation-failing')).toHaveLength(1);
  });

  it('a write that does not stick is caught by the read-back and counted', async () => {
    const { fleet, ports } = settledWorld();
    // Fault injector: the router acknowledges writes but drops them.
    const lossy: Ports = { ...ports, router: { ...ports.router, setWeights: async () => undefined } };
    const result = await runTick(fleet, lossy, { policy: 'static-cost' });
    expect(result.mismatches).toHaveLength(1);
    expect(result.decision.state.services['sd21']!.actuationFailures).toBe(1);
  });

  it('an observation it could not make is said in the decision, and the decision stays safe', async () => {
    const { fleet, ports, advance } = settledWorld();
    await advance(40 * 60);
    // Fault injector: CloudWatch is down.
    const blind: Ports = { ...ports, metrics: { readUnitMetrics: async () => Promise.reject(new Error('ServiceUnavailable')) } };
    const result = await runTick(fleet, blind, { policy: 'optimizer' });
    expect(result.observation.missing).toContain('metrics');
    expect(result.observation.services[0]!.demandHistory).toEqual([]);
    const d = result.decision.services[0]!;
    expect(d.reasons.join('\n')).toMatch(/incomplete observation \(metrics\)/);
    expect(d.alerts.map((a) => a.kind)).toContain('incomplete-observation');
    expect(Object.values(d.weights).reduce((s, w) => s + w, 0)).toBeGreaterThan(0);
  });
});

describe('sameState', () => {
  const service = (mode: 'cost' | 'capacity') => ({ mode, since: 0, badTicks: 0, override: null, pools: {}, lastGoodWeights: { a: 1, b: 2 }, floors: {}, actuationFailures: 0 });
  it.each([
    ['another version only', { version: 1, services: { s: service('cost') } }, { version: 7, services: { s: service('cost') } }, true],
    ['keys in another order (as read back from JSON)', { version: 1, services: { s: service('cost') } }, { version: 1, services: { s: JSON.parse(JSON.stringify({ ...service('cost'), lastGoodWeights: { b: 2, a: 1 } })) } }, true],
    ['a mode changed', { version: 1, services: { s: service('cost') } }, { version: 1, services: { s: service('capacity') } }, false],
    ['a service more', { version: 1, services: { s: service('cost') } }, { version: 1, services: { s: service('cost'), t: service('cost') } }, false],
  ])('%s → %s', (_what, a, b, same) => {
    expect(sameState(a as never, b as never)).toBe(same);
  });
});

describe('demandHistory', () => {
  const m = (minute: number) => minute * 60_000;
  it.each([
    ['every unit reported every minute', [[[m(1), 10], [m(2), 20]], [[m(1), 1], [m(2), 2]]], [[m(1), 11], [m(2), 22]]],
    ['a minute one unit did not report is left out', [[[m(1), 10], [m(2), 20]], [[m(2), 2]]], [[m(2), 22]]],
    ['a unit without metrics leaves nothing known', [[[m(1), 10]], undefined], []],
    ['a unit that reported nothing leaves nothing known', [[[m(1), 10]], []], []],
    ['no units', [], []],
    ['out of order in, oldest first out', [[[m(3), 3], [m(1), 1]]], [[m(1), 1], [m(3), 3]]],
  ] as const)('%s', (_what, histories, expected) => {
    expect(demandHistory(histories as never)).toEqual(expected);
  });
});

describe('plan', () => {
  const observed = (weights: Record<string, number>) => ({
    at: 0,
    signals: [],
    missing: [],
    services: [{ service: 's', demandRpm: 1, units: Object.entries(weights).map(([unit, w]) => ({ unit, liveWeight: w, liveScaling: { minReplicas: 1, maxReplicas: 5, targetRpm: 10 } })) }],
  });
  const decision = (weights: Record<string, number>) => ({
    at: 0,
    policy: 'x',
    state: { version: 0, services: {} },
    services: [{ service: 's', mode: 'cost' as const, weights, reasons: [], alerts: [], state: {} as never, scaling: Object.fromEntries(Object.keys(weights).map((u) => [u, { minReplicas: 1, maxReplicas: 5, targetRpm: 10 }])) }],
  });

  it.each([
    ['the same weights', { a: 40, b: 60 }, { a: 40, b: 60 }, 0],
    ['a lone target group at another weight', { a: 100, b: 0 }, { a: 1, b: 0 }, 0],
    ['different weights', { a: 40, b: 60 }, { a: 50, b: 50 }, 1],
    ['a group switched off', { a: 40, b: 60 }, { a: 100, b: 0 }, 1],
  ])('%s → %i weight change(s)', (_what, live, wanted, changes) => {
    expect(plan(decision(wanted) as never, observed(live) as never).weights).toHaveLength(changes);
  });
});

describe('runTick when the cluster and the load balancer cannot be read', () => {
  it('keeps the last good weights and says the observation was incomplete, not that every unit is down', async () => {
    const { fleet, ports, advance } = settledWorld();
    await advance(40 * 60);
    const before = await ports.router.readRoute('sd21', fleet.units);
    // Fault injectors: the apiserver and ELBv2 both time out.
    const down = async () => Promise.reject(new Error('TimeoutError'));
    const blind: Ports = { ...ports, cluster: { readPods: down }, router: { ...ports.router, readRoute: down } };
    const result = await runTick(fleet, blind, { policy: 'static-cost' });
    const d = result.decision.services[0]!;
    expect(d.weights).toEqual(before.weights);
    expect(d.alerts.map((a) => a.kind)).toEqual(['incomplete-observation']);
    expect(d.reasons.join('\n')).toMatch(/not observed and no unit known healthy: keeping the last good weights/);
  });
});
