import { GetMetricDataCommand, type CloudWatchClient, type MetricDataQuery, type MetricDataResult } from '@aws-sdk/client-cloudwatch';
import type { FleetSpec, Unit } from '../../spec/schema.ts';
import type { CallOptions, MetricsPort, UnitMetrics } from '../../reconcile/ports.ts';

/**
 * Per-unit throughput and p99 latency from the model servers' EMF metrics (namespace per
 * service, dimensions `service` and `unit`): `RequestCount` summed over the last full minute is
 * the unit's rpm; `Latency` (milliseconds) at p99 is its tail latency. One GetMetricData call for
 * the whole fleet. No datapoint means "not observed" (null), never zero.
 */

export const DEFAULT_METRIC_NAMESPACE = 'hw-agnostic-infer';
const PERIOD_SECONDS = 60;

export interface CloudWatchMetricsOptions {
  /**
   * The latency statistic. Production: `p99`. moto (the integration harness) implements only
   * Sum/Average/Minimum/Maximum/SampleCount, so its tests read `Maximum` instead.
   */
  latencyStat?: string;
}

export class CloudWatchMetrics implements MetricsPort {
  private readonly latencyStat: string;

  constructor(
    private readonly client: CloudWatchClient,
    private readonly services: FleetSpec['services'],
    options: CloudWatchMetricsOptions = {},
  ) {
    this.latencyStat = options.latencyStat ?? 'p99';
  }

  async readUnitMetrics(units: ReadonlyArray<Unit>, at: number, options: CallOptions = {}): Promise<Record<string, UnitMetrics>> {
    const result: Record<string, UnitMetrics> = Object.fromEntries(units.map((u) => [u.name, { rpm: null, p99Seconds: null }]));
    if (units.length === 0) return result;
    // The last full minute: a minute still in progress would read as a drop in demand.
    const end = Math.floor(at / 60_000) * 60_000;
    const start = end - PERIOD_SECONDS * 1000;
    // Ids must start lowercase and use [a-zA-Z0-9_]; unit names have "-", so index them.
    const queries: MetricDataQuery[] = units.flatMap((u, i) => [this.query(`rpm_${i}`, u, 'RequestCount', 'Sum'), this.query(`lat_${i}`, u, 'Latency', this.latencyStat)]);

    const results: MetricDataResult[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.client.send(
        new GetMetricDataCommand({ StartTime: new Date(start), EndTime: new Date(end), MetricDataQueries: queries, NextToken: nextToken }),
        { abortSignal: options.signal },
      );
      results.push(...(out.MetricDataResults ?? []));
      nextToken = out.NextToken;
    } while (nextToken);

    for (const r of results) {
      const match = /^(rpm|lat)_(\d+)$/.exec(r.Id ?? '');
      const unit = match ? units[Number(match[2])] : undefined;
      const value = valueAt(r, start);
      if (!unit || value === null) continue;
      if (match![1] === 'rpm') result[unit.name]!.rpm = value;
      else result[unit.name]!.p99Seconds = value / 1000;
    }
    return result;
  }

  private query(id: string, unit: Unit, metricName: string, stat: string): MetricDataQuery {
    const namespace = this.services[unit.service]?.metricNamespace ?? DEFAULT_METRIC_NAMESPACE;
    const dimensions = [
      { Name: 'service', Value: unit.service },
      { Name: 'unit', Value: unit.name },
    ];
    return { Id: id, MetricStat: { Metric: { Namespace: namespace, MetricName: metricName, Dimensions: dimensions }, Period: PERIOD_SECONDS, Stat: stat }, ReturnData: true };
  }
}

/** The datapoint of the period that starts at `start`; pages of one query are merged by the caller. */
function valueAt(r: MetricDataResult, start: number): number | null {
  const i = (r.Timestamps ?? []).findIndex((t) => t.getTime() === start);
  const v = i >= 0 ? r.Values?.[i] : undefined;
  return v === undefined || !Number.isFinite(v) ? null : v;
}
