import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Mode } from '../core/types.ts';
import type { TickResult } from '../reconcile/tick.ts';

/**
 * A tick as CloudWatch EMF metrics in the `hwai` namespace: the stack's dashboard plots Mode and
 * Weight, and its "no successful tick for 5 minutes" alarm reads TickSucceeded.
 *
 * Dimensions: Mode by `Service`, Weight by `Service` and `Unit` (capitalised: Powertools already
 * puts the function's own name in a default dimension called `service`).
 */

export const MODE_VALUE: Record<Mode, number> = { cost: 0, capacity: 1, override: 2 };

/** A tick succeeded when it saw everything and every write it meant to make landed. */
export function tickSucceeded(result: Pick<TickResult, 'errors' | 'mismatches'>): boolean {
  return result.errors.length === 0 && result.mismatches.length === 0;
}

export function publishTickMetrics(metrics: Metrics, result: Pick<TickResult, 'decision' | 'errors' | 'mismatches'>): void {
  for (const d of result.decision.services) {
    metrics.singleMetric().addDimension('Service', d.service).addMetric('Mode', MetricUnit.NoUnit, MODE_VALUE[d.mode]);
    for (const [unit, weight] of Object.entries(d.weights)) {
      metrics.singleMetric().addDimensions({ Service: d.service, Unit: unit }).addMetric('Weight', MetricUnit.NoUnit, weight);
    }
  }
  metrics.addMetric('Decisions', MetricUnit.Count, result.decision.services.length);
  metrics.addMetric('ActuationErrors', MetricUnit.Count, result.errors.filter((e) => e.step === 'apply' || e.step === 'verify').length + result.mismatches.length);
  metrics.addMetric('TickSucceeded', MetricUnit.Count, tickSucceeded(result) ? 1 : 0);
}
