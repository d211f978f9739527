import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { InputValidationError } from '../spec/validation.ts';

/**
 * The two Lambda handlers as middy chains: Powertools Logger (structured JSON, the Lambda
 * context and a correlation id on every line) and Metrics (EMF, namespace `hwai`). The work is
 * in handleControllerEvent / handleOverride; functions/* only build the runtime at cold start.
 * Each handler has its own module so the other's dependencies stay out of its bundle.
 */

/** Time kept back from the Lambda deadline: aborted calls unwind, the lease is released, logs flush. */
export const DEADLINE_MARGIN_MS = 3_000;

export interface Observability {
  logger?: Logger;
  metrics?: Metrics;
}

/** An AbortSignal that fires `marginMs` before the invocation's deadline (never, outside Lambda). */
export function deadlineSignal(context: Pick<Context, 'getRemainingTimeInMillis'> | undefined, marginMs = DEADLINE_MARGIN_MS): AbortSignal | undefined {
  const remaining = context?.getRemainingTimeInMillis?.();
  return typeof remaining === 'number' ? AbortSignal.timeout(Math.max(0, remaining - marginMs)) : undefined;
}

/** EventBridge events carry an id; an override carries its request id; else the Lambda request id. */
export function correlationIdOf(event: unknown, context: Context | undefined): string | undefined {
  if (event && typeof event === 'object') {
    const e = event as Record<string, unknown>;
    if (typeof e.id === 'string') return e.id;
    if (typeof e.requestId === 'string') return e.requestId;
  }
  return context?.awsRequestId;
}

export function observability(name: string, given: Observability): Required<Observability> {
  return {
    logger: given.logger ?? new Logger({ serviceName: name }),
    metrics: given.metrics ?? new Metrics({ namespace: 'hwai', serviceName: name }),
  };
}

/** A validation failure is the caller's mistake: logged as a warning, thrown with its message. */
export function logFailure(logger: Logger, error: unknown): void {
  if (error instanceof InputValidationError) logger.warn('rejected input', { problems: error.problems });
  else logger.error('invocation failed', error as Error);
}

/** The middy chain both handlers share: the Lambda context and a correlation id in every log line, EMF flushed at the end. */
export function lambdaChain<Result>(given: Required<Observability>, work: (event: unknown, context: Context) => Promise<Result>) {
  const { logger, metrics } = given;
  return middy<unknown, Result>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics))
    .handler(async (event: unknown, context: Context) => {
      logger.setCorrelationId(correlationIdOf(event, context));
      try {
        return await work(event, context);
      } catch (error) {
        logFailure(logger, error);
        throw error;
      }
    });
}
