import { bench, describe } from 'vitest';
import { decide } from '../../shared/src/policies/index.ts';
import { initialControllerState } from '../../shared/src/core/state.ts';
import { POLICY_KINDS } from '../../shared/src/spec/schema.ts';
import { loadScenario, simulate } from '../../shared/src/sim/index.ts';
import { fleetOf, seedLikeUnits } from '../unit/factories/fleet.ts';
import { anObservation } from '../unit/factories/observation.ts';

// Figures, not assertions: `npm run bench` prints them. A Lambda tick's CPU is decide() plus I/O;
// the simulator's speed decides how quickly a policy change can be measured.

const spec = fleetOf(seedLikeUnits());
const now = Date.parse('2026-11-14T12:00:00Z');
const observation = anObservation(spec, now, { inf2: { readyPods: 12, healthyTargets: 12, rpm: 1200 } }, [], 2400);

describe('decide(), one service of five units', () => {
  for (const policy of POLICY_KINDS) {
    bench(policy, () => {
      decide(spec, observation, initialControllerState(), now, policy);
    });
  }
});

describe('simulator, seed scenario (2,700 simulated minutes, 10 s steps)', () => {
  const scenario = loadScenario();
  for (const policy of ['step', 'optimizer'] as const) {
    bench(policy, async () => {
      await simulate(scenario, { policies: [policy] });
    }, { iterations: 3, warmupIterations: 1 });
  }
});
