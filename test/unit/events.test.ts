// The controller's input: the Scheduler's tick and the EC2 capacity events, validated before
// anything runs; a capacity event becomes a pool signal and a tick of the services it concerns.
import fc from 'fast-check';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import { handleControllerEvent } from '../../shared/src/control/controller.ts';
import { controllerHandler } from '../../shared/src/control/controller-lambda.ts';
import { CAPACITY_DETAIL_TYPES, parseControllerEvent, poolSignalOf, servicesOfFamily, type CapacityNotice } from '../../shared/src/control/events.ts';
import type { InstanceTypeLookup } from '../../shared/src/adapters/aws/ec2-instance-types.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import { InputValidationError } from '../../shared/src/spec/validation.ts';
import { World, mulberry32 } from '../../shared/src/sim/index.ts';
import { simPorts } from '../../shared/src/sim/ports.ts';
import { parseScenario } from '../../shared/src/sim/scenario.ts';
import type { Ports } from '../../shared/src/reconcile/ports.ts';
import { lambdaContext, sampleEvent, sampleEvents, untouchablePorts } from './events.fixtures.ts';

const FLEET = loadFleetSpec();
/** Logs and EMF off: thousands of rejected invokes would flood the test output. */
function silent() {
  const logger = new Logger({ logLevel: 'SILENT' });
  return { logger, metrics: new Metrics({ namespace: 'hwai', logger }) };
}
const noLookup: InstanceTypeLookup = { instanceTypeOf: async () => null };

describe('the samples in events/', () => {
  it.each([
    ['spot-interruption', 'interruption', { instanceId: 'i-0b662ef9931388ba0' }],
    ['reservation-interruption', 'interruption', { instanceId: 'i-0b662ef9931388ba0' }],
    ['rebalance-recommendation', 'rebalance', { instanceId: 'i-0b662ef9931388ba0' }],
    ['instance-state-change', null, { instanceId: 'i-0b662ef9931388ba0' }],
    ['capacity-block-expiry', 'capacity-block-expiry', { reservationId: 'cr-0123456789abcdef0' }],
  ])('%s asks for a tick and names its instance or reservation (signal %s)', (name, signal, subject) => {
    const event = parseControllerEvent(sampleEvent(name), FLEET);

    expect(event.kind).toBe('capacity-event');
    const notice = (event as { notice: CapacityNotice }).notice;
    expect(notice).toMatchObject({ signal, subject, at: Date.parse('2030-01-01T12:00:00Z') });
  });

  it('covers each capacity event the stack’s rules forward', () => {
    const detailTypes = Object.values(sampleEvents()).map((e) => e['detail-type']).filter(Boolean);

    expect(new Set(detailTypes)).toEqual(new Set(CAPACITY_DETAIL_TYPES));
  });

  it('a scheduled tick names a shard of services, or all of them', () => {
    expect(parseControllerEvent(sampleEvent('scheduled-tick'), FLEET)).toEqual({ kind: 'scheduled-tick', services: ['sd21'] });
    expect(parseControllerEvent(sampleEvent('scheduled-tick-all'), FLEET)).toEqual({ kind: 'scheduled-tick', services: null });
  });
});

describe('pool signals from capacity events', () => {
  const notice = (name: string) => (parseControllerEvent(sampleEvent(name), FLEET) as { notice: CapacityNotice }).notice;

  it('an interrupted inf2 instance makes the inf2 pool’s signal and a tick of the services on inf2', () => {
    const signal = poolSignalOf(notice('spot-interruption'), 'inf2.xlarge', FLEET);

    expect(signal).toMatchObject({ family: 'inf2', kind: 'interruption', at: Date.parse('2030-01-01T12:00:00Z') });
    expect(signal!.detail).toContain('i-0b662ef9931388ba0');
    expect(servicesOfFamily(FLEET, 'inf2')).toEqual(['distilbert', 'llama32-1b', 'mistral7b', 'sd21', 'vit', 'yolos']);
    expect(servicesOfFamily(FLEET, 'trn1')).toEqual(['sd21']);
  });

  it.each([
    ['a family the fleet does not use', 'spot-interruption', 'c7g.large'],
    ['an instance whose type is unknown', 'spot-interruption', null],
    ['a state change, which is no shortage by itself', 'instance-state-change', 'inf2.xlarge'],
  ])('gives no signal for %s', (_what, name, instanceType) => {
    expect(poolSignalOf(notice(name), instanceType, FLEET)).toBeNull();
  });
});

describe('rejected controller input', () => {
  it.each([
    ['an unknown service in a shard', { kind: 'scheduled-tick', services: ['sd21', 'sd99'] }, 'services[1]', /unknown service "sd99"/],
    ['an empty shard', { kind: 'scheduled-tick', services: [] }, 'services', /at least 1/],
    ['a field the schedule never sends', { kind: 'scheduled-tick', shard: 2 }, '(root)', /unknown field "shard"/],
    ['another kind', { kind: 'tick' }, 'kind', /"scheduled-tick"/],
    ['an event of another detail-type', { ...sampleEvent('spot-interruption'), 'detail-type': 'EC2 AMI State Change' }, 'detail-type', /discriminator/i],
    // Found by the generated events below (seed -1854504033, path 290917:3:77:78): the handler
    // once turned the detail-type into text before validating it, and this object threw a TypeError.
    ['a detail-type that is an object with its own toString', { ...sampleEvent('spot-interruption'), 'detail-type': { toString: {} } }, 'detail-type', /discriminator/i],
    ['an event from another source', { ...sampleEvent('rebalance-recommendation'), source: 'aws.health' }, 'source', /"aws.ec2"/],
    ['an instance id that is not one', { ...sampleEvent('spot-interruption'), detail: { 'instance-id': 'web-1', 'instance-action': 'terminate' } }, 'detail.instance-id', /instance id/],
    ['a time that is not one', { ...sampleEvent('capacity-block-expiry'), time: 'yesterday' }, 'time', /ISO 8601/],
  ])('%s is refused, naming the field', (_what, input, path, message) => {
    const error = catchError(() => parseControllerEvent(input, FLEET));

    expect(error).toBeInstanceOf(InputValidationError);
    const problem = (error as InputValidationError).problems.find((p) => p.path === path);
    expect(problem, JSON.stringify((error as InputValidationError).problems)).toBeDefined();
    expect(problem!.message).toMatch(message);
  });
});

/** One way to break a valid event, and the field the rejection must name. */
interface EventMutation {
  sample: string;
  path: string;
  /** The value put there, or the unknown key added: fast-check prints it in a counterexample (`apply` hides it). */
  value: unknown;
  apply(event: Record<string, unknown>): unknown;
}

const NOT_A_STRING = fc.oneof(fc.constant(null), fc.integer(), fc.boolean(), fc.array(fc.string(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));
const CAPACITY_SAMPLES = ['spot-interruption', 'reservation-interruption', 'rebalance-recommendation', 'instance-state-change', 'capacity-block-expiry'];

function setPath(event: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(event);
  let at: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  if (value === undefined) delete at[path.at(-1)!];
  else at[path.at(-1)!] = value;
  return copy;
}

const eventMutation: fc.Arbitrary<EventMutation> = fc.oneof(
  // A required envelope or detail field missing, or of the wrong type.
  fc.record({
    sample: fc.constantFrom(...CAPACITY_SAMPLES),
    field: fc.constantFrom('id', 'source', 'account', 'time', 'region', 'detail', 'resources'),
    value: fc.oneof(fc.constant(undefined), NOT_A_STRING),
  }).filter(({ field, value }) => !(field === 'resources' && Array.isArray(value) && value.every((v) => typeof v === 'string')) && !(field === 'detail' && isPlainObject(value)))
    .map(({ sample, field, value }) => ({ sample, path: field, value, apply: (e: Record<string, unknown>) => setPath(e, [field], value) })),
  fc.record({
    sample: fc.constantFrom('spot-interruption', 'reservation-interruption', 'rebalance-recommendation', 'instance-state-change'),
    value: fc.oneof(fc.constant(undefined), NOT_A_STRING, fc.string().filter((s) => !/^i-[0-9a-f]{8,17}$/.test(s))),
  }).map(({ sample, value }) => ({ sample, path: 'detail.instance-id', value, apply: (e: Record<string, unknown>) => setPath(e, ['detail', 'instance-id'], value) })),
  fc.record({
    value: fc.oneof(fc.constant(undefined), NOT_A_STRING, fc.string().filter((s) => !/^cr-[0-9a-f]{8,17}$/.test(s))),
  }).map(({ value }) => ({ sample: 'capacity-block-expiry', path: 'detail.capacity-reservation-id', value, apply: (e: Record<string, unknown>) => setPath(e, ['detail', 'capacity-reservation-id'], value) })),
  fc.record({ value: fc.oneof(fc.constant(undefined), NOT_A_STRING, fc.string().filter((s) => !['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'].includes(s))) })
    .map(({ value }) => ({ sample: 'instance-state-change', path: 'detail.state', value, apply: (e: Record<string, unknown>) => setPath(e, ['detail', 'state'], value) })),
  fc.record({ sample: fc.constantFrom(...CAPACITY_SAMPLES), value: fc.oneof(NOT_A_STRING, fc.string().filter((s) => !CAPACITY_DETAIL_TYPES.includes(s as never))) })
    .map(({ sample, value }) => ({ sample, path: 'detail-type', value, apply: (e: Record<string, unknown>) => setPath(e, ['detail-type'], value) })),
  // The schedule's input: wrong kind, services of the wrong shape or unknown, unknown fields.
  fc.oneof(fc.constant(undefined), NOT_A_STRING, fc.string().filter((s) => s !== 'scheduled-tick'))
    .map((value) => ({ sample: 'scheduled-tick', path: 'kind', value, apply: (e: Record<string, unknown>) => setPath(e, ['kind'], value) })),
  fc.oneof(NOT_A_STRING.filter((v) => !Array.isArray(v) && v !== null), fc.constant([]), fc.array(fc.oneof(fc.integer(), fc.constant(null)), { minLength: 1, maxLength: 3 }))
    .map((value) => ({ sample: 'scheduled-tick', path: 'services', value, apply: (e: Record<string, unknown>) => setPath(e, ['services'], value) })),
  fc.string({ minLength: 1 }).filter((s) => !Object.keys(FLEET.services).includes(s))
    .map((name) => ({ sample: 'scheduled-tick', path: 'services[1]', value: name, apply: (e: Record<string, unknown>) => setPath(e, ['services'], ['sd21', name]) })),
  fc.string({ minLength: 1 }).filter((k) => !['kind', 'services', 'detail-type', '__proto__'].includes(k))
    .map((key) => ({ sample: 'scheduled-tick', path: '(root)', value: key, apply: (e: Record<string, unknown>) => setPath(e, [key], 1) })),
  // Not an object at all.
  fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.array(fc.integer(), { maxLength: 3 }))
    .map((value) => ({ sample: 'scheduled-tick', path: '(root)', value, apply: () => value })),
);

function isPlainObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

describe('the controller’s logs', () => {
  it('are JSON lines carrying the event’s id as correlation id, the Lambda request id, and a rejection’s problems', async () => {
    // Prepare: in its dev mode Powertools logs through the global console; catch its lines.
    const { ports } = untouchablePorts();
    process.env.POWERTOOLS_DEV = 'true';
    const logger = new Logger({ serviceName: 'hwai-controller', logLevel: 'WARN' });
    delete process.env.POWERTOOLS_DEV;
    const handler = controllerHandler({ spec: FLEET, ports, instanceTypes: noLookup, dryRun: false }, { logger, metrics: new Metrics({ namespace: 'hwai', logger: new Logger({ logLevel: 'SILENT' }) }) });
    const lines: string[] = [];
    const warn = vi.spyOn(console, 'warn').mockImplementation((line: unknown) => void lines.push(String(line)));
    const event: Record<string, unknown> = { ...sampleEvent('spot-interruption'), source: 'aws.health' };

    // Act
    try {
      await handler(event, lambdaContext(60_000, 'req-42')).catch(() => undefined);
    } finally {
      warn.mockRestore();
    }

    // Assess
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        message: 'rejected input',
        service: 'hwai-controller',
        correlation_id: event['id'],
        function_request_id: 'req-42',
        problems: [expect.objectContaining({ path: 'source' })],
      }),
    );
  });
});

describe('malformed controller events (generated)', () => {
  it('every one is refused with an error naming the field, through the handler, and no port is touched', async () => {
    const { ports, calls } = untouchablePorts();
    const handler = controllerHandler({ spec: FLEET, ports, instanceTypes: noLookup, dryRun: false }, silent());
    await fc.assert(
      fc.asyncProperty(eventMutation, async (m) => {
        const input = m.apply(sampleEvent(m.sample));
        const error = await handler(input, lambdaContext()).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(InputValidationError);
        // The field itself, or one inside it (`services[0]` for a bad item of `services`).
        const named = (error as InputValidationError).problems.filter((p) => p.path === m.path || p.path.startsWith(`${m.path}[`) || p.path.startsWith(`${m.path}.`));
        expect(named, (error as Error).message).not.toEqual([]);
        expect((error as Error).message).toContain(named[0]!.path);
        expect(calls).toEqual([]);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('a capacity event through the controller', () => {
  function world() {
    const scenario = parseScenario({ name: 't', durationMinutes: 60, fleet: 'default', demand: { sd21: { points: [[0, 900]] } } }, `${process.cwd()}/test/unit/inline.yaml`);
    const fleet = { ...scenario.fleet, services: { sd21: scenario.fleet.services['sd21']! }, units: scenario.fleet.units.filter((u) => u.service === 'sd21') };
    const w = new World(fleet, scenario.file, ['sd21'], mulberry32(1));
    const ports = simPorts(w, { now: () => Date.parse('2030-01-01T12:00:30Z') }, []);
    const writes: string[] = [];
    const counted: Ports = {
      ...ports,
      router: { ...ports.router, setWeights: async (...a) => (writes.push('setWeights'), ports.router.setWeights(...a)) },
      autoscaler: { ...ports.autoscaler, setScaling: async (...a) => (writes.push('setScaling'), ports.autoscaler.setScaling(...a)) },
      store: { load: (o) => ports.store.load(o), save: async (...a) => (writes.push('save'), ports.store.save(...a)) },
      lease: { acquire: async (...a) => (writes.push('lease'), ports.lease.acquire(...a)), release: (...a) => ports.lease.release(...a) },
      notifier: { notify: async (...a) => (writes.push('notify'), ports.notifier.notify(...a)) },
    };
    return { fleet, ports: counted, writes };
  }

  it('in dry run decides with the interrupted pool’s signal and writes nothing', async () => {
    // Prepare: a fresh fleet the first tick would route; the instance is an inf2.
    const { fleet, ports, writes } = world();
    const lookup: InstanceTypeLookup = { instanceTypeOf: async () => 'inf2.xlarge' };
    const logged: Array<Record<string, unknown>> = [];
    const log = { info: (_m: string, extra: Record<string, unknown>) => void logged.push(extra), warn: () => undefined };

    // Act
    const { answer, result } = await handleControllerEvent({ spec: fleet, ports, instanceTypes: lookup, dryRun: true, log }, sampleEvent('spot-interruption'));

    // Assess: the plan is there to read, and nothing was written.
    expect(answer.outcome).toBe('dry-run');
    expect(answer.signal).toMatchObject({ family: 'inf2', kind: 'interruption' });
    expect(result.observation.signals).toContainEqual(answer.signal);
    expect(result.plan.weights.length + result.plan.scaling.length).toBeGreaterThan(0);
    expect(writes).toEqual([]);
    expect(logged[0]).toMatchObject({ outcome: 'dry-run', plan: result.plan });
  });

  it('through the Lambda handler emits EMF in the hwai namespace: Mode per service, Weight per unit, Decisions, ActuationErrors, TickSucceeded', async () => {
    // Prepare: Powertools writes EMF lines to stdout; catch them.
    const { fleet, ports } = world();
    const logger = new Logger({ logLevel: 'SILENT' });
    const handler = controllerHandler({ spec: fleet, ports, instanceTypes: noLookup, dryRun: true }, { logger, metrics: new Metrics({ namespace: 'hwai', serviceName: 'hwai-controller', logger }) });
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => (String(chunk).includes('"_aws"') ? (lines.push(String(chunk)), true) : write(chunk, ...rest))) as typeof process.stdout.write;

    // Act
    try {
      await handler(sampleEvent('scheduled-tick'), lambdaContext());
    } finally {
      process.stdout.write = write;
    }

    // Assess: one line per service's mode, one per unit's weight, and the tick's own figures.
    const emf = lines.flatMap((l) => l.trim().split('\n')).map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Metrics: Array<{ Name: string }> }> } });
    const named = (name: string) => emf.filter((e) => e._aws.CloudWatchMetrics[0]!.Metrics.some((m) => m.Name === name));
    expect(new Set(emf.map((e) => e._aws.CloudWatchMetrics[0]!.Namespace))).toEqual(new Set(['hwai']));
    expect(named('Mode').map((e) => [e['Service'], e['Mode']])).toEqual([['sd21', 0]]);
    expect(named('Weight').map((e) => e['Unit']).sort()).toEqual(fleet.units.map((u) => u.name).sort());
    const tick = named('TickSucceeded')[0]!;
    expect(tick).toMatchObject({ Decisions: 1, ActuationErrors: 0, TickSucceeded: 1 });
  });

  it('with the instance type unknown still ticks every service, without a signal', async () => {
    const { fleet, ports } = world();
    const failing: InstanceTypeLookup = { instanceTypeOf: async () => Promise.reject(new Error('ec2:DescribeInstances throttled')) };
    const warnings: string[] = [];
    const log = { info: () => undefined, warn: (m: string) => void warnings.push(m) };

    const { answer } = await handleControllerEvent({ spec: fleet, ports, instanceTypes: failing, dryRun: true, log }, sampleEvent('rebalance-recommendation'));

    expect(answer.signal).toBeNull();
    expect(answer.services.map((s) => s.service)).toEqual(['sd21']);
    expect(warnings).toEqual(['capacity event: instance type unknown, ticking every service']);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}
