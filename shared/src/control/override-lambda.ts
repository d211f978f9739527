import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { deadlineSignal, lambdaChain, observability, type Observability } from './lambda.ts';
import { handleOverride, type OverrideDeps } from './override-service.ts';

/** The override Lambda's handler over dependencies built at cold start (functions/override). */
export function overrideHandler(deps: OverrideDeps, given: Observability = {}) {
  const o = observability('hwai-override', given);
  return lambdaChain(o, async (event: unknown, context: Context) => {
    const answer = await handleOverride(deps, event, deadlineSignal(context));
    o.metrics.addMetric('OverrideRequests', MetricUnit.Count, 1);
    o.logger.info('override', { answer });
    return answer;
  });
}
