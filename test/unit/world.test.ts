import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../shared/src/sim/scenario.ts';
import { World, mulberry32, p99At } from '../../shared/src/sim/index.ts';

// The simulated world on its own: KEDA/HPA, Karpenter and the ALB as they behave, step by step.

function worldWith(capacity: unknown[] = [], startup = 120) {
  const scenario = parseScenario(
    {
      name: 'w',
      durationMinutes: 60,
      fleet: 'default',
      demand: { sd21: { points: [[0, 100]] } },
      capacity,
      startupSeconds: { default: startup },
      nodeLaunchSeconds: 30,
    },
    `${process.cwd()}/test/unit/inline.yaml`,
  );
  const fleet = { ...scenario.fleet, units: scenario.fleet.units.filter((u) => u.service === 'sd21') };
  const world = new World(fleet, scenario.file, ['sd21'], mulberry32(7));
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
  it('scales up at once to ceil(metric / target), then the pods start up', () => {
    const { unit, run } = worldWith();
    unit.scaling = { minReplicas: 1, maxReplicas: 40, targetRpm: 100 };
    run(300, 100); // settle at one ready pod
    expect(ready(unit)).toBe(1);
    run(70, 450); // the 1-minute average crosses 4.5 pods' worth
    expect(unit.pods.length).toBeGreaterThanOrEqual(4);
    expect(ready(unit)).toBe(1);
    run(240, 450);
    expect(ready(unit)).toBe(5);
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
    unit.scaling = { minReplicas: 0, maxReplicas: 40, targetRpm: 100 };
    run(400, 800);
    expect(unit.pods.length).toBe(8);
    run(240, 200);
    expect(unit.pods.length).toBe(8);
    run(180, 200);
    expect(unit.pods.length).toBe(2);
  });

  it('keeps within min and max replicas', () => {
    const { unit, run } = worldWith();
    unit.scaling = { minReplicas: 3, maxReplicas: 5, targetRpm: 100 };
    run(120, 0);
    expect(unit.pods.length).toBe(3);
    run(120, 5000);
    expect(unit.pods.length).toBe(5);
  });
});

describe('Karpenter and capacity limits in the simulator', () => {
  it('a held family launches no node, emits InsufficientCapacity, and keeps its running nodes', () => {
    const { world, unit, run } = worldWith([{ family: 'inf2', fromMinute: 10, toMinute: 30, maxInstances: 'hold' }]);
    unit.scaling = { minReplicas: 0, maxReplicas: 40, targetRpm: 100 };
    run(600, 300);
    expect(ready(unit)).toBe(3);
    run(120, 900);
    expect(ready(unit)).toBe(3);
    expect(unit.pods.filter((p) => p.nodeAt === null).length).toBeGreaterThan(0);
    expect(world.signals.some((s) => s.family === 'inf2' && s.kind === 'insufficient-capacity')).toBe(true);
    run(25 * 60, 900); // the hold ends at minute 30
    expect(ready(unit)).toBe(9);
  });

  it('a limit below the running count reclaims the excess nodes, as an interruption would', () => {
    const { world, unit, run } = worldWith([{ family: 'inf2', fromMinute: 15, toMinute: 30, maxInstances: 1 }]);
    unit.scaling = { minReplicas: 0, maxReplicas: 40, targetRpm: 100 };
    run(600, 400);
    expect(ready(unit)).toBe(4);
    run(300, 400);
    expect(unit.pods.filter((p) => p.nodeAt !== null).length).toBe(1);
    expect(world.signals.some((s) => s.kind === 'interruption')).toBe(true);
  });
});

describe('the ALB and pods in the simulator', () => {
  it('fails what goes beyond the ready pods\' breaking point, and answers 503 for a group with no ready pod', () => {
    const { world, unit, run } = worldWith();
    unit.scaling = { minReplicas: 2, maxReplicas: 2, targetRpm: 105 };
    run(300, 300);
    expect(unit.last.servedRpm).toBeCloseTo(210, 5);
    expect(unit.last.failedRpm).toBeCloseTo(90, 5);
    const trn1 = world.units.get('sd21-trn1-neuron')!;
    trn1.weight = 1; // half the traffic to a group with no pods
    run(10, 300);
    expect(trn1.last.failedRpm).toBeCloseTo(150, 5);
  });

  it('p99 crosses the SLO exactly at the breaking point and rises beyond it', () => {
    expect(p99At(0.5, 0.9)).toBeLessThan(0.9);
    expect(p99At(1, 0.9)).toBeCloseTo(0.9, 10);
    expect(p99At(1.2, 0.9)).toBeGreaterThan(0.9);
  });
});
