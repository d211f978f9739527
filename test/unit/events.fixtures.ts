// Shared by the handler tests (unit and integration): the sample payloads of events/, a Lambda
// context, and ports that record every call so a test can say "nothing was touched".
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Context } from 'aws-lambda';
import type { ControlCommandsDeps } from '../../shared/src/cli/control.ts';
import { main } from '../../shared/src/cli/main.ts';
import type { Alert, ControllerState } from '../../shared/src/core/types.ts';
import type { Notifier, Ports, StateStore, StoredState } from '../../shared/src/reconcile/ports.ts';
import { MemoryStateStore } from '../../shared/src/sim/ports.ts';

export const EVENTS_DIR = join(process.cwd(), 'events');

/** Every sample in events/, by file name without `.json`. */
export function sampleEvents(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    readdirSync(EVENTS_DIR)
      .filter((f) => f.endsWith('.json'))
      .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(EVENTS_DIR, f), 'utf8')) as Record<string, unknown>]),
  );
}

export function sampleEvent(name: string): Record<string, unknown> {
  const event = sampleEvents()[name];
  if (!event) throw new Error(`no events/${name}.json`);
  return structuredClone(event);
}

/** The Lambda context fields Powertools and the handlers read; `remainingMs` is the time left. */
export function lambdaContext(remainingMs = 60_000, requestId = 'c0ffee00-0000-4000-8000-000000000001'): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'hwai-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:hwai-test',
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: '/aws/lambda/hwai-test',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Ports that touch nothing and record every call made on them (a call then fails the tick). */
export function untouchablePorts(): { ports: Ports; calls: string[] } {
  const calls: string[] = [];
  const port = (name: string) =>
    new Proxy(
      {},
      {
        get: (_t, method: string) =>
          (..._args: unknown[]) => {
            calls.push(`${name}.${method}`);
            return Promise.reject(new Error(`${name}.${method} was called`));
          },
      },
    );
  const ports = {
    metrics: port('metrics'),
    signals: port('signals'),
    cluster: port('cluster'),
    router: port('router'),
    autoscaler: port('autoscaler'),
    store: port('store'),
    lease: port('lease'),
    notifier: port('notifier'),
    clock: { now: () => (calls.push('clock.now'), 0) },
  } as unknown as Ports;
  return { ports, calls };
}

/** The in-memory state store, counting loads and saves. */
export class CountingStore implements StateStore {
  readonly inner = new MemoryStateStore();
  loads = 0;
  saves = 0;

  async load(): Promise<StoredState> {
    this.loads++;
    return this.inner.load();
  }

  async save(state: ControllerState, expectedVersion: number | null): Promise<boolean> {
    this.saves++;
    return this.inner.save(state, expectedVersion);
  }
}

export class RecordingNotifier implements Notifier {
  readonly sent: Alert[][] = [];
  async notify(alerts: ReadonlyArray<Alert>): Promise<void> {
    if (alerts.length > 0) this.sent.push([...alerts]);
  }
}

/** Runs the `hwai` command line in-process: its exit code and what it wrote. */
export async function runHwai(argv: string[], control: ControlCommandsDeps = {}): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (c: Buffer) => (o += c.toString()));
  err.on('data', (c: Buffer) => (e += c.toString()));
  const code = await main(argv, { out, err }, control);
  return { code, out: o, err: e };
}
