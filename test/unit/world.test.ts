import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../shared/src/sim/scenario.ts';
import { World, mulberry32, p99At, simulate } from '../../shared/src/sim/index.ts';
import { podPhase, type UnitWorld } from '../../shared/src/sim/world.ts';

// The simulated world on its own: KEDA/HPA, Karpenter and the ALB as they behave, step by step.

function worldWith(capacity: unknown[] = [], startup = 120, settings: Record<string, unknown> = {}) {
  const scenario = parseScenario(
    {
      name: 'w',
      durationMinutes: 60,
      fleet: 'default',
      demand: { sd21: { points: [[0, 100]] } },
      capacity,
      startupSeconds: { default: startup },
      nodeLaunchSeconds: 30,
      ...settings,
    },
    `${process.cwd()}/test/unit/inline.yaml`,
  );
  const fleet = { ...scenario.fleet, units: scenario.fleet.units.filter((u) => u.service === 'sd21') };
  const world = new World(fleet, scenario.file, ['sd21'], mulberry32(7));
  for (const u of world.units.values()) u.weight = 0;
  const unit = world.units.get('sd21-inf2-neuron')!;
  unit.weight = 1; // all traffic to inf2
  let t = 0;
  const run = (seconds: number, rpm: number) => {
    for (let s = 0; s < seconds; s += 10) {
      t += 10;
      world.step(t, { sd21: rpm });
    }
  };
  return { world, unit, run, now: () => t };
}

const ready = (u: { pods: Array<{ readyAt: number | null }> }) => u.pods.filter((p) => p.readyAt !== null).length;

describe('KEDA/HPA in the simulator', () => {
  it('scales up to ceil(metric / target) as soon as the trigger reads the minute, then the pods start up', () => {
    const { unit, run } = worldWith();
    unit.scaling = { minReplicas: 1, maxReplicas: 40, targetRpm: 100 };
    run(300, 100); // settle at one ready pod
    expect(ready(unit)).toBe(1);
    run(190, 450); // the minute [300 s, 360 s) of 450 rpm is read from 480 s on
    expect(unit.pods.length).toBeGreaterThanOrEqual(4);
    expect(ready(unit)).toBe(1);
    run(240, 450);
    expect(ready(unit)).toBe(5);
  });

  it("reads what KEDA's aws-cloudwatch trigger reads: the minute that ended metricEndTimeOffset ago, once CloudWatch has it", () => {
    const { world, unit, run, now } = worldWith();
    unit.scaling = { minReplicas: 1, maxReplicas: 40, targetRpm: 100 };
    run(300, 100);
    run(170, 450); // demand jumped at 300 s; at 470 s the trigger still reads the minute [240 s, 300 s)
    expect(world.kedaMetric(unit, now())).toBeCloseTo(100, 6);
    expect(unit.pods.length).toBe(1);
    run(20, 450); // from 480 s it reads [300 s, 360 s)
    expect(world.kedaMetric(unit, now())).toBeCloseTo(450, 6);
    expect(unit.pods.length).toBeGreaterThanOrEqual(4);
  });

  it('a minute CloudWatch does not have yet reads as minMetricValue (0), not as the minute before', () => {
    const { world, unit, run, now } = worldWith([], 120, { metricDelaySeconds: 300, keda: { metricEndTimeOffsetSeconds: 120 } });
    unit.scaling = { minReplicas: 1, maxReplicas: 40, targetRpm: 100 };
    run(600, 100);
    expect(world.kedaMetric(unit, now())).toBe(0); // the minute ending at 480 s arrives at 780 s
    const lagged = worldWith([], 120, { metricDelaySeconds: 300, keda: { metricEndTimeOffsetSeconds: 360 } });
    lagged.unit.scaling = { minReplicas: 1, maxReplicas: 40, targetRpm: 100 };
    lagged.run(600, 100);
    expect(lagged.world.kedaMetric(lagged.unit, lagged.now())).toBeCloseTo(100, 6);
  });

  it('does nothing within the 10% tolerance', () => {
    const { unit, run } = worldWith();
    unit.scaling = { minReplicas: 4, maxReplicas: 40, targetRpm: 100 };
    run(300, 400);
    unit.scaling = { ...unit.scaling, minReplicas: 0 };
    run(300, 430); // 7.5% over target per pod
    expect(unit.pods.length).toBe(4);
  });

  it('scales down only after the 300 s stabilisation window', () => {
    const { unit, run } = worldWith();
    unit.scaling = { minReplicas: 1, maxReplicas: 40, targetRpm: 100 };
    run(300, 100); // one pod: a group with no target counts no request, so KEDA could not see the demand
    unit.scaling = { minReplicas: 0, maxReplicas: 40, targetRpm: 100 };
    run(400, 800);
    expect(unit.pods.length).toBe(8);
    run(360, 200); // the trigger reads 200 rpm from 3 minutes after the fall; 300 s more before it acts
    expect(unit.pods.length).toBe(8);
    run(240, 200);
    expect(unit.pods.length).toBe(2);
  });

  it('keeps within min and max replicas', () => {
    const { unit, run } = worldWith();
    unit.scaling = { minReplicas: 3, maxReplicas: 5, targetRpm: 100 };
    run(120, 0);
    expect(unit.pods.length).toBe(3);
    run(240, 5000);
    expect(unit.pods.length).toBe(5);
  });
});

describe('Karpenter and capacity limits in the simulator', () => {
  it('a held family launches no node, emits InsufficientCapacity, and keeps its running nodes', () => {
    const { world, unit, run } = worldWith([{ family: 'inf2', fromMinute: 10, toMinute: 30, maxInstances: 'hold' }]);
    unit.scaling = { minReplicas: 1, maxReplicas: 40, targetRpm: 100 };
    run(600, 300);
    expect(ready(unit)).toBe(3);
    run(240, 900);
    expect(ready(unit)).toBe(3);
    expect(unit.pods.filter((p) => p.nodeAt === null).length).toBeGreaterThan(0);
    expect(world.signals.some((s) => s.family === 'inf2' && s.kind === 'insufficient-capacity')).toBe(true);
    run(25 * 60, 900); // the hold ends at minute 30
    expect(ready(unit)).toBe(9);
  });

  it('a limit below the running count reclaims the excess nodes, as an interruption would', () => {
    const { world, unit, run } = worldWith([{ family: 'inf2', fromMinute: 15, toMinute: 30, maxInstances: 1 }]);
    unit.scaling = { minReplicas: 1, maxReplicas: 40, targetRpm: 100 };
    run(600, 400);
    expect(ready(unit)).toBe(4);
    run(300, 400);
    expect(unit.pods.filter((p) => p.nodeAt !== null).length).toBe(1);
    expect(world.signals.some((s) => s.kind === 'interruption')).toBe(true);
  });
});

const healthy = (world: World, u: UnitWorld) => world.targetsOf(u).healthy;
const cost = (world: World, seconds: number, run: (s: number, rpm: number) => void, rpm: number) => {
  let dollars = 0;
  const step = world.step.bind(world);
  world.step = (t, demand) => {
    const f = step(t, demand);
    dollars += f.costDollars;
    return f;
  };
  run(seconds, rpm);
  world.step = step;
  return dollars;
};

describe('the model servers in the simulator: a bounded queue, then 503 and time-outs', () => {
  it('beyond the breaking point requests queue and p99 grows with the backlog before anything fails', () => {
    const { world, unit, run } = worldWith([], 120, { modelServer: { maxWaitSeconds: 60 } });
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(600, 100);
    expect(healthy(world, unit)).toBe(2);
    run(60, 231); // 10% over two pods' breaking point
    expect(unit.last.failedRpm).toBe(0);
    expect(unit.last.servedRpm).toBeCloseTo(210, 5);
    expect(unit.backlog).toBeCloseTo(21, 5);
    expect(unit.last.p99Seconds).toBeGreaterThan(0.9 + 5);
  });

  it('what would wait longer than the time-out fails; the rest is still served', () => {
    const { world, unit, run } = worldWith([], 120, { modelServer: { maxWaitSeconds: 600 } });
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(600, 100);
    run(20 * 60, 300);
    expect(healthy(world, unit)).toBe(2);
    expect(unit.last.servedRpm).toBeCloseTo(210, 5);
    expect(unit.last.failedRpm).toBeCloseTo(90, 5);
    expect(unit.backlog).toBeCloseTo(210, 5); // a minute of work: the time-out
  });

  it('a full queue is refused at once (503), counted by the model server as received and as errors', () => {
    const { world, unit, run } = worldWith([], 120, { modelServer: { maxQueue: 5, maxWaitSeconds: 600 } });
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(600, 100);
    run(120, 300);
    expect(unit.backlog).toBeCloseTo(10, 5);
    expect(unit.last.failedRpm).toBeCloseTo(90, 5);
    const minute = unit.minutes.at(-1)!;
    expect(minute.requests).toBeCloseTo(300, 5);
    expect(minute.success + minute.errors).toBeCloseTo(minute.requests, 5);
    expect(minute.errors).toBeCloseTo(90, 5);
    void world;
  });
});

describe("the model server's admission (model-servers: max_wait_s)", () => {
  it('a request that could not start within maxWaitSeconds is refused at once: the queue holds the rate × maxWait, latency stays within it', () => {
    const { world, unit, run } = worldWith(); // defaults: maxWaitSeconds 2, maxQueue 256
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(600, 100);
    run(120, 300);
    expect(healthy(world, unit)).toBe(2);
    expect(unit.backlog).toBeCloseTo((210 / 60) * 2, 5);
    expect(unit.last.servedRpm).toBeCloseTo(210, 5);
    expect(unit.last.failedRpm).toBeCloseTo(90, 5);
    expect(unit.last.p99Seconds).toBeLessThanOrEqual(0.9 + 2 + 1e-9);
  });
});

describe('the ALB in the simulator: health checks, fail-open, a group with no target', () => {
  it('a ready pod takes traffic only once the health checks passed it (interval × healthy threshold)', () => {
    const { world, unit, run } = worldWith([], 120, { alb: { healthCheckIntervalSeconds: 30, healthyThresholdCount: 5 } });
    unit.scaling = { minReplicas: 1, maxReplicas: 2, targetRpm: 105 };
    run(600, 100);
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(200, 150); // the second pod is ready (120 s + jitter) but not healthy yet
    expect(ready(unit)).toBe(2);
    expect(healthy(world, unit)).toBe(1);
    expect(unit.backlog).toBeGreaterThan(0); // one healthy pod takes all 150 rpm
    run(150, 150);
    expect(healthy(world, unit)).toBe(2);
  });

  it('with no healthy target but registered ones, the ALB fails open onto them', () => {
    const { world, unit, run } = worldWith([], 120, { alb: { healthCheckIntervalSeconds: 60, healthyThresholdCount: 10 } });
    unit.scaling = { minReplicas: 1, maxReplicas: 1, targetRpm: 105 };
    run(200, 50);
    expect(ready(unit)).toBe(1);
    expect(healthy(world, unit)).toBe(0);
    expect(unit.last.servedRpm).toBeCloseTo(50, 5);
  });

  it('a unit with weight and no registered target fails its share, and no model server counts it', () => {
    const { world, unit, run } = worldWith();
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(600, 100);
    const trn1 = world.units.get('sd21-trn1-neuron')!;
    trn1.weight = 1; // half the traffic to a group with no pods
    run(60, 200);
    expect(trn1.last.failedRpm).toBeCloseTo(100, 5);
    expect(trn1.last.noTargetRpm).toBeCloseTo(100, 5);
    expect(trn1.minutes.at(-1)!.requests).toBe(0);
  });
});

describe('nodes in the simulator: they outlive their pods until Karpenter consolidates them', () => {
  it('a scaled-down pod leaves its node billed for the consolidation time', () => {
    const { world, unit, run } = worldWith([], 120, { consolidationSeconds: 120 });
    unit.scaling = { minReplicas: 3, maxReplicas: 3, targetRpm: 105 };
    run(600, 100);
    unit.scaling = { minReplicas: 1, maxReplicas: 1, targetRpm: 105 };
    const hour = unit.unit.pricePerHour / 3600;
    expect(cost(world, 60, run, 100)).toBeCloseTo(3 * 60 * hour, 6); // pods gone, nodes still up
    expect(world.nodesOf('inf2')).toHaveLength(3);
    run(120, 100);
    expect(world.nodesOf('inf2')).toHaveLength(1);
  });

  it('a pod created while an empty node of its type is up goes onto it, with no launch', () => {
    const { world, unit, run } = worldWith([], 300, { consolidationSeconds: 600 });
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(900, 100);
    unit.scaling = { minReplicas: 1, maxReplicas: 1, targetRpm: 105 };
    run(30, 100);
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(10, 100);
    expect(world.nodesOf('inf2')).toHaveLength(2);
    expect(unit.pods.every((p) => p.scheduledAt !== null)).toBe(true); // bound at once: the node is up
  });

  it('a pod is Unschedulable (pending) until its node has joined, then starting', () => {
    const { unit, run } = worldWith();
    unit.scaling = { minReplicas: 1, maxReplicas: 1, targetRpm: 105 };
    run(30, 0);
    expect(unit.pods.map(podPhase)).toEqual(['unschedulable']); // node launching (30 s)
    run(30, 0);
    expect(unit.pods.map(podPhase)).toEqual(['starting']);
  });
});

describe('p99 at a utilisation', () => {
  it('reaches the SLO exactly at the breaking point; beyond it only the queue adds', () => {
    expect(p99At(0.5, 0.9)).toBeLessThan(0.9);
    expect(p99At(1, 0.9)).toBeCloseTo(0.9, 10);
    expect(p99At(1.2, 0.9)).toBeCloseTo(0.9, 10);
  });
});

describe('minutes over the SLO as clients see them', () => {
  it('a unit with weight whose nodes are all reclaimed fails its share, and that minute is over the SLO though every served request was fast', async () => {
    const scenario = parseScenario(
      {
        name: 'reclaim-all',
        durationMinutes: 20,
        fleet: 'default',
        demand: { sd21: { points: [[0, 600]] } },
        capacity: [{ family: 'inf2', fromMinute: 10, toMinute: 20, maxInstances: 0 }],
        warmupMinutes: 30,
      },
      `${process.cwd()}/test/unit/inline.yaml`,
    );
    const { runs } = await simulate(scenario, { policies: ['static-cost'] });
    // The nodes go in the step that ends minute 9; the interruption's tick then takes inf2's weight away.
    const row = runs[0]!.timeline.find((r) => r.units['sd21-inf2-neuron']!.failedRpm > 0)!;
    expect(row.minute).toBe(9);
    expect(row.units['sd21-inf2-neuron']!.failedRpm).toBeGreaterThan(0.01 * row.demandRpm);
    expect(Math.max(...Object.values(row.units).map((u) => u.p99Seconds))).toBeLessThanOrEqual(0.9);
    expect(row.p99Seconds).toBeGreaterThan(0.9);
    expect(runs[0]!.summary.minutesOverSlo).toBeGreaterThanOrEqual(1);
  });
});
