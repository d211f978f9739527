// The twin (issue 7): the compressed seed scenario with the simulator's world on the harness —
// metrics in moto's CloudWatch, pods, Deployments, NodeClaims and Karpenter's refusals on the
// apiserver, targets in moto's ELBv2 — and the real controller Lambda handler ticking through
// its production ports, against the same scenario run in-process. Same decisions, tick by tick.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../shared/src/sim/scenario.ts';
import { formatAgreement } from '../../shared/src/twin/agreement.ts';
import { runTwin, TWIN_SCENARIO_PATH, type TwinResult } from '../../shared/src/twin/twin.ts';
import { faults, harness } from '../harness/clients.ts';

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
