// The twin (issue 7): the compressed seed scenario with the simulator's world on the harness —
// metrics in moto's CloudWatch, pods, Deployments, NodeClaims and Karpenter's refusals on the
// apiserver, targets in moto's ELBv2 — and the real controller Lambda handler ticking through
// its production ports, against the same scenario run in-process. Same decisions, tick by tick.
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../shared/src/sim/scenario.ts';
import { compareTicks, formatAgreement } from '../../shared/src/twin/agreement.ts';
import { runTwin, TWIN_SCENARIO_PATH, type TwinResult } from '../../shared/src/twin/twin.ts';
import { faults, harness, resetHarness } from '../harness/clients.ts';

const scenario = loadScenario(TWIN_SCENARIO_PATH);
let result: TwinResult;
let counts: Record<string, number>;

beforeAll(async () => {
  await faults.reset();
  result = await runTwin({ scenario, endpoints: harness() });
  counts = await faults.counts();
  process.stderr.write(`[twin] ${formatAgreement(result.agreement)}\n[twin] ${result.twin.length} ticks in ${result.seconds.toFixed(1)} s: ${result.secondsPerTick.toFixed(3)} s per tick\n`);
}, 1_800_000);

describe('the twin on the compressed seed scenario', () => {
  it('runs every tick of the scenario through the controller handler on the harness, without an error', () => {
    const ticks = ((scenario.file.warmupMinutes + scenario.file.durationMinutes) * 60) / scenario.fleet.policy.tickSeconds;
    expect(result.twin).toHaveLength(ticks);
    expect(result.tickErrors).toEqual([]);
    // The controller read and wrote the real parts: the rule, the metrics, the pods, the ScaledObjects.
    expect(counts['elasticloadbalancing:ModifyRule']).toBeGreaterThan(0);
    expect(counts['monitoring:GetMetricData']).toBe(ticks);
    expect(Object.keys(counts).some((op) => op.startsWith('kube:PATCH /apis/keda.sh/'))).toBe(true);
  });

  it('holds the shortage and its end: the twin fails over off inf2 and falls back', () => {
    const modes = result.twin.map((t) => t.services[0]!.mode);
    const changes = modes.filter((m, i) => i > 0 && m !== modes[i - 1]);
    expect(changes).toEqual(['capacity', 'cost']);
  });

  it('makes the same decisions as the in-process run, tick by tick: mode, weights, floors, max replicas, KEDA targets', () => {
    expect(result.agreement.firstDifference, formatAgreement(result.agreement)).toBeNull();
    expect(result.agreement.compared).toBe(result.inProcess.length);
    expect(result.agreement.equal).toBe(result.agreement.compared);
  });

});

describe('the twin when EC2 takes nodes away', () => {
  const reclaim = loadScenario(fileURLToPath(new URL('../../shared/scenarios/twin-inf2-reclaim.yaml', import.meta.url)));
  let reclaimed: TwinResult;

  beforeAll(async () => {
    await resetHarness();
    reclaimed = await runTwin({ scenario: reclaim, endpoints: harness() });
    process.stderr.write(`[twin] ${reclaim.file.name}: ${formatAgreement(reclaimed.agreement)}\n`);
  }, 1_800_000);

  it('sends the controller EC2’s interruption event at the tick the world loses the nodes, and decides as the in-process run does', () => {
    const cut = reclaim.file.capacity[0]!;
    expect(reclaimed.interruptionTicks).toEqual([{ second: cut.fromMinute * 60, family: cut.family }]);
    expect(reclaimed.tickErrors).toEqual([]);
    expect(reclaimed.agreement.firstDifference, formatAgreement(reclaimed.agreement)).toBeNull();
    expect(reclaimed.agreement.equal).toBe(reclaimed.inProcess.length);
    // The interrupted tick failed over; by the end of the cut the traffic had moved off inf2.
    const at = (minute: number) => reclaimed.twin.find((t) => t.second === minute * 60)!.services[0]!;
    expect([at(cut.fromMinute - 1).mode, at(cut.fromMinute).mode]).toEqual(['cost', 'capacity']);
    expect(at(cut.toMinute - 1).weights['sd21-inf2-neuron']).toBeLessThan(at(cut.fromMinute - 1).weights['sd21-inf2-neuron']!);
  });
});

describe('the agreement of two runs', () => {
  const tick = (second: number, mode: 'cost' | 'capacity', inf2Weight: number, inf2Floor: number) => ({
    second,
    services: [{ service: 'sd21', mode, weights: { 'sd21-inf2-neuron': inf2Weight, 'sd21-g5-cuda': 100 - inf2Weight }, scaling: { 'sd21-inf2-neuron': { minReplicas: inf2Floor, maxReplicas: 40, targetRpm: 94.5 }, 'sd21-g5-cuda': { minReplicas: 0, maxReplicas: 40, targetRpm: 54 } } }],
  });

  it('counts equal ticks and names every difference of the first tick that differs, in both runs’ words', () => {
    // Prepare: the twin moves off inf2 one tick late, and raises a floor the in-process run did not.
    const inProcess = [tick(0, 'cost', 100, 2), tick(60, 'capacity', 40, 2), tick(120, 'capacity', 40, 3)];
    const twin = [tick(0, 'cost', 100, 2), tick(60, 'cost', 100, 3), tick(120, 'capacity', 40, 3)];

    // Act
    const agreement = compareTicks(inProcess, twin);

    // Assess
    expect(agreement).toMatchObject({ compared: 3, equal: 2, unmatched: 0, differingSeconds: [60] });
    expect(agreement.firstDifference).toEqual([
      { second: 60, what: 'sd21 mode', inProcess: 'capacity', twin: 'cost' },
      { second: 60, what: 'sd21-g5-cuda weight', inProcess: 60, twin: 0 },
      { second: 60, what: 'sd21-inf2-neuron weight', inProcess: 40, twin: 100 },
      { second: 60, what: 'sd21-inf2-neuron floor', inProcess: 2, twin: 3 },
    ]);
    expect(formatAgreement(agreement)).toContain('ticks compared: 3, ticks equal: 2\nfirst difference at world second 60 (minute 1):\n  sd21 mode: in-process "capacity", twin "cost"');
  });

  it('counts a run that stopped early as unmatched ticks, not as equal ones', () => {
    const agreement = compareTicks([tick(0, 'cost', 100, 2), tick(60, 'cost', 100, 2)], [tick(0, 'cost', 100, 2)]);

    expect(agreement).toMatchObject({ compared: 1, equal: 1, unmatched: 1 });
    expect(formatAgreement(agreement)).toContain('ticks in one run only: 1');
  });
});
