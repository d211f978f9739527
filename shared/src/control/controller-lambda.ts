import type { Context } from 'aws-lambda';
import { handleControllerEvent } from './controller.ts';
import { deadlineSignal, lambdaChain, observability, type Observability } from './lambda.ts';
import { publishTickMetrics } from './metrics.ts';
import type { ControllerRuntime } from './runtime.ts';

/** The controller Lambda's handler over a runtime built at cold start (functions/controller). */
export function controllerHandler(runtime: ControllerRuntime, given: Observability = {}) {
  const o = observability('hwai-controller', given);
  return lambdaChain(o, async (event: unknown, context: Context) => {
    const holder = context?.awsRequestId ? { holder: context.awsRequestId } : {};
    const { answer, result } = await handleControllerEvent({ ...runtime, log: o.logger, ...holder }, event, deadlineSignal(context));
    publishTickMetrics(o.metrics, result);
    return answer;
  });
}
