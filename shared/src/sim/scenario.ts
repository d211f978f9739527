import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { KEDA_METRIC_END_TIME_OFFSET_SECONDS } from '../render/fleet.ts';
import { DEFAULT_FLEET_PATH, loadFleetSpec, parseFleetSpec } from '../spec/load.ts';
import { EMPTY_NODE_SECONDS, type FleetSpec } from '../spec/schema.ts';
import { InputValidationError, readYamlFile, validate } from '../spec/validation.ts';

/** A simulator scenario (DESIGN §6): demand per service, capacity limits over time, start-up times. */

export const SEED_SCENARIO_PATH = fileURLToPath(new URL('../../scenarios/seed-inf2-shortage.yaml', import.meta.url));

const CosineSchema = z
  .object({
    minRpm: z.number().min(0),
    maxRpm: z.number().min(0),
    periodMinutes: z.number().positive(),
    phaseMinutes: z.number().default(0),
  })
  .strict()
  .refine((c) => c.maxRpm >= c.minRpm, { message: 'expected maxRpm >= minRpm', path: ['maxRpm'] });

const PointsSchema = z
  .array(z.tuple([z.number().min(0), z.number().min(0)]), { invalid_type_error: 'expected a list of [minute, rpm] pairs' })
  .min(1)
  .refine((ps) => ps.every((p, i) => i === 0 || p[0] > ps[i - 1]![0]), { message: 'expected minutes in increasing order' });

// One object with the three shapes as optional keys rather than a union: a mistake inside one
// shape is then reported at its own path (demand.sd21.cosine.maxRpm), not as "Invalid input".
const DEMAND_SHAPES = ['cosine', 'points', 'csv'] as const;
const DemandSchema = z
  .object({ cosine: CosineSchema.optional(), points: PointsSchema.optional(), csv: z.string().min(1).optional() })
  .strict()
  .superRefine((d, ctx) => {
    const given = DEMAND_SHAPES.filter((k) => d[k] !== undefined);
    if (given.length !== 1) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected exactly one of ${DEMAND_SHAPES.join(', ')}${given.length > 1 ? `, got ${given.join(' and ')}` : ''}` });
  });

const CapacityWindowSchema = z
  .object({
    family: z.string().min(1),
    fromMinute: z.number().min(0),
    toMinute: z.number().positive(),
    maxInstances: z.union([z.number().int().min(0), z.literal('hold')]),
  })
  .strict()
  .refine((w) => w.toMinute > w.fromMinute, { message: 'expected toMinute > fromMinute', path: ['toMinute'] });

export const ScenarioSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().optional(),
    durationMinutes: z.number().int().positive().max(60 * 24 * 31),
    stepSeconds: z
      .number()
      .int()
      .positive()
      .refine((s) => 60 % s === 0, { message: 'expected a divisor of 60 (1, 2, 3, 5, 10, 15, 20, 30, 60)' })
      .default(10),
    fleet: z.union([z.string().min(1), z.record(z.unknown())]).default('default'),
    demand: z.record(z.string(), DemandSchema).refine((d) => Object.keys(d).length > 0, { message: 'expected demand for at least one service' }),
    capacity: z.array(CapacityWindowSchema).default([]),
    startupSeconds: z.record(z.string(), z.number().int().positive().max(7200)).default({}),
    /** Seconds from a pod's creation until its node is up (Karpenter launch); part of start-up. */
    nodeLaunchSeconds: z.number().int().min(0).max(1800).default(90),
    /** Minutes simulated before t = 0 at the initial demand, not counted, so the fleet starts settled. */
    warmupMinutes: z.number().int().min(0).max(1440).default(60),
    seed: z.number().int().default(1),
    /** Seconds after a minute ends until CloudWatch returns its datapoints (CloudWatch is 1–3 minutes late). */
    metricDelaySeconds: z.number().int().min(0).max(900).default(120),
    /** Seconds an empty node lives until Karpenter has consolidated and terminated it (billed until then):
     *  the rendered NodePools' consolidateAfter plus about 90 s of disruption checks, drain and termination. */
    consolidationSeconds: z.number().int().min(0).max(3600).default(EMPTY_NODE_SECONDS),
    /** The target groups' health checks and the ALB's idle time-out, as the stack deploys them (infra/lib/cluster/ingress.ts). */
    alb: z
      .object({
        healthCheckIntervalSeconds: z.number().int().min(5).max(300).default(10),
        healthyThresholdCount: z.number().int().min(2).max(10).default(2),
        idleTimeoutSeconds: z.number().int().min(1).max(4000).default(120),
      })
      .strict()
      .default({}),
    /** KEDA's aws-cloudwatch trigger as rendered (render/fleet.ts): it reads the minute that ended metricEndTimeOffset seconds ago or more. */
    keda: z
      .object({ metricEndTimeOffsetSeconds: z.number().int().min(0).max(3600).default(KEDA_METRIC_END_TIME_OFFSET_SECONDS) })
      .strict()
      .default({}),
    /** The model server's admission and request time-out (model-servers/hwai_models/config.py defaults). */
    modelServer: z
      .object({
        maxQueue: z.number().int().min(1).max(100_000).default(256),
        /** A request that would wait longer than this for a slot is refused at once (503 and Retry-After). */
        maxWaitSeconds: z.number().positive().max(3600).default(2),
        requestTimeoutSeconds: z.number().positive().max(3600).default(60),
      })
      .strict()
      .default({}),
  })
  .strict();

export type ScenarioFile = z.infer<typeof ScenarioSchema>;
export type DemandFn = (minute: number) => number;

export interface Scenario {
  file: ScenarioFile;
  fleet: FleetSpec;
  demand: Record<string, DemandFn>;
  source: string;
}

export function loadScenario(path: string = SEED_SCENARIO_PATH): Scenario {
  return parseScenario(readYamlFile(path), path);
}

export function parseScenario(data: unknown, source: string): Scenario {
  const file = validate(ScenarioSchema, data, source);
  const baseDir = dirname(source);
  const fleet = typeof file.fleet === 'string'
    ? loadFleetSpec(file.fleet === 'default' ? DEFAULT_FLEET_PATH : resolvePath(baseDir, file.fleet))
    : parseFleetSpec(file.fleet, `${source} (fleet)`, baseDir);

  const problems: Array<{ path: string; message: string }> = [];
  for (const service of Object.keys(file.demand)) {
    if (!(service in fleet.services)) problems.push({ path: `demand.${service}`, message: `unknown service; expected one of: ${Object.keys(fleet.services).join(', ')}` });
  }
  const families = new Set(fleet.units.map((u) => u.family));
  file.capacity.forEach((w, i) => {
    if (!families.has(w.family as never)) problems.push({ path: `capacity[${i}].family`, message: `no unit of the fleet runs on "${w.family}"; expected one of: ${[...families].join(', ')}` });
    if (w.fromMinute >= file.durationMinutes) problems.push({ path: `capacity[${i}].fromMinute`, message: `starts at minute ${w.fromMinute}, after the run ends (durationMinutes ${file.durationMinutes})` });
  });
  for (const key of Object.keys(file.startupSeconds)) {
    if (key !== 'default' && !fleet.units.some((u) => u.name === key)) problems.push({ path: `startupSeconds.${key}`, message: 'expected "default" or a unit name of the fleet' });
  }
  if (problems.length > 0) throw new InputValidationError(source, problems);

  const demand: Record<string, DemandFn> = {};
  for (const [service, d] of Object.entries(file.demand)) demand[service] = demandFn(d, baseDir, `${source}: demand.${service}`);
  // The scenario's start-up times are the world's truth (World.startupOf); the fleet spec's stay
  // the policy's belief, as in production.
  return { file, fleet, demand, source };
}

function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

function demandFn(d: z.infer<typeof DemandSchema>, baseDir: string, where: string): DemandFn {
  if (d.cosine) {
    const { minRpm, maxRpm, periodMinutes, phaseMinutes } = d.cosine;
    return (t) => minRpm + ((maxRpm - minRpm) * (1 + Math.cos((2 * Math.PI * (t - phaseMinutes)) / periodMinutes))) / 2;
  }
  if (d.points) return piecewise(d.points);
  return piecewise(readCsv(resolvePath(baseDir, d.csv!), where));
}

/** Linear between points, flat before the first and after the last. */
export function piecewise(points: ReadonlyArray<readonly [number, number]>): DemandFn {
  return (t) => {
    if (t <= points[0]![0]) return points[0]![1];
    for (let i = 1; i < points.length; i++) {
      const [t1, v1] = points[i]!;
      if (t <= t1) {
        const [t0, v0] = points[i - 1]!;
        return v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
      }
    }
    return points[points.length - 1]![1];
  };
}

/** A CSV of `minute,rpm` rows (a header row is allowed). */
function readCsv(path: string, where: string): Array<[number, number]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputValidationError(where, [{ path: 'csv', message: `cannot read ${path}: ${(e as Error).message}` }]);
  }
  const rows: Array<[number, number]> = [];
  const problems: Array<{ path: string; message: string }> = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim() || (i === 0 && /[a-z]/i.test(line))) return;
    const [a, b] = line.split(',').map((x) => Number(x.trim()));
    if (!Number.isFinite(a) || !Number.isFinite(b) || b! < 0) problems.push({ path: `${path}:${i + 1}`, message: `expected "minute,rpm" with numbers, got "${line}"` });
    else if (rows.length > 0 && a! <= rows[rows.length - 1]![0]) problems.push({ path: `${path}:${i + 1}`, message: 'expected minutes in increasing order' });
    else rows.push([a!, b!]);
  });
  if (rows.length === 0 && problems.length === 0) problems.push({ path, message: 'expected at least one "minute,rpm" row' });
  if (problems.length > 0) throw new InputValidationError(where, problems);
  return rows;
}
