import { GetMetricDataCommand, type CloudWatchClient, type MetricDataQuery, type MetricDataResult } from '@aws-sdk/client-cloudwatch';
import type { FleetSpec, Unit } from '../../spec/schema.ts';
import type { CallOptions, MetricsPort, UnitMetrics } from '../../reconcile/ports.ts';
import { MINUTE_MS, requestMinutes } from '../../reconcile/request-minutes.ts';

/**
 * Per-unit throughput and p99 latency from the model servers' EMF metrics (namespace per
 * service, dimensions `service` and `unit`): `RequestCount` summed over a minute is the unit's
 * rpm; `Latency` (milliseconds) at p99 is its tail latency.
 *
 * Which minute: CloudWatch data arrives 1–3 minutes late, so the minute that just ended reads as
 * a drop in demand. The adapter reads the last minute that ended at least `lagSeconds` before
 * the tick (a complete minute), and in the same call the `historyMinutes` before it, which is
 * the per-minute demand history the optimizer forecasts from.
 *
 * How many calls: GetMetricData takes at most 500 queries; two per unit (requests, latency), so
 * 250 units fit one call and a larger fleet is split into ceil(queries / 500) calls.
 *
 * No data: the model servers emit `RequestCount` once per request received, so a minute with no
 * datapoint had no requests — once CloudWatch has delivered that minute, i.e. some unit has a
 * datapoint at or after it (`requestMinutes`, shared with the simulator). A minute past every
 * unit's newest datapoint has not arrived yet: not observed (null), never a drop to zero demand.
 * By default an arrived minute without a datapoint reads 0 rpm (an idle unit at weight 0 must not
 * make the service's demand unknown); `requestsWithoutData: 'null'` reads it as not observed. A
 * failed call, or a query CloudWatch answers as incomplete, is always "not observed" (null).
 * Latency without data is always null.
 */

export const DEFAULT_METRIC_NAMESPACE = 'hw-agnostic-infer';
/** GetMetricData's limit on MetricDataQueries per call. */
export const MAX_QUERIES_PER_CALL = 500;

export interface CloudWatchMetricsOptions {
  /**
   * The latency statistic. Production: `p99`. moto (the integration harness) implements only
   * Sum/Average/Minimum/Maximum/SampleCount, so its tests read `Maximum` instead.
   */
  latencyStat?: string;
  /** How old the last minute read must be, at least (default 120 s: CloudWatch is 1–3 min late). */
  lagSeconds?: number;
  /** Complete minutes of request history returned per unit, the last one included (default 30). */
  historyMinutes?: number;
  /** What a minute without a RequestCount datapoint reads as (default 'zero'; see above). */
  requestsWithoutData?: 'zero' | 'null';
}

export class CloudWatchMetrics implements MetricsPort {
  private readonly latencyStat: string;
  private readonly lagMs: number;
  private readonly historyMinutes: number;
  private readonly zeroWithoutData: boolean;

  constructor(
    private readonly client: CloudWatchClient,
    private readonly services: FleetSpec['services'],
    options: CloudWatchMetricsOptions = {},
  ) {
    this.latencyStat = options.latencyStat ?? 'p99';
    this.lagMs = (options.lagSeconds ?? 120) * 1000;
    this.historyMinutes = options.historyMinutes ?? 30;
    this.zeroWithoutData = (options.requestsWithoutData ?? 'zero') === 'zero';
    if (!(this.lagMs >= 0) || !Number.isInteger(this.historyMinutes) || this.historyMinutes < 1) {
      throw new RangeError(`CloudWatchMetrics: lagSeconds ${options.lagSeconds} and historyMinutes ${options.historyMinutes}: expected lagSeconds >= 0 and an integer historyMinutes >= 1`);
    }
  }

  async readUnitMetrics(units: ReadonlyArray<Unit>, at: number, options: CallOptions = {}): Promise<Record<string, UnitMetrics>> {
    const result: Record<string, UnitMetrics> = Object.fromEntries(units.map((u) => [u.name, { rpm: null, p99Seconds: null, rpmHistory: [] }]));
    if (units.length === 0) return result;
    const end = Math.floor((at - this.lagMs) / MINUTE_MS) * MINUTE_MS;
    const last = end - MINUTE_MS;
    const start = end - this.historyMinutes * MINUTE_MS;
    // Ids must start lowercase and use [a-zA-Z0-9_]; unit names have "-", so index them.
    const queries: MetricDataQuery[] = units.flatMap((u, i) => [this.query(`rpm_${i}`, u, 'RequestCount', 'Sum'), this.query(`lat_${i}`, u, 'Latency', this.latencyStat)]);
    const batches: MetricDataQuery[][] = [];
    for (let i = 0; i < queries.length; i += MAX_QUERIES_PER_CALL) batches.push(queries.slice(i, i + MAX_QUERIES_PER_CALL));
    const results = (await Promise.all(batches.map((batch) => this.fetch(batch, start, end, options)))).flat();

    const requests = new Map<string, Map<number, number>>();
    for (const [id, r] of mergePages(results)) {
      const match = /^(rpm|lat)_(\d+)$/.exec(id);
      const unit = match ? units[Number(match[2])] : undefined;
      if (!unit || r.status !== 'Complete') continue;
      if (match![1] === 'rpm') {
        requests.set(unit.name, r.values);
        continue;
      }
      const ms = r.values.get(last);
      result[unit.name]!.p99Seconds = ms === undefined ? null : ms / 1000;
    }
    for (const [unit, known] of requestMinutes(requests, start, end)) {
      const metrics = result[unit]!;
      if (this.zeroWithoutData) Object.assign(metrics, known);
      else {
        metrics.rpmHistory = known.rpmHistory.filter(([minute]) => requests.get(unit)!.has(minute));
        metrics.rpm = requests.get(unit)!.get(last) ?? null;
      }
    }
    return result;
  }

  /** One batch of at most 500 queries, every page of it. */
  private async fetch(queries: MetricDataQuery[], start: number, end: number, options: CallOptions): Promise<MetricDataResult[]> {
    const results: MetricDataResult[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.client.send(
        new GetMetricDataCommand({ StartTime: new Date(start), EndTime: new Date(end), MetricDataQueries: queries, ScanBy: 'TimestampAscending', NextToken: nextToken }),
        { abortSignal: options.signal },
      );
      results.push(...(out.MetricDataResults ?? []));
      nextToken = out.NextToken;
    } while (nextToken);
    return results;
  }

  private query(id: string, unit: Unit, metricName: string, stat: string): MetricDataQuery {
    const namespace = this.services[unit.service]?.metricNamespace ?? DEFAULT_METRIC_NAMESPACE;
    const dimensions = [
      { Name: 'service', Value: unit.service },
      { Name: 'unit', Value: unit.name },
    ];
    return { Id: id, MetricStat: { Metric: { Namespace: namespace, MetricName: metricName, Dimensions: dimensions }, Period: MINUTE_MS / 1000, Stat: stat }, ReturnData: true };
  }
}

interface QueryValues {
  /** The status of the query's last page: `Complete` once every page is in. */
  status: string | undefined;
  /** Minute start (epoch ms) → value. */
  values: Map<number, number>;
}

/** One query's datapoints may come in several pages: merge them by query id. */
function mergePages(results: ReadonlyArray<MetricDataResult>): Map<string, QueryValues> {
  const merged = new Map<string, QueryValues>();
  for (const r of results) {
    const entry = merged.get(r.Id ?? '') ?? { status: undefined, values: new Map<number, number>() };
    entry.status = r.StatusCode;
    (r.Timestamps ?? []).forEach((t, i) => {
      const v = r.Values?.[i];
      if (v !== undefined && Number.isFinite(v)) entry.values.set(t.getTime(), v);
    });
    merged.set(r.Id ?? '', entry);
  }
  return merged;
}
