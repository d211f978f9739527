import { z } from 'zod';

/**
 * The fleet spec: which services exist, the deployment units that serve them, and how the
 * controller decides. One YAML file; every number an operator can calibrate lives here.
 */

const nameRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsName = z.string().regex(nameRe, 'expected a lowercase DNS-1123 name (a-z, 0-9, "-")').max(63);

export const ACCELERATOR_FAMILIES = ['inf2', 'trn1', 'g5', 'g6', 'g6e', 'p4d', 'p5', 'cpu'] as const;
export const POLICY_KINDS = ['static-cost', 'static-capacity', 'step', 'step-headroom', 'optimizer'] as const;

/** The rendered NodePools' consolidateAfter (render/fleet.ts): an empty node goes after this long. */
export const KARPENTER_CONSOLIDATE_AFTER_SECONDS = 300;
/** How long an empty node lives, billed: consolidateAfter plus about 90 s of disruption checks, drain and termination. */
export const EMPTY_NODE_SECONDS = KARPENTER_CONSOLIDATE_AFTER_SECONDS + 90;

export const ListenerRuleRefSchema = z
  .object({
    /** ARN of the ALB listener rule that forwards this service; absent for the listener's default action. */
    ruleArn: z.string().startsWith('arn:').optional(),
    listenerArn: z.string().startsWith('arn:').optional(),
    /** CloudFormation export or SSM name resolved at deploy time, for specs written before the stack exists. */
    lookup: z.string().optional(),
  })
  .strict()
  .refine((r) => r.ruleArn ?? r.listenerArn ?? r.lookup, {
    message: 'expected one of ruleArn, listenerArn or lookup',
  });

export const ServiceSchema = z
  .object({
    sloSeconds: z.number().positive().max(120).default(0.9),
    listenerRule: ListenerRuleRefSchema.optional(),
    metricNamespace: z.string().min(1).default('hw-agnostic-infer'),
  })
  .strict();

export const UnitSchema = z
  .object({
    name: dnsName,
    service: dnsName,
    model: z.string().min(1),
    family: z.enum(ACCELERATOR_FAMILIES),
    instanceType: z.string().regex(/^[a-z0-9]+\.[a-z0-9]+$/, 'expected an EC2 instance type such as inf2.xlarge'),
    capacityType: z.enum(['on-demand', 'spot', 'reserved']).default('on-demand'),
    framework: z.enum(['neuron', 'triton', 'cuda', 'cpu']),
    pricePerHour: z.number().positive(),
    /** Per-pod requests per minute at the breaking point (p99 crosses the service's SLO). */
    maxRpm: z.number().positive(),
    /** Latency in seconds measured at the breaking point (the seed's Table 1 column). */
    latencySeconds: z.number().positive(),
    startupSeconds: z.number().int().positive().max(3600).default(600),
    /** The operator's hard minimum; hwai raises floors above it as its policy needs (KEDA's default is 0). */
    minReplicas: z.number().int().min(0).default(0),
    maxReplicas: z.number().int().positive().default(40),
    /** Option 1's hand-picked forward weight (0–999); absent means derive it from the cost index. */
    costWeight: z.number().int().min(0).max(999).optional(),
    /** True while maxRpm and latencySeconds are estimates awaiting a calibration run. */
    estimate: z.boolean().default(false),
    targetGroup: z
      .object({ arn: z.string().startsWith('arn:').optional(), name: z.string().min(1).max(32).optional() })
      .strict()
      .optional(),
    scaledObject: z.object({ namespace: dnsName, name: dnsName }).strict().optional(),
  })
  .strict()
  .refine((u) => u.minReplicas <= u.maxReplicas, {
    message: 'expected minReplicas <= maxReplicas',
    path: ['minReplicas'],
  });

export const PolicySchema = z
  .object({
    kind: z.enum(POLICY_KINDS).default('optimizer'),
    tickSeconds: z.number().int().min(10).max(3600).default(60),
    /** Option 1's weights: the seed's hand-picked `costWeight`s, or derived from the cost index. */
    staticCostWeights: z.enum(['seed', 'cost-index']).default('seed'),
    /** step: bad ticks in a row before failing over to the capacity split. */
    failoverAfterTicks: z.number().int().min(1).max(60).default(2),
    /** Minimum time between two automatic mode changes. */
    holdSeconds: z.number().int().min(0).max(86_400).default(900),
    /** A shortage signal (Karpenter InsufficientCapacity) keeps a pool short this long. */
    shortageSignalSeconds: z.number().int().min(0).default(180),
    /** Pods Pending longer than this count as a capacity shortage. */
    pendingGraceSeconds: z.number().int().min(0).default(240),
    /** Pods raised above the ready count to prove a short pool is back. */
    probePods: z.number().int().min(1).max(10).default(1),
    /** Seconds between probes of a pool that is still short. */
    probeIntervalSeconds: z.number().int().min(60).default(600),
    /**
     * How long Karpenter keeps a node its pod left (the NodePools' consolidateAfter, 5 min, plus
     * drain and termination). A probe pod could land on such a node and prove nothing, so a short
     * pool is probed only this long after its pods last went down.
     */
    emptyNodeSeconds: z.number().int().min(0).max(3600).default(EMPTY_NODE_SECONDS),
    /** optimizer: per-pod load as a fraction of maxRpm that routing aims for. */
    targetUtilization: z.number().gt(0).max(1).default(0.9),
    /** optimizer: the seed objective's λ, dollars of cost worth one request per minute of throughput. */
    lambda: z.number().min(0).default(1),
    /** Floors fall at most this fraction per tick (fast up, slow down). */
    scaleDownPerTick: z.number().gt(0).max(1).default(0.1),
    /**
     * optimizer: the most of a service's demand one accelerator family is planned and routed to
     * while others can take the rest (1: no limit). A hedge against losing the cheapest pool's
     * running nodes at once: what it does not carry is already served elsewhere, at a price.
     */
    maxFamilyShare: z.number().gt(0).max(1).default(1),
  })
  .strict();

export const FleetSpecSchema = z
  .object({
    apiVersion: z.literal('hwai/v1'),
    kind: z.literal('Fleet'),
    metadata: z.object({ name: dnsName, description: z.string().optional() }).strict(),
    services: z.record(dnsName, ServiceSchema).refine((s) => Object.keys(s).length > 0, {
      message: 'expected at least one service',
    }),
    units: z.array(UnitSchema).min(1),
    policy: PolicySchema.default({}),
    /** Calibration files written by the model servers' calibrator; their numbers override the units'. */
    calibrationFiles: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .superRefine((spec, ctx) => {
    for (const p of crossReferenceProblems(spec)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: p.path, message: p.message });
  });

/**
 * The fleet's cross-references: unique unit names, every unit's service declared, every service
 * with 1–5 units. Reads its input leniently, so the same checks also run on a spec that failed
 * its schema (`hwai spec check` then reports both kinds at once, not one after the other).
 */
export function crossReferenceProblems(raw: unknown): Array<{ path: Array<string | number>; message: string }> {
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  const record = (v: unknown): Record<string, unknown> | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
  const spec = record(raw);
  const services = record(spec?.['services']);
  const units = Array.isArray(spec?.['units']) ? (spec['units'] as unknown[]).map(record) : [];
  const seen = new Map<string, number>();
  units.forEach((u, i) => {
    const name = u?.['name'];
    const service = u?.['service'];
    if (typeof name === 'string') {
      if (seen.has(name)) problems.push({ path: ['units', i, 'name'], message: `duplicate unit name "${name}" (also units[${seen.get(name)}])` });
      else seen.set(name, i);
    }
    if (services && typeof service === 'string' && !(service in services)) {
      problems.push({ path: ['units', i, 'service'], message: `unknown service "${service}"; expected one of: ${Object.keys(services).join(', ')}` });
    }
  });
  for (const service of Object.keys(services ?? {})) {
    const n = units.filter((u) => u?.['service'] === service).length;
    if (n === 0) problems.push({ path: ['services', service], message: 'expected at least one unit for this service' });
    if (n > 5) problems.push({ path: ['services', service], message: `an ALB forward action takes at most 5 target groups; this service has ${n} units` });
  }
  return problems;
}

export const CalibrationSchema = z
  .object({
    kind: z.literal('hwai/calibration'),
    units: z.record(
      dnsName,
      z
        .object({
          maxRpm: z.number().positive(),
          latencySeconds: z.number().positive(),
          sloSeconds: z.number().positive().optional(),
          measuredAt: z.string().optional(),
          method: z.string().optional(),
        })
        .passthrough(),
    ),
  })
  .strict();

export type FleetSpec = z.infer<typeof FleetSpecSchema>;
export type FleetSpecInput = z.input<typeof FleetSpecSchema>;
export type Unit = z.infer<typeof UnitSchema>;
export type Service = z.infer<typeof ServiceSchema>;
export type PolicySettings = z.infer<typeof PolicySchema>;
export type PolicyKind = (typeof POLICY_KINDS)[number];
export type Calibration = z.infer<typeof CalibrationSchema>;
