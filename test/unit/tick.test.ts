import { describe, expect, it } from 'vitest';
import type { Alert } from '../../shared/src/core/types.ts';
import { plan } from '../../shared/src/reconcile/plan.ts';
import type { Ports } from '../../shared/src/reconcile/ports.ts';
import { ACTUATION_ALERT_AFTER, runTick } from '../../shared/src/reconcile/tick.ts';
import { simPorts } from '../../shared/src/sim/ports.ts';
import { parseScenario } from '../../shared/src/sim/scenario.ts';
import { World, mulberry32 } from '../../shared/src/sim/index.ts';

// The reconcile pipeline against the simulator's world (the in-process implementation of the
// ports). Faults the world cannot produce come from named fault injectors wrapping its ports.

function settledWorld() {
  const scenario = parseScenario(
    { name: 't', durationMinutes: 60, fleet: 'default', demand: { sd21: { points: [[0, 900]] } } },
    `${process.cwd()}/test/unit/inline.yaml`,
  );
  const fleet = { ...scenario.fleet, services: { sd21: scenario.fleet.services['sd21']! }, units: scenario.fleet.units.filter((u) => u.service === 'sd21') };
  const world = new World(fleet, scenario.file, ['sd21'], mulberry32(1));
  let now = 0;
  const alerts: Alert[] = [];
  const ports = simPorts(world, { now: () => now * 1000 }, alerts);
  const advance = async (seconds: number, policy: 'static-cost' | 'optimizer' = 'static-cost') => {
    for (let t = 0; t < seconds; t += 10) {
      if (now % 60 === 0) await runTick(fleet, ports, { policy });
      now += 10;
      world.step(now, { sd21: 900 });
    }
  };
  return { fleet, world, ports, alerts, advance, at: () => now };
}

/** Counts the writes that pass through the router and autoscaler ports. */
function countingWrites(ports: Ports) {
  const counts = { setWeights: 0, setScaling: 0 };
  const router = { ...ports.router, setWeights: (...a: Parameters<Ports['router']['setWeights']>) => (counts.setWeights++, ports.router.setWeights(...a)) };
  const autoscaler = { ...ports.autoscaler, setScaling: (...a: Parameters<Ports['autoscaler']['setScaling']>) => (counts.setScaling++, ports.autoscaler.setScaling(...a)) };
  return { ports: { ...ports, router, autoscaler }, counts };
}

describe('runTick', () => {
  it('a tick on a settled fleet writes nothing', async () => {
    const { fleet, ports, advance } = settledWorld();
    await advance(40 * 60);
    const { ports: counted, counts } = countingWrites(ports);
    const result = await runTick(fleet, counted, { policy: 'static-cost' });
    expect(result.plan).toEqual({ weights: [], scaling: [] });
    expect(counts).toEqual({ setWeights: 0, setScaling: 0 });
    expect(result.recorded).toBe(true);
  });

  it('the first tick writes the weights and reads them back', async () => {
    const { fleet, ports } = settledWorld();
    const result = await runTick(fleet, ports, { policy: 'static-cost' });
    expect(result.applied.weights).toEqual(['sd21']);
    expect(result.mismatches).toEqual([]);
    const route = await ports.router.readRoute('sd21', fleet.units);
    expect(route.weights).toEqual(result.decision.services[0]!.weights);
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

  it('of two concurrent ticks only one records its state and sends alerts', async () => {
    const { fleet, ports, alerts } = settledWorld();
    const [a, b] = await Promise.all([runTick(fleet, ports, { policy: 'step' }), runTick(fleet, ports, { policy: 'step' })]);
    expect([a.recorded, b.recorded].sort()).toEqual([false, true]);
    const loser = a.recorded ? b : a;
    expect(loser.alerts).toEqual([]);
    expect(alerts.length).toBe((a.recorded ? a : b).alerts.length);
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
    const d = result.decision.services[0]!;
    expect(d.reasons.join('\n')).toMatch(/incomplete observation \(metrics\)/);
    expect(d.alerts.map((a) => a.kind)).toContain('incomplete-observation');
    expect(Object.values(d.weights).reduce((s, w) => s + w, 0)).toBeGreaterThan(0);
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
