// The operator's override: payloads validated against the fleet, applied at most once per
// request id, audited, alerted, and answered with the service's status.
import fc from 'fast-check';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { HISTORY_LIMIT, RequestIdReusedError, type AuditEntry, type AuditedServiceState, applyOverrideCommand, parseOverrideRequest, type OverrideCommand } from '../../shared/src/control/override.ts';
import { overrideHandler } from '../../shared/src/control/override-lambda.ts';
import { handleOverride, type OverrideDeps } from '../../shared/src/control/override-service.ts';
import { serviceStatus, withLastDecisions } from '../../shared/src/control/status.ts';
import { initialControllerState, initialServiceState } from '../../shared/src/core/state.ts';
import type { ControllerState, ServiceDecision } from '../../shared/src/core/types.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import { InputValidationError } from '../../shared/src/spec/validation.ts';
import { CountingStore, RecordingNotifier, lambdaContext, sampleEvent } from './events.fixtures.ts';

const FLEET = loadFleetSpec();
const SD21 = FLEET.units.filter((u) => u.service === 'sd21').map((u) => u.name);
const T0 = Date.UTC(2030, 0, 1, 12, 0);

function command(name: string, overrides: Record<string, unknown> = {}): OverrideCommand {
  return parseOverrideRequest({ ...sampleEvent(name), ...overrides }, FLEET) as OverrideCommand;
}

function deps(now = T0): OverrideDeps & { store: CountingStore; notifier: RecordingNotifier; at: { now: number } } {
  const at = { now };
  return { spec: FLEET, store: new CountingStore(), notifier: new RecordingNotifier(), clock: { now: () => at.now }, dryRun: false, at };
}

describe('applying an override command', () => {
  it('set-mode forces the mode for its duration, audits it and alerts its start', () => {
    const out = applyOverrideCommand(FLEET, initialControllerState(), command('override-set-mode'), T0);

    const sd21 = out.state.services['sd21']!;
    expect(sd21.override).toEqual({ id: 'chg-2030-0001', mode: 'capacity', startedAt: T0, until: T0 + 60 * 60_000, reason: expect.any(String), by: 'oncall@example.com' });
    expect(out).toMatchObject({ changed: true, outcome: 'override-set', replayed: false });
    expect(out.alerts).toEqual([{ kind: 'override-started', service: 'sd21', message: expect.stringContaining('mode capacity until 2030-01-01T13:00:00.000Z') }]);
    expect((sd21 as AuditedServiceState).history).toEqual([expect.objectContaining({ event: 'override-set', by: 'oncall@example.com', requestId: 'chg-2030-0001' })]);
  });

  it('pin gives every unit of the service a weight, the units left out 0, and keeps force', () => {
    const out = applyOverrideCommand(FLEET, initialControllerState(), command('override-pin', { force: true }), T0);

    expect(out.state.services['sd21']!.override).toMatchObject({
      weights: Object.fromEntries(SD21.map((u) => [u, u === 'sd21-trn1-neuron' ? 100 : 0])),
      force: true,
      until: T0 + 30 * 60_000,
    });
  });

  it('a retried request (same id, same payload) changes nothing and answers as the first did', () => {
    const first = applyOverrideCommand(FLEET, initialControllerState(), command('override-pin'), T0);

    const retry = applyOverrideCommand(FLEET, first.state, command('override-pin'), T0 + 5_000);

    expect(retry).toMatchObject({ changed: false, replayed: true, outcome: 'override-set', alerts: [] });
    expect(retry.state).toBe(first.state);
  });

  it('a request id reused for another request is refused', () => {
    const first = applyOverrideCommand(FLEET, initialControllerState(), command('override-pin'), T0);

    expect(() => applyOverrideCommand(FLEET, first.state, command('override-pin', { durationMinutes: 90 }), T0)).toThrow(RequestIdReusedError);
  });

  it('clear ends an active override and alerts; with none active it changes nothing', () => {
    const set = applyOverrideCommand(FLEET, initialControllerState(), command('override-set-mode'), T0);

    const cleared = applyOverrideCommand(FLEET, set.state, command('override-clear'), T0 + 60_000);
    const again = applyOverrideCommand(FLEET, cleared.state, command('override-clear', { requestId: 'chg-2030-0004' }), T0 + 120_000);

    expect(cleared.state.services['sd21']!.override).toBeNull();
    expect(cleared.alerts).toEqual([{ kind: 'override-ended', service: 'sd21', message: expect.stringContaining('cleared by oncall@example.com') }]);
    expect(again).toMatchObject({ changed: false, outcome: 'nothing-to-clear', alerts: [] });
  });

  it('leaves an expired override for the controller to end (it alerts the expiry)', () => {
    const set = applyOverrideCommand(FLEET, initialControllerState(), command('override-set-mode', { durationMinutes: 1 }), T0);

    const late = applyOverrideCommand(FLEET, set.state, command('override-clear'), T0 + 2 * 60_000);

    expect(late).toMatchObject({ changed: false, outcome: 'nothing-to-clear' });
  });

  it(`keeps the last ${HISTORY_LIMIT} audit entries`, () => {
    let state: ControllerState = initialControllerState();
    for (let i = 0; i < HISTORY_LIMIT + 7; i++) {
      state = applyOverrideCommand(FLEET, state, command('override-set-mode', { requestId: `r-${i}` }), T0 + i).state;
    }

    const history = (state.services['sd21'] as AuditedServiceState).history as AuditEntry[];
    expect(history).toHaveLength(HISTORY_LIMIT);
    expect(history[0]!.requestId).toBe('r-7');
    expect(history.at(-1)!.requestId).toBe(`r-${HISTORY_LIMIT + 6}`);
  });
});

describe('the override function', () => {
  it('saves once, alerts once, and a retried invoke neither writes nor alerts again', async () => {
    const d = deps();

    const first = await handleOverride(d, sampleEvent('override-set-mode'));
    const retry = await handleOverride(d, sampleEvent('override-set-mode'));

    expect(first).toMatchObject({ action: 'set-mode', outcome: 'override-set', replayed: false, alerted: true, status: { mode: 'override' } });
    expect(retry).toMatchObject({ outcome: 'override-set', replayed: true, status: { mode: 'override' } });
    expect(d.store.saves).toBe(1);
    expect(d.notifier.sent).toHaveLength(1);
  });

  it('retries on a fresh state when a tick saved in between', async () => {
    // Prepare: a store whose first save loses to a concurrent writer.
    const d = deps();
    const save = d.store.save.bind(d.store);
    let lost = false;
    d.store.save = async (state, version) => {
      if (!lost) {
        lost = true;
        await save({ version: 1, services: { sd21: { ...initialServiceState(), mode: 'capacity', since: T0 - 1 } } }, version);
        return false;
      }
      return save(state, version);
    };

    // Act
    await handleOverride(d, sampleEvent('override-pin'));

    // Assess: the tick's state is kept and the override is on top of it.
    const stored = (await d.store.inner.load()).state.services['sd21']!;
    expect(stored.mode).toBe('capacity');
    expect(stored.override?.id).toBe('chg-2030-0002');
  });

  it('in dry run answers what it would do and writes nothing', async () => {
    const d = { ...deps(), dryRun: true };

    const answer = await handleOverride(d, sampleEvent('override-pin'));

    expect(answer).toMatchObject({ outcome: 'override-set', dryRun: true, alerted: false, status: { mode: 'override' } });
    expect(d.store.saves).toBe(0);
    expect(d.notifier.sent).toEqual([]);
  });

  it('status shows mode, override with progress, the last decision with its reasons, and per-unit weights and floors', async () => {
    // Prepare: an override, then a tick that recorded its decision (progress included).
    const d = deps();
    await handleOverride(d, sampleEvent('override-pin'));
    const stored = await d.store.inner.load();
    const decision: ServiceDecision = {
      service: 'sd21',
      mode: 'override',
      weights: Object.fromEntries(SD21.map((u) => [u, u === 'sd21-trn1-neuron' ? 50 : u === 'sd21-inf2-neuron' ? 50 : 0])),
      scaling: Object.fromEntries(SD21.map((u) => [u, { minReplicas: u === 'sd21-trn1-neuron' ? 6 : 1, maxReplicas: 20, targetRpm: 100 }])),
      reasons: ['override by oncall@example.com', 'sd21-trn1-neuron: 2/6 ready; weights follow'],
      alerts: [],
      override: { target: { 'sd21-trn1-neuron': 100 }, applied: { 'sd21-trn1-neuron': 50, 'sd21-inf2-neuron': 50 }, fraction: 0.5, waitingFor: ['sd21-trn1-neuron: 2/6 ready'] },
      state: stored.state.services['sd21']!,
    };
    await d.store.inner.save(withLastDecisions(stored.state, [decision], 'optimizer', T0 + 60_000), stored.version);
    d.at.now = T0 + 90_000;

    // Act
    const answer = await handleOverride(d, sampleEvent('override-status'));

    // Assess
    expect(answer.action).toBe('status');
    const [status] = (answer as { services: ReturnType<typeof serviceStatus>[] }).services;
    expect(status).toMatchObject({
      service: 'sd21',
      mode: 'override',
      since: new Date(T0).toISOString(),
      override: { id: 'chg-2030-0002', remainingMinutes: 29 },
      progress: { fraction: 0.5, waitingFor: ['sd21-trn1-neuron: 2/6 ready'] },
      lastDecision: { reasons: decision.reasons, at: new Date(T0 + 60_000).toISOString() },
    });
    expect(status!.units.find((u) => u.unit === 'sd21-trn1-neuron')).toEqual({ unit: 'sd21-trn1-neuron', family: 'trn1', weight: 50, floor: 6 });
  });

  it('records an expiry the controller found in the history', () => {
    const set = applyOverrideCommand(FLEET, initialControllerState(), command('override-set-mode'), T0);
    const expired: ServiceDecision = {
      service: 'sd21', mode: 'cost', weights: {}, scaling: {}, reasons: ['override expired'], override: null,
      alerts: [{ kind: 'override-ended', service: 'sd21', message: 'sd21: override by oncall@example.com expired' }],
      state: set.state.services['sd21']!,
    };

    const next = withLastDecisions(set.state, [expired], 'optimizer', T0 + 61 * 60_000);

    expect((next.services['sd21'] as AuditedServiceState).history!.at(-1)).toMatchObject({ event: 'override-expired', by: 'hwai' });
  });
});

describe('rejected override payloads', () => {
  it.each([
    ['an unknown service', { ...sampleEvent('override-set-mode'), service: 'sd99' }, 'service', /unknown service "sd99"/],
    ['a unit of another service', { ...sampleEvent('override-pin'), weights: { 'vit-g6-cuda': 10 } }, 'weights.vit-g6-cuda', /unknown unit of sd21/],
    ['weights that route nothing', { ...sampleEvent('override-pin'), weights: { 'sd21-trn1-neuron': 0 } }, 'weights', /positive sum/],
    ['a weight over 999', { ...sampleEvent('override-pin'), weights: { 'sd21-trn1-neuron': 1000 } }, 'weights.sd21-trn1-neuron', /<= 999/],
    ['a duration over a day', { ...sampleEvent('override-set-mode'), durationMinutes: 1441 }, 'durationMinutes', /<= 1440/],
    ['no reason', { ...sampleEvent('override-clear'), reason: '  ' }, 'reason', /say why/],
    ['an unknown action', { ...sampleEvent('override-clear'), action: 'delete' }, 'action', /discriminator/i],
    ['a mode that is not one', { ...sampleEvent('override-set-mode'), mode: 'override' }, 'mode', /"cost", "capacity"/],
  ])('%s is refused, naming the field', (_what, input, path, message) => {
    let error: unknown;
    try {
      parseOverrideRequest(input, FLEET);
    } catch (e) {
      error = e;
    }

    expect(error).toBeInstanceOf(InputValidationError);
    const problem = (error as InputValidationError).problems.find((p) => p.path === path);
    expect(problem, (error as Error).message).toBeDefined();
    expect(problem!.message).toMatch(message);
  });
});

interface PayloadMutation {
  sample: string;
  path: string;
  apply(payload: Record<string, unknown>): unknown;
}

const WRONG_TYPE = fc.oneof(fc.constant(null), fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));
const COMMANDS = ['override-set-mode', 'override-pin', 'override-clear'];
const set = (p: Record<string, unknown>, key: string, value: unknown) => {
  const copy = structuredClone(p);
  if (value === undefined) delete copy[key];
  else copy[key] = value;
  return copy;
};

const payloadMutation: fc.Arbitrary<PayloadMutation> = fc.oneof(
  // Missing or mistyped fields every command has.
  fc.record({ sample: fc.constantFrom(...COMMANDS), field: fc.constantFrom('service', 'reason', 'by', 'requestId'), value: fc.oneof(fc.constant(undefined), WRONG_TYPE, fc.integer()) })
    .map(({ sample, field, value }) => ({ sample, path: field, apply: (p: Record<string, unknown>) => set(p, field, value) })),
  // Empty or blank texts, request ids a retry could not reuse safely.
  fc.record({ sample: fc.constantFrom(...COMMANDS), field: fc.constantFrom('reason', 'by'), value: fc.stringMatching(/^\s*$/) })
    .map(({ sample, field, value }) => ({ sample, path: field, apply: (p: Record<string, unknown>) => set(p, field, value) })),
  fc.record({ sample: fc.constantFrom(...COMMANDS), value: fc.string().filter((s) => !/^[A-Za-z0-9._:-]{1,128}$/.test(s)) })
    .map(({ sample, value }) => ({ sample, path: 'requestId', apply: (p: Record<string, unknown>) => set(p, 'requestId', value) })),
  // Services the fleet does not have.
  fc.record({ sample: fc.constantFrom(...COMMANDS, 'override-status'), value: fc.string({ minLength: 1, maxLength: 63 }).filter((s) => !(s in FLEET.services)) })
    .map(({ sample, value }) => ({ sample, path: 'service', apply: (p: Record<string, unknown>) => set(p, 'service', value) })),
  // Durations out of bounds, fractional, or not numbers.
  fc.record({
    sample: fc.constantFrom('override-set-mode', 'override-pin'),
    value: fc.oneof(fc.constant(undefined), WRONG_TYPE, fc.string(), fc.integer({ max: 0 }), fc.integer({ min: 1441 }), fc.double({ min: 1.01, max: 1439.99, noInteger: true, noNaN: true })),
  }).map(({ sample, value }) => ({ sample, path: 'durationMinutes', apply: (p: Record<string, unknown>) => set(p, 'durationMinutes', value) })),
  // Modes that are not one.
  fc.oneof(fc.constant(undefined), WRONG_TYPE, fc.string().filter((s) => s !== 'cost' && s !== 'capacity'))
    .map((value) => ({ sample: 'override-set-mode', path: 'mode', apply: (p: Record<string, unknown>) => set(p, 'mode', value) })),
  // Weights: not a map, a weight out of 0–999 or not an integer, a unit of another service, all zero.
  fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer(), fc.array(fc.integer(), { maxLength: 2 }))
    .map((value) => ({ sample: 'override-pin', path: 'weights', apply: (p: Record<string, unknown>) => set(p, 'weights', value) })),
  fc.record({ unit: fc.constantFrom(...SD21), value: fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 1000 }), fc.double({ min: 0.01, max: 998.99, noInteger: true, noNaN: true }), fc.constant(null), fc.string()) })
    .map(({ unit, value }) => ({ sample: 'override-pin', path: `weights.${unit}`, apply: (p: Record<string, unknown>) => set(p, 'weights', { [unit]: value }) })),
  fc.string({ minLength: 1 }).filter((u) => !SD21.includes(u) && !u.includes('.') && u !== '__proto__')
    .map((unit) => ({ sample: 'override-pin', path: `weights.${unit}`, apply: (p: Record<string, unknown>) => set(p, 'weights', { 'sd21-inf2-neuron': 10, [unit]: 5 }) })),
  fc.subarray(SD21, { minLength: 0 })
    .map((units) => ({ sample: 'override-pin', path: 'weights', apply: (p: Record<string, unknown>) => set(p, 'weights', Object.fromEntries(units.map((u) => [u, 0]))) })),
  fc.oneof(WRONG_TYPE.filter((v) => typeof v !== 'boolean'), fc.integer(), fc.string())
    .map((value) => ({ sample: 'override-pin', path: 'force', apply: (p: Record<string, unknown>) => set(p, 'force', value) })),
  // Unknown actions, unknown fields, not an object at all.
  fc.record({ sample: fc.constantFrom(...COMMANDS, 'override-status'), value: fc.oneof(fc.constant(undefined), WRONG_TYPE, fc.string().filter((s) => !['set-mode', 'pin', 'clear', 'status'].includes(s))) })
    .map(({ sample, value }) => ({ sample, path: 'action', apply: (p: Record<string, unknown>) => set(p, 'action', value) })),
  fc.record({ sample: fc.constantFrom(...COMMANDS, 'override-status'), key: fc.string({ minLength: 1 }).filter((k) => !['action', 'service', 'mode', 'weights', 'durationMinutes', 'force', 'reason', 'by', 'requestId', '__proto__'].includes(k)) })
    .map(({ sample, key }) => ({ sample, path: '(root)', apply: (p: Record<string, unknown>) => set(p, key, 'x') })),
  fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.array(fc.integer(), { maxLength: 3 }))
    .map((value) => ({ sample: 'override-status', path: '(root)', apply: () => value })),
);

describe('malformed override payloads (generated)', () => {
  it('every one is refused through the handler with an error naming the field, and the stored state does not change', async () => {
    // Prepare: a fleet state with an override in force, as production would have.
    const quiet = new Logger({ logLevel: 'SILENT' });
    const metrics = new Metrics({ namespace: 'hwai', logger: quiet });
    const d = deps();
    await handleOverride(d, sampleEvent('override-set-mode'));
    const before = await d.store.inner.load();
    const saves = d.store.saves;
    const handler = overrideHandler(d, { logger: quiet, metrics });

    await fc.assert(
      fc.asyncProperty(payloadMutation, async (m) => {
        const error = await handler(m.apply(sampleEvent(m.sample)), lambdaContext()).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(InputValidationError);
        const named = (error as InputValidationError).problems.filter((p) => p.path === m.path || p.path.startsWith(`${m.path}.`) || p.path.startsWith(`${m.path}[`));
        expect(named, (error as Error).message).not.toEqual([]);
        expect((error as Error).message).toContain(named[0]!.path);
      }),
      { numRuns: 5_000 },
    );

    // Assess: not one save, the state as it was, nobody alerted beyond the first override.
    expect(d.store.saves).toBe(saves);
    expect(await d.store.inner.load()).toEqual(before);
    expect(d.notifier.sent).toHaveLength(1);
  });
});
