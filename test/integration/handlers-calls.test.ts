// How many calls a steady-state tick makes, counted at the fault injector where every AWS and
// Kubernetes call passes: the seed fleet's sd21, and 50 services of 5 units. Prints the figures
// (a benchmark; the numbers are not pass/fail) and asserts only what must hold: no writes.
// The 50-service case deploys 250 units and runs only with HWAI_BENCH=1:
//   HWAI_BENCH=1 npx vitest run --project integration test/integration/handlers-calls.test.ts
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { controllerConfig } from '../../shared/src/control/config.ts';
import type { ControllerAnswer } from '../../shared/src/control/controller.ts';
import { controllerHandler } from '../../shared/src/control/controller-lambda.ts';
import { controllerRuntime } from '../../shared/src/control/runtime.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import type { FleetSpec, Unit } from '../../shared/src/spec/schema.ts';
import { awsClients, faults, freshNamespace } from '../harness/clients.ts';
import { lambdaContext, sampleEvent } from '../unit/events.fixtures.ts';
import { deployFleet, deploySd21, publishRequests, type Deployed } from './handlers.fixtures.ts';

const WRITES = /ModifyRule|ModifyListener|^kube:(PATCH|PUT|POST|DELETE)|PutItem|UpdateItem|DeleteItem|Publish/;

function controller(world: Deployed, clock: { now(): number }) {
  const logger = new Logger({ logLevel: 'SILENT' });
  const handler = controllerHandler(controllerRuntime(controllerConfig(world.env), { clock, clients: awsClients() }, world.env), { logger, metrics: new Metrics({ namespace: 'hwai', logger }) });
  return () => handler(sampleEvent('scheduled-tick-all'), lambdaContext()) as Promise<ControllerAnswer>;
}

/** Ticks until one changes nothing, then counts one more tick's calls by kind. */
async function steadyTickCalls(world: Deployed, clock: { now(): number }): Promise<{ reads: Record<string, number>; writes: Record<string, number>; total: number }> {
  const tick = controller(world, clock);
  let settled = false;
  for (let i = 0; i < 6 && !settled; i++) settled = (await tick()).outcome === 'unchanged';
  expect(settled).toBe(true);
  await faults.reset();
  const answer = await tick();
  expect(answer.outcome).toBe('unchanged');
  const counts = await faults.counts();
  // Kubernetes paths name objects: group them by kind of call, not by object.
  const byKind: Record<string, number> = {};
  for (const [op, n] of Object.entries(counts)) {
    const kind = op.replace(/\/namespaces\/[^/]+\//, '/namespaces/*/').replace(/(\/(deployments|scaledobjects|pods))\/[^/]+$/, '$1/*');
    byKind[kind] = (byKind[kind] ?? 0) + n;
  }
  const writes = Object.fromEntries(Object.entries(byKind).filter(([op]) => WRITES.test(op)));
  const reads = Object.fromEntries(Object.entries(byKind).filter(([op]) => !WRITES.test(op)));
  return { reads, writes, total: Object.values(byKind).reduce((a, b) => a + b, 0) };
}

function print(title: string, figures: Awaited<ReturnType<typeof steadyTickCalls>>): void {
  const lines = Object.entries(figures.reads)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, n]) => `  ${String(n).padStart(5)}  ${op}`);
  process.stdout.write(`\n${title}: ${figures.total} calls per steady-state tick, ${Object.values(figures.writes).reduce((a, b) => a + b, 0)} writes\n${lines.join('\n')}\n`);
}

/** 50 services of the seed's 5 units each (same numbers), named svc00…svc49. */
function fiftyServices(namespace: string): FleetSpec {
  const seed = loadFleetSpec();
  const sd21 = seed.units.filter((u) => u.service === 'sd21');
  const services: FleetSpec['services'] = {};
  const units: Unit[] = [];
  for (let i = 0; i < 50; i++) {
    const service = `svc${String(i).padStart(2, '0')}`;
    services[service] = { ...seed.services['sd21']!, listenerRule: { lookup: `hwai-${service}-rule` } };
    for (const u of sd21) {
      const name = u.name.replace('sd21', service);
      units.push({ ...u, name, service, targetGroup: { name }, scaledObject: { namespace, name } });
    }
  }
  return { ...seed, services, units };
}

describe('calls per steady-state tick (benchmark)', () => {
  const clock = { at: Math.floor(Date.now() / 60_000) * 60_000 + 30_000, now: () => clock.at };

  it('the seed fleet’s sd21: five units', async () => {
    const world = await deploySd21('calls', [2, 2, 2, 2, 2], [40, 20, 15, 10, 15]);
    await publishRequests(world.fleet, [150, 80, 60, 40, 60], 700, clock.at - 40 * 60_000, clock.at + 5 * 60_000);

    const figures = await steadyTickCalls(world, clock);

    print('sd21 (5 units)', figures);
    expect(figures.writes).toEqual({});
  });

  // Deploying 250 units takes minutes on a 2-core machine: run with HWAI_BENCH=1.
  it.runIf(process.env.HWAI_BENCH === '1')('50 services × 5 units (HWAI_BENCH=1)', { timeout: 900_000 }, async () => {
    const namespace = await freshNamespace('calls50');
    const fleet = fiftyServices(namespace);
    const world = await deployFleet('calls50', namespace, fleet, () => 1, (u) => (u.endsWith('inf2-neuron') ? 100 : 0));
    await publishRequests(fleet, fleet.units.map((u) => (u.name.endsWith('inf2-neuron') ? 60 : 0)), 700, clock.at - 40 * 60_000, clock.at + 5 * 60_000);

    const figures = await steadyTickCalls(world, clock);

    print('50 services × 5 units (250 units)', figures);
    expect(figures.writes).toEqual({});
  });
});
