// `hwai override` and `hwai status`: what the commands send is what the override function
// accepts, and its answers read as an on-call needs them. The function runs in-process here
// (its handler logic over an in-memory state); the Lambda transport is the SDK's Invoke.
import { describe, expect, it } from 'vitest';
import { RemoteFunctionError } from '../../shared/src/cli/control.ts';
import { handleOverride } from '../../shared/src/control/override-service.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import { CountingStore, RecordingNotifier, runHwai } from './events.fixtures.ts';

const T0 = Date.UTC(2030, 0, 1, 12, 0);

function overrideFunction() {
  const deps = { spec: loadFleetSpec(), store: new CountingStore(), notifier: new RecordingNotifier(), clock: { now: () => T0 }, dryRun: false };
  const sent: unknown[] = [];
  const transport = async () => async (payload: unknown) => {
    sent.push(payload);
    try {
      return await handleOverride(deps, payload);
    } catch (e) {
      // What Lambda's Invoke returns for a handler that threw: its error type and message.
      throw new RemoteFunctionError((e as Error).name, (e as Error).message);
    }
  };
  return { deps, sent, transport };
}

function hwai(fn: ReturnType<typeof overrideFunction>, ...argv: string[]) {
  return runHwai(argv, { transport: fn.transport });
}

describe('hwai override and status', () => {
  it('pin sends a payload the function accepts, and prints the outcome, the request id and the status', async () => {
    const fn = overrideFunction();

    const run = await hwai(fn, 'override', 'pin', '--service', 'sd21', '--weight', 'sd21-trn1-neuron=100', '--weight', 'sd21-g5-triton=20', '--minutes', '30', '--reason', 'canary', '--by', 'ana', '--request-id', 'cli-1');

    expect(run.code).toBe(0);
    expect(fn.sent).toEqual([{ action: 'pin', service: 'sd21', reason: 'canary', by: 'ana', requestId: 'cli-1', weights: { 'sd21-trn1-neuron': 100, 'sd21-g5-triton': 20 }, durationMinutes: 30 }]);
    expect(run.out).toContain('sd21: override-set');
    expect(run.out).toContain('request id: cli-1');
    expect(run.out).toMatch(/override cli-1 by ana until 2030-01-01T12:30:00.000Z \(30 min left\): weights .*sd21-trn1-neuron=100/);
    expect(fn.deps.store.saves).toBe(1);
  });

  it('a retry with the same request id says nothing was repeated', async () => {
    const fn = overrideFunction();
    const args = ['override', 'set-mode', '--service', 'sd21', '--mode', 'capacity', '--minutes', '10', '--reason', 'ice', '--request-id', 'cli-2'];

    await hwai(fn, ...args);
    const retry = await hwai(fn, ...args);

    expect(retry.out).toContain('already done by request cli-2; nothing repeated');
    expect(fn.deps.store.saves).toBe(1);
  });

  it('status prints mode, override and per-unit weights and floors; --json the answer itself', async () => {
    const fn = overrideFunction();
    await hwai(fn, 'override', 'set-mode', '--service', 'sd21', '--mode', 'capacity', '--minutes', '10', '--reason', 'ice', '--by', 'ana', '--request-id', 'cli-3');

    const text = await hwai(fn, 'status', '--service', 'sd21');
    const json = await hwai(fn, 'status', '--json');

    expect(text.out).toContain('sd21: mode override since 2030-01-01T12:00:00.000Z');
    expect(text.out).toMatch(/sd21-inf2-neuron\s+inf2/);
    expect(text.out).toContain('override-set by ana');
    expect(JSON.parse(json.out).services.map((s: { service: string }) => s.service)).toEqual(Object.keys(loadFleetSpec().services).sort());
  });

  it('a request the function refuses exits 2 with its reason, naming the field', async () => {
    const fn = overrideFunction();

    const run = await hwai(fn, 'override', 'pin', '--service', 'sd21', '--weight', 'vit-g6-cuda=10', '--minutes', '30', '--reason', 'x');

    expect(run.code).toBe(2);
    expect(run.err).toContain('weights.vit-g6-cuda: unknown unit of sd21');
  });

  it('a bad argument is refused before anything is sent', async () => {
    const fn = overrideFunction();

    const run = await hwai(fn, 'override', 'pin', '--service', 'sd21', '--weight', 'trn1:100', '--minutes', '30', '--reason', 'x');

    expect(run.code).not.toBe(0);
    expect(run.err).toContain('expected unit=weight');
    expect(fn.sent).toEqual([]);
  });
});
