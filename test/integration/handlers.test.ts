// The two Lambda handlers, as deployed (middy, Powertools, the environment contract, the real
// adapters), against the harness: moto's ALB, CloudWatch, DynamoDB, SNS → SQS and the
// apiserver with KEDA's and Karpenter's CRDs, every call through the fault injector.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { beforeAll, describe, expect, it } from 'vitest';
import { controllerConfig, overrideConfig } from '../../shared/src/control/config.ts';
import type { ControllerAnswer } from '../../shared/src/control/controller.ts';
import { controllerHandler } from '../../shared/src/control/controller-lambda.ts';
import { overrideHandler } from '../../shared/src/control/override-lambda.ts';
import { overrideRuntime } from '../../shared/src/control/override-runtime.ts';
import type { OverrideAnswer } from '../../shared/src/control/override-service.ts';
import { controllerRuntime } from '../../shared/src/control/runtime.ts';
import type { ServiceStatus } from '../../shared/src/control/status.ts';
import { ACTUATION_ALERT_AFTER } from '../../shared/src/reconcile/tick.ts';
import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { awsClients, faults, type Fault } from '../harness/clients.ts';
import { lambdaContext, runHwai, sampleEvent } from '../unit/events.fixtures.ts';
import {
  deploySd21,
  insufficientCapacityEvent,
  liveScaling,
  liveWeights,
  publishRequests,
  receivedAlerts,
  setFloor,
  setLiveWeights,
  storedState,
  unschedulablePods,
  type Deployed,
} from './handlers.fixtures.ts';

const SEED_COST_WEIGHTS = [40, 20, 15, 10, 15];
/** Ready pods per unit in fleet order (inf2, trn1, g5-triton, g6-triton, g5-cuda). */
const READY = [2, 2, 2, 2, 2];
/** Requests per minute each unit served: inf2 above what its two pods can take. */
const RPM = [260, 110, 80, 50, 60];
const WRITES = /ModifyRule|ModifyListener|^kube:(PATCH|PUT|POST|DELETE)|PutItem|UpdateItem|DeleteItem|Publish/;

let world: Deployed;
/** The controller's clock: fixed per test step, moved on explicitly. */
const clock = { at: 0, now: () => clock.at };

function quiet() {
  const logger = new Logger({ logLevel: 'SILENT' });
  return { logger, metrics: new Metrics({ namespace: 'hwai', logger }) };
}

/** A controller Lambda container: config from the environment at cold start, the harness's clock. */
function aController(env: NodeJS.ProcessEnv = world.env, clients = awsClients()) {
  const handler = controllerHandler(controllerRuntime(controllerConfig(env), { clock, clients }, env), quiet());
  let n = 0;
  return (event = sampleEvent('scheduled-tick')) => handler(event, lambdaContext(60_000, `tick-${clock.at}-${n++}`)) as Promise<ControllerAnswer>;
}

function anOverrideFunction() {
  const { dynamodb, sns } = awsClients();
  const handler = overrideHandler(overrideRuntime(overrideConfig(world.env), { clock, dynamodb, sns }, world.env), quiet());
  return (payload: unknown) => handler(payload, lambdaContext()) as Promise<OverrideAnswer>;
}

async function writeCalls(): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await faults.counts()).filter(([op]) => WRITES.test(op)));
}

/** Ticks until nothing is left to change (bounded), returning the last answer. */
async function settle(tick: ReturnType<typeof aController>): Promise<ControllerAnswer> {
  for (let i = 0; i < 6; i++) {
    const answer = await tick();
    if (answer.outcome === 'unchanged') return answer;
  }
  throw new Error('the controller did not settle in 6 ticks with the world unchanged');
}

beforeAll(async () => {
  // Prepare: sd21 deployed with the rule at the seed's cost weights; inf2 has its two pods and
  // three more the scheduler cannot place, and Karpenter was just refused inf2 capacity.
  world = await deploySd21('handlers', READY, SEED_COST_WEIGHTS);
  clock.at = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;
  await unschedulablePods(world.namespace, 'sd21-inf2-neuron', 3);
  await insufficientCapacityEvent('inf2.xlarge', new Date(clock.at - 10_000));
  await publishRequests(world.fleet, RPM, 700, clock.at - 40 * 60_000, clock.at + 20 * 60_000);
});

describe('a scheduled tick with inf2 short', () => {
  it('moves the weights off inf2 as the policy decides, patches the ScaledObjects, writes the state and alerts the on-call queue', async () => {
    // Prepare
    const tick = aController();
    await faults.reset();

    // Act
    const answer = await tick();

    // Assess: the decision, as written on the ALB and on KEDA.
    expect(answer.outcome).toBe('applied');
    expect(answer.errors).toEqual([]);
    const decided = answer.services.find((s) => s.service === 'sd21')!;
    expect(decided.mode).toBe('capacity');
    const weights = await liveWeights(world);
    expect(weights).toEqual(decided.weights);
    expect(weights['sd21-inf2-neuron']).toBeLessThan(SEED_COST_WEIGHTS[0]!);
    const stored = await storedState(world);
    const sd21 = stored!.state.services['sd21']!;
    expect(sd21.mode).toBe('capacity');
    expect(sd21.pools['inf2']?.shortSince).toBe(clock.at);
    const lastDecision = (sd21 as { lastDecision?: { weights: Record<string, number>; floors: Record<string, number> } }).lastDecision!;
    expect(lastDecision.weights).toEqual(decided.weights);
    const scaling = await liveScaling(world);
    for (const [unit, floor] of Object.entries(lastDecision.floors)) expect(scaling[unit]!.minReplicas).toBe(floor);
    const writes = await writeCalls();
    expect(writes['elasticloadbalancing:ModifyRule']).toBe(1);
    expect(Object.keys(writes).some((op) => op.startsWith('kube:PATCH /apis/keda.sh/'))).toBe(answer.applied.scaling.length > 0);
    // The on-call queue got one notification saying what changed.
    const alerts = await receivedAlerts(world);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.subject).toBe(answer.alerts.length === 1 ? 'hwai: mode-changed (sd21)' : `hwai: ${answer.alerts.length} alerts (sd21)`);
    expect(answer.alerts).toContain('[mode-changed] sd21: mode cost → capacity');
    for (const line of answer.alerts) expect(alerts[0]!.message).toContain(line);
  });

  it('the next ticks with the world unchanged settle, and a settled tick makes zero write calls', async () => {
    const tick = aController();
    await settle(tick);
    await faults.reset();

    const answer = await tick();

    expect(answer.outcome).toBe('unchanged');
    expect(await writeCalls()).toEqual({});
    expect(await receivedAlerts(world)).toEqual([]);
  });
});

describe('two controller invocations at once', () => {
  it('exactly one acts; the other changes nothing on the ALB, KEDA or the state', async () => {
    // Prepare: two Lambda containers (a scheduled tick and a capacity event, say); the rule edited by hand.
    const a = aController();
    const b = aController();
    await settle(a);
    await setLiveWeights(world, [10, 10, 10, 10, 60]);
    const before = (await storedState(world))!.version;
    await faults.reset();

    // Act
    const answers = await Promise.all([a(), b()]);

    // Assess
    const outcomes = answers.map((x) => x.outcome).sort();
    expect(outcomes).toContainEqual('applied');
    expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
    const loser = answers.find((x) => x.outcome !== 'applied')!;
    expect(['lease-held', 'state-moved']).toContain(loser.outcome);
    expect(loser.applied).toEqual({ weights: [], scaling: [] });
    expect((await faults.counts())['elasticloadbalancing:ModifyRule']).toBe(1);
    // The winner's tick and its decision record: two state writes, none by the loser.
    expect((await storedState(world))!.version).toBe(before + 2);
  });
});

describe('a capacity event', () => {
  it('a Spot interruption of an inf2 instance ticks at once, with the inf2 pool’s signal, the services on inf2 only', async () => {
    // Prepare: the instance, as EC2 knows it (the event names only its id).
    const { ec2 } = awsClients({ direct: true });
    const run = await ec2.send(new RunInstancesCommand({ ImageId: 'ami-12c6146b', InstanceType: 'inf2.xlarge', MinCount: 1, MaxCount: 1 }));
    const instanceId = run.Instances![0]!.InstanceId!;
    const event = sampleEvent('spot-interruption');
    event['detail'] = { 'instance-id': instanceId, 'instance-action': 'terminate' };
    event['time'] = new Date(clock.at).toISOString();
    await faults.reset();

    // Act
    const answer = await aController()(event);

    // Assess
    expect(answer.trigger).toContain(instanceId);
    expect(answer.signal).toEqual({ family: 'inf2', kind: 'interruption', at: clock.at, detail: expect.stringContaining('inf2.xlarge') });
    expect(answer.services.map((s) => s.service)).toEqual(['sd21']);
    expect((await faults.counts())['ec2:DescribeInstances']).toBe(1);
  });
});

describe('an override', () => {
  it('is applied, shows its progress in status, is alerted, and at its expiry automatic control resumes with an alert', async () => {
    // Prepare: the operator pins sd21 onto trn1 for 2 minutes (floors first: trn1 has 2 pods).
    const override = anOverrideFunction();
    const tick = aController();
    const pin = { ...sampleEvent('override-pin'), durationMinutes: 2, requestId: 'it-pin-1' };

    // Act: the override, then the controller's next tick.
    const set = await override(pin);
    const retried = await override(pin);
    clock.at += 60_000;
    const during = await tick();
    const status = (await override(sampleEvent('override-status'))) as { services: ServiceStatus[] };

    // Assess: set once, alerted once; the tick raised trn1's floor and reports progress.
    expect(set).toMatchObject({ outcome: 'override-set', replayed: false, alerted: true });
    expect(retried).toMatchObject({ outcome: 'override-set', replayed: true });
    expect(during.services[0]!.mode).toBe('override');
    const s = status.services[0]!;
    expect(s.mode).toBe('override');
    expect(s.override).toMatchObject({ id: 'it-pin-1', by: 'oncall@example.com' });
    expect(s.progress).not.toBeNull();
    expect(s.progress!.target['sd21-trn1-neuron']).toBeGreaterThan(0);
    expect(s.progress!.fraction).toBeLessThan(1);
    expect(s.progress!.waitingFor.join(' ')).toContain('sd21-trn1-neuron');
    expect(s.lastDecision!.reasons.join('\n')).toContain('override by oncall@example.com');
    expect((await liveScaling(world))['sd21-trn1-neuron']!.minReplicas).toBe(s.units.find((u) => u.unit === 'sd21-trn1-neuron')!.floor);
    const startAlerts = await receivedAlerts(world);
    expect(startAlerts.map((a) => a.subject)).toEqual(['hwai: override-started (sd21)']);
    expect(startAlerts[0]!.message).toContain('canary the trn1 build');

    // Act: past its end.
    clock.at += 2 * 60_000;
    const after = await tick();
    const statusAfter = (await override(sampleEvent('override-status'))) as { services: ServiceStatus[] };

    // Assess: automatic control again, said once, and in the audit.
    expect(after.services[0]!.mode).not.toBe('override');
    expect(statusAfter.services[0]!.override).toBeNull();
    expect(statusAfter.services[0]!.history.map((h) => h.event)).toEqual(['override-set', 'override-expired']);
    const endAlerts = await receivedAlerts(world);
    expect(endAlerts.map((a) => a.subject)).toEqual(['hwai: override-ended (sd21)']);
    expect(endAlerts[0]!.message).toMatch(/expired .*automatic control resumes/);
  });
});

/** The safety rules, read from the live ALB and the state: what a fault must never break. */
async function expectSafe(): Promise<void> {
  const weights = Object.values(await liveWeights(world));
  for (const w of weights) expect(Number.isInteger(w) && w >= 0 && w <= 999).toBe(true);
  expect(weights.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  const stored = await storedState(world);
  expect(stored).not.toBeNull();
}

describe('faults', () => {
  const HAND_EDIT = [60, 10, 10, 10, 10];
  const cases: Array<[string, () => Promise<void>]> = [
    ['ModifyRule throttled past the SDK retries', () => faults.aws({ operation: 'ModifyRule', fault: { kind: 'throttle' }, times: 3 })],
    ['ModifyRule answered 503', () => faults.aws({ operation: 'ModifyRule', fault: { kind: 'server-error', status: 503 }, times: 3 })],
    // Held six times longer than the client waits: a timeout whatever the machine's load.
    ['DescribeRules timing out', () => faults.aws({ operation: 'DescribeRules', fault: { kind: 'delay', ms: 30_000 }, times: 2 })],
    ['DynamoDB writes (lease, state) answered 500', () => faults.aws({ operation: 'PutItem', fault: { kind: 'server-error', status: 500 }, times: 3 })],
    ['the apiserver down', () => faults.kube({ path: '.*', fault: { kind: 'server-error', status: 503 } as Fault, times: 200 })],
    [
      'the KEDA patch landing and the ALB write failing after it',
      async () => {
        await setFloor(world, 'sd21-g6-triton', 7);
        await faults.reset();
        await faults.aws({ operation: 'ModifyRule', fault: { kind: 'drop' }, times: 3 });
      },
    ],
  ];

  it.each(cases)('%s: no safety rule broken, and the next clean tick converges', async (what, inject) => {
    // Prepare: settled, then the rule edited by hand so the tick has something to write; a
    // container whose calls give up after 5 s (the SDK's per-attempt timeout) and 2 attempts.
    const tick = aController(world.env, awsClients({ maxAttempts: 2, requestTimeoutMs: 5_000 }));
    await settle(tick);
    await setLiveWeights(world, HAND_EDIT);
    await receivedAlerts(world);
    await faults.reset();
    await inject();

    // Act
    const faulted = await tick();

    // Assess: the tick said what failed and broke nothing.
    expect(faulted.errors.length).toBeGreaterThan(0);
    await expectSafe();
    if (what.startsWith('the KEDA patch')) {
      // Capacity went first and landed; the failed weights are counted for the alert rule.
      expect(faulted.applied.scaling).toContain('sd21-g6-triton');
      expect((await liveScaling(world))['sd21-g6-triton']!.minReplicas).not.toBe(7);
      expect((await storedState(world))!.state.services['sd21']!.actuationFailures).toBe(1);
    }

    // Act: the faults are gone.
    await faults.reset();
    const clean = await tick();

    // Assess: one clean tick puts back the weights it decided. The ticks after it change no
    // weight; they only fit capacity to the traffic the units now carry (a unit's pods are
    // released once the ALB sends it nothing, maxima trimmed to what the traffic needs), and
    // within three ticks one has nothing to do.
    expect(clean.errors).toEqual([]);
    const weights = await liveWeights(world);
    expect(weights).toEqual(clean.services[0]!.weights);
    const after = [];
    for (let i = 0; i < 3 && after.at(-1)?.outcome !== 'unchanged'; i++) after.push(await tick());
    for (const t of after) {
      expect(t.errors).toEqual([]);
      expect(t.applied.weights).toEqual([]);
    }
    expect(await liveWeights(world)).toEqual(weights);
    expect(after.at(-1)!.outcome).toBe('unchanged');
  });

  it(`ModifyRule failing tick after tick raises one alert (after ${ACTUATION_ALERT_AFTER} ticks), not one per tick`, async () => {
    // Prepare
    const tick = aController(world.env, awsClients({ maxAttempts: 1 }));
    await settle(tick);
    await receivedAlerts(world);
    await faults.reset();
    await faults.aws({ operation: 'ModifyRule', fault: { kind: 'server-error', status: 500 }, times: 100 });

    // Act: five ticks, each finding the rule edited by hand again.
    for (let i = 0; i < ACTUATION_ALERT_AFTER + 2; i++) {
      await setLiveWeights(world, HAND_EDIT);
      clock.at += 60_000;
      await tick();
    }

    // Assess
    const subjects = (await receivedAlerts(world)).map((a) => a.subject);
    expect(subjects.filter((s) => s.includes('actuation-failing'))).toHaveLength(1);
    await faults.reset();
    await tick();
    expect((await storedState(world))!.state.services['sd21']!.actuationFailures).toBe(0);
  });
});

describe('the deployed handler modules', () => {
  it('cold-start from the environment; in dry run the controller decides and writes nothing', async () => {
    // Prepare: the environment the stack sets, dry run on.
    Object.assign(process.env, world.env, { HWAI_DRY_RUN: 'true', POWERTOOLS_LOG_LEVEL: 'SILENT' });
    await setLiveWeights(world, [20, 20, 20, 20, 20]);
    await faults.reset();

    // Act
    const { handler } = await import('../../functions/controller/handler.ts');
    const answer = (await handler(sampleEvent('scheduled-tick-all'), lambdaContext())) as ControllerAnswer;

    // Assess
    expect(answer.outcome).toBe('dry-run');
    expect(await writeCalls()).toEqual({});
    expect(Object.values(await liveWeights(world))).toEqual([20, 20, 20, 20, 20]);
  });

  it('a cold start with a bad environment fails naming the variable', async () => {
    expect(() => controllerConfig({ ...world.env, HWAI_ALERT_TOPIC_ARN: 'hwai-alerts' })).toThrow(/HWAI_ALERT_TOPIC_ARN: expected an sns ARN/);
    expect(() => overrideConfig({ ...world.env, HWAI_STATE_TABLE: undefined })).toThrow(/HWAI_STATE_TABLE: required/);
  });
});

describe('the hwai CLI against the harness', () => {
  const hwai = (...argv: string[]) => runHwai(argv);

  beforeAll(() => {
    Object.assign(process.env, world.env, { HWAI_DRY_RUN: 'false', POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' });
  });

  it('plan prints the weights a tick would change and writes nothing; invoke then applies them; status shows the decision', async () => {
    // Prepare: the rule edited by hand.
    await setLiveWeights(world, [20, 20, 20, 20, 20]);
    await faults.reset();

    // Act
    const plan = await hwai('plan');

    // Assess
    expect(plan.code).toBe(0);
    expect(plan.out).toMatch(/weight {2}sd21-inf2-neuron\s+20 → \d+/);
    expect(plan.out).toContain('nothing was written');
    expect(await writeCalls()).toEqual({});

    // Act
    const invoked = await hwai('invoke', 'controller', '--event', 'events/scheduled-tick.json');
    const status = await hwai('status', '--local', '--service', 'sd21');

    // Assess
    expect(invoked.code).toBe(0);
    const answer = JSON.parse(invoked.out) as ControllerAnswer;
    expect(answer.outcome).toBe('applied');
    expect(await liveWeights(world)).toEqual(answer.services[0]!.weights);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/^sd21: mode /);
    expect(status.out).toContain('last decision');
    for (const [unit, weight] of Object.entries(answer.services[0]!.weights)) expect(status.out).toMatch(new RegExp(`${unit}\\s+\\w+\\s+${weight}\\s`));
  });

  it('invoke refuses a malformed event file, naming the field, and writes nothing', async () => {
    await faults.reset();

    const run = await hwai('invoke', 'override', '--event', 'events/scheduled-tick.json');

    expect(run.code).toBe(2);
    expect(run.err).toMatch(/action: /);
    expect(await writeCalls()).toEqual({});
  });
});
