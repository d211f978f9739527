import { beforeAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../shared/src/sim/scenario.ts';
import { simulate } from '../../shared/src/sim/run.ts';
import type { PolicyRun, SimulationResult } from '../../shared/src/sim/types.ts';

// The seed experiment (DESIGN §2, figures 10 and 11) through the whole control loop, every policy
// in one run: what the main job prints.
const scenario = loadScenario();
const shortage = scenario.file.capacity[0]!;
let result: SimulationResult;
const run = (policy: string): PolicyRun => result.runs.find((r) => r.summary.policy === policy)!;

beforeAll(async () => {
  result = await simulate(scenario, { policies: ['static-cost', 'static-capacity', 'step', 'step-headroom', 'optimizer'] });
}, 300_000);

describe('seed scenario', () => {
  it('is the seed experiment: a cosine of about 0–2,960 rpm, 900-minute period, three periods, inf2 held from the third rise to the next trough', () => {
    const demand = run('step').timeline.map((r) => r.demandRpm);
    expect(Math.max(...demand)).toBeGreaterThan(2900);
    expect(Math.min(...demand)).toBeLessThan(100);
    expect(scenario.file.durationMinutes).toBe(2700);
    expect(shortage).toMatchObject({ family: 'inf2', maxInstances: 'hold' });
    expect(shortage.fromMinute).toBeGreaterThan(1350); // after the trough before the third peak
    expect(shortage.fromMinute).toBeLessThan(1800); // before the third peak
    expect(shortage.toMinute).toBe(2250); // the following trough
  });

  it('static-cost serves traffic in the seed 40/20/15/10/15 shares while nothing is short', () => {
    const before = run('static-cost').timeline.filter((r) => r.minute >= 30 && r.minute < shortage.fromMinute);
    const total = before.reduce((s, r) => s + r.demandRpm, 0);
    const offered = (unit: string) => before.reduce((s, r) => s + r.units[unit]!.offeredRpm, 0) / total;
    expect(offered('sd21-inf2-neuron')).toBeCloseTo(0.4, 2);
    expect(offered('sd21-trn1-neuron')).toBeCloseTo(0.2, 2);
    expect(offered('sd21-g5-triton')).toBeCloseTo(0.15, 2);
    expect(offered('sd21-g6-triton')).toBeCloseTo(0.1, 2);
    expect(offered('sd21-g5-cuda')).toBeCloseTo(0.15, 2);
    for (const r of before) expect(Object.values(r.units).map((u) => u.weight)).toEqual([40, 20, 15, 10, 15]);
  });

  it('step fails over once after the shortage starts and falls back once after it ends, as in figure 10', () => {
    const changes = run('step').events.filter((e) => e.kind === 'mode-changed');
    expect(changes).toHaveLength(2);
    const [failover, fallback] = changes;
    expect(failover!.message).toMatch(/^cost → capacity/);
    expect(failover!.minute).toBeGreaterThanOrEqual(shortage.fromMinute);
    expect(failover!.minute).toBeLessThan(shortage.fromMinute + 30);
    expect(fallback!.message).toMatch(/^capacity → cost/);
    expect(fallback!.minute).toBeGreaterThanOrEqual(shortage.toMinute);
    expect(fallback!.minute).toBeLessThan(shortage.toMinute + 60);
  });

  it('optimizer costs at most 0.75 × the cheaper of step and step-headroom per 1M successful requests, with no more failures or minutes over the SLO than the better, and at most 1.25 × the bound', () => {
    const step = run('step').summary;
    const headroom = run('step-headroom').summary;
    const optimizer = run('optimizer').summary;
    expect(optimizer.costPerMillion).toBeLessThanOrEqual(0.75 * Math.min(step.costPerMillion, headroom.costPerMillion));
    expect(optimizer.failedRequests).toBeLessThanOrEqual(Math.min(step.failedRequests, headroom.failedRequests));
    expect(optimizer.minutesOverSlo).toBeLessThanOrEqual(Math.min(step.minutesOverSlo, headroom.minutesOverSlo));
    expect(optimizer.costPerMillion).toBeLessThanOrEqual(1.25 * result.bound.costPerMillion);
  });

  it('the bound is below every policy and serves the whole demand', () => {
    for (const r of result.runs) expect(result.bound.totalCost).toBeLessThan(r.summary.totalCost);
    const demand = run('step').timeline.reduce((s, row) => s + row.demandRpm, 0);
    expect(result.bound.costPerMillion).toBeCloseTo((result.bound.totalCost / demand) * 1e6, 0);
  });

  it('while inf2 is held no policy runs more inf2 nodes than when the hold began', () => {
    for (const r of result.runs) {
      const inHold = r.timeline.filter((row) => row.minute >= shortage.fromMinute && row.minute < shortage.toMinute);
      const atStart = inHold[0]!.units['sd21-inf2-neuron']!;
      const nodesAtStart = atStart.readyPods + atStart.startingPods;
      for (const row of inHold) {
        const u = row.units['sd21-inf2-neuron']!;
        expect(u.readyPods + u.startingPods).toBeLessThanOrEqual(nodesAtStart);
      }
    }
  });

  it('every policy serves or fails every request of the demand', () => {
    for (const r of result.runs) {
      const demand = r.timeline.reduce((s, row) => s + row.demandRpm, 0);
      // Off by at most what the queues held when counting began (requests of the warm-up answered
      // after minute 0); what they hold at the end counts as failed.
      expect(Math.abs(r.summary.servedRequests + r.summary.failedRequests - demand)).toBeLessThan(0.001 * demand);
    }
  });

  it('the same seed gives the same result', async () => {
    const again = await simulate(scenario, { policies: ['step'] });
    expect(again.runs[0]!.summary).toEqual(run('step').summary);
    expect(again.runs[0]!.timeline).toEqual(run('step').timeline);
  }, 120_000);
});
