import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { controllerConfig } from '../control/config.ts';
import type { Mode, PoolSignal } from '../core/types.ts';
import type { ControllerAnswer } from '../control/controller.ts';
import { controllerHandler } from '../control/controller-lambda.ts';
import { controllerRuntime } from '../control/runtime.ts';
import type { TickError } from '../reconcile/tick.ts';
import { simulate, type ControllerFactory, type TickRecord } from '../sim/run.ts';
import type { Scenario } from '../sim/scenario.ts';
import type { PolicyKind } from '../spec/schema.ts';
import { compareTicks, tickDifferences, type Agreement } from './agreement.ts';
import { twinClients, lambdaProcessEnvironment, type TwinEndpoints } from './clients.ts';
import { deployTwin, twinFleet, twinNamespace } from './deploy.ts';
import { WorldMirror } from './mirror.ts';

/**
 * The twin (issue 7): the simulator's world drives the harness instead of the in-process ports.
 * Each tick the world is written onto moto and the apiserver (WorldMirror), the real controller
 * Lambda handler runs one scheduled tick through its production ports (the environment
 * contract, SDK clients, the Kubernetes client as the restricted identity) on the twin's clock,
 * and the weights and KEDA settings it left are read back into the world, which steps on.
 * The same scenario runs in-process (runTick on simPorts) with the same clock, and the two are
 * compared tick by tick: mode, weights, floors, max replicas and KEDA targets.
 *
 * The clock: world second 0 is a UTC midnight far enough back that the whole run is in the
 * past (CloudWatch keeps two weeks and takes no datapoints from far in the future); it is the
 * in-process run's epoch too, so both decide at the same instants.
 */

const DAY_MS = 86_400_000;
/** The seed scenario compressed to a few hundred ticks, with a shortage and its end. */
export const TWIN_SCENARIO_PATH = fileURLToPath(new URL('../../scenarios/twin-inf2-shortage.yaml', import.meta.url));

export interface TwinOptions {
  scenario: Scenario;
  endpoints: TwinEndpoints;
  /** Default: the scenario fleet's policy. */
  policy?: PolicyKind;
  /** Stop after this many ticks (warm-up included); default: the whole scenario. */
  maxTicks?: number;
  /** After each twin tick: how many done, of how many, and how many of those decided as the in-process run. */
  onTick?: (progress: TwinProgress) => void;
  /** Default: now. */
  now?: number;
  /** A line per stage (in-process run, deployment). */
  log?: (line: string) => void;
}

export interface TwinProgress {
  done: number;
  total: number;
  equal: number;
  record: TickRecord;
}

export interface TwinResult {
  policy: PolicyKind;
  agreement: Agreement;
  /** Wall-clock seconds of the twin's ticks (deployment excluded) and per tick. */
  seconds: number;
  secondsPerTick: number;
  /** Ticks the world's interruptions triggered, sent as EC2's EventBridge event: world second and family. */
  interruptionTicks: Array<{ second: number; family: string }>;
  /** Ticks whose controller reported errors (a failed read or write on the harness). */
  tickErrors: Array<{ second: number; errors: TickError[] }>;
  inProcess: TickRecord[];
  twin: TickRecord[];
}

/** The epoch of world second 0: the latest UTC midnight from which the scenario ends before `now`'s day began. */
export function twinEpoch(scenario: Scenario, now: number): number {
  return Math.floor(now / DAY_MS) * DAY_MS - Math.ceil((scenario.file.durationMinutes * 60_000) / DAY_MS) * DAY_MS;
}

export async function runTwin(options: TwinOptions): Promise<TwinResult> {
  const namespace = twinNamespace();
  const scenario: Scenario = { ...options.scenario, fleet: twinFleet(options.scenario.fleet, namespace) };
  const policy = options.policy ?? scenario.fleet.policy.kind;
  const epochMs = twinEpoch(scenario, options.now ?? Date.now());
  const common = { policies: [policy], epochMs, ...(options.maxTicks !== undefined ? { maxTicks: options.maxTicks } : {}) };

  const inProcess: TickRecord[] = [];
  await simulate(scenario, { ...common, onTick: (r) => inProcess.push(r) });
  options.log?.(`in-process run: ${inProcess.length} ticks of policy ${policy}; deploying the fleet on the harness (namespace ${namespace})`);

  const twin: TickRecord[] = [];
  let equal = 0;
  const tickErrors: TwinResult['tickErrors'] = [];
  const interruptionTicks: TwinResult['interruptionTicks'] = [];
  let started = 0;
  const controller = harnessController(options.endpoints, namespace, { tickErrors, interruptionTicks }, () => (started = Date.now()));
  await simulate(scenario, {
    ...common,
    controller,
    onTick: (record) => {
      const expected = inProcess[twin.length];
      if (expected && tickDifferences(expected, record).length === 0) equal++;
      twin.push(record);
      options.onTick?.({ done: twin.length, total: inProcess.length, equal, record });
    },
  });
  const seconds = (Date.now() - started) / 1000;
  return { policy, agreement: compareTicks(inProcess, twin), seconds, secondsPerTick: seconds / Math.max(1, twin.length), tickErrors, interruptionTicks, inProcess, twin };
}

/** EC2's Spot interruption warning for an instance of the signal's family, at the signal's time. */
async function interruptionEvent(mirror: WorldMirror, signal: PoolSignal, region: string): Promise<Record<string, unknown>> {
  const { instanceId } = await mirror.instanceOf(signal.family);
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'EC2 Spot Instance Interruption Warning',
    source: 'aws.ec2',
    account: '123456789012',
    time: new Date(signal.at).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [`arn:aws:ec2:${region}a:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, 'instance-action': 'terminate' },
  };
}

/** A Lambda context as the handler reads it: a request id and a minute to run. */
function lambdaContext(requestId: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'hwai-twin-controller',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:hwai-twin-controller',
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: '/aws/lambda/hwai-twin-controller',
    logStreamName: 'twin',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/**
 * The controller of the twin's loop: deploys the fleet on the harness, then each tick publishes
 * the world, invokes the controller Lambda's handler with a scheduled tick, and reads back.
 */
function harnessController(endpoints: TwinEndpoints, namespace: string, seen: Pick<TwinResult, 'tickErrors' | 'interruptionTicks'>, ready: () => void): ControllerFactory {
  return async ({ fleet, world, policy, clock, epochMs }) => {
    const clients = twinClients(endpoints);
    const deployment = await deployTwin(clients, world, fleet, namespace, policy);
    lambdaProcessEnvironment(endpoints.region);
    // Cold start, as in Lambda: configuration from the environment, the runtime built once.
    // Only the fleet (the scenario's, as the in-process run has it) and the clock are handed in.
    const runtime = controllerRuntime(controllerConfig(deployment.env), { spec: fleet, clock }, deployment.env);
    // A Lambda writes its logs and EMF metrics to CloudWatch Logs; the twin's would only fill the terminal.
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const logger = new Logger({ serviceName: 'hwai-twin-controller', logLevel: 'SILENT' });
    const handler = controllerHandler(runtime, { logger, metrics: new Metrics({ namespace: 'hwai', serviceName: 'hwai-twin-controller', logger }) });
    const mirror = new WorldMirror(clients, deployment, world, epochMs);
    ready();
    let n = 0;
    return {
      async tick(second) {
        const interruptions = await mirror.publish();
        // A tick the world's interruption triggered is, in production, the EventBridge rule's
        // invoke with EC2's event (the in-process loop ticks at once too); else the schedule's.
        const event = interruptions.length > 0 ? await interruptionEvent(mirror, interruptions[0]!, endpoints.region) : { kind: 'scheduled-tick' };
        const answer = (await handler(event, lambdaContext(`twin-tick-${n++}`))) as ControllerAnswer;
        if (answer.errors.length > 0) seen.tickErrors.push({ second, errors: answer.errors });
        if (interruptions.length > 0) seen.interruptionTicks.push({ second, family: interruptions[0]!.family });
        await mirror.readBack();
        // The handler answers modes and weights, not reasons or alert objects: the twin compares decisions.
        return { services: answer.services.map((s) => ({ service: s.service, mode: s.mode as Mode, reasons: [] })), alerts: [] };
      },
    };
  };
}
