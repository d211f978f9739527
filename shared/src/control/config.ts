import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DEFAULT_FLEET_PATH } from '../spec/load.ts';
import { POLICY_KINDS } from '../spec/schema.ts';
import { InputValidationError, formatPath, type InputProblem } from '../spec/validation.ts';

/**
 * The Lambda functions' configuration, read once from the environment at cold start. A bad or
 * missing variable fails the cold start with an error that names the variable, so a deploy
 * mistake shows on the first invoke instead of as a wrong decision later.
 */

const nonEmpty = z.string().trim().min(1, 'required: expected a non-empty value');
const arn = (service: string) => nonEmpty.regex(new RegExp(`^arn:aws[a-z-]*:${service}:`), `expected an ${service} ARN (arn:aws:${service}:…)`);
const bool = z
  .enum(['true', 'false'], { errorMap: () => ({ message: 'expected "true" or "false"' }) })
  .default('false')
  .transform((v) => v === 'true');
const url = nonEmpty.url('expected a URL');

/**
 * The spec beside the bundle (the stack copies it next to index.mjs); run from the repository
 * (`hwai invoke`, `hwai plan`) there is none beside this file, and the default fleet is used.
 */
function defaultSpecFile(): string {
  const beside = join(dirname(fileURLToPath(import.meta.url)), 'fleet.yaml');
  return existsSync(beside) || !existsSync(DEFAULT_FLEET_PATH) ? beside : DEFAULT_FLEET_PATH;
}

const common = {
  HWAI_SPEC_FILE: nonEmpty.optional(),
  HWAI_STATE_TABLE: nonEmpty.regex(/^[a-zA-Z0-9_.-]{3,255}$/, 'expected a DynamoDB table name (3–255 of a-z A-Z 0-9 _ . -)'),
  HWAI_ALERT_TOPIC_ARN: arn('sns'),
  HWAI_AWS_ENDPOINT: url.optional(),
  HWAI_DRY_RUN: bool,
};

export const OverrideEnvSchema = z.object(common);

export const ControllerEnvSchema = z.object({
  ...common,
  HWAI_LISTENER_ARN: arn('elasticloadbalancing').optional(),
  HWAI_CLUSTER_NAME: nonEmpty.optional(),
  HWAI_CLUSTER_ENDPOINT: nonEmpty.url('expected the cluster endpoint URL (https://…)').optional(),
  HWAI_CLUSTER_CA: nonEmpty.regex(/^[A-Za-z0-9+/=\s]+$/, 'expected the base64 PEM of the cluster CA').optional(),
  /** Local runs only (hwai invoke/plan against a harness or a kind cluster): a kubeconfig file. */
  KUBECONFIG: nonEmpty.optional(),
  HWAI_POLICY: z.enum(POLICY_KINDS).optional(),
});

const CLUSTER = ['HWAI_CLUSTER_NAME', 'HWAI_CLUSTER_ENDPOINT', 'HWAI_CLUSTER_CA'] as const;

/**
 * In Lambda the cluster comes from the three HWAI_CLUSTER_* variables together; a local run may
 * name a kubeconfig instead. Checked beside the schema so one cold start reports every problem.
 */
function clusterProblems(env: Record<string, string>): InputProblem[] {
  const set = CLUSTER.filter((k) => env[k] !== undefined);
  if (set.length === 0 && env.KUBECONFIG === undefined) return CLUSTER.map((k) => ({ path: k, message: 'required: the cluster to control (or KUBECONFIG for a local run)' }));
  if (set.length > 0 && set.length < CLUSTER.length) return CLUSTER.filter((k) => env[k] === undefined).map((k) => ({ path: k, message: `required with ${set.join(', ')}` }));
  return [];
}

export interface CommonConfig {
  specFile: string;
  stateTable: string;
  alertTopicArn: string;
  /** An emulator's URL (moto); unset in production. */
  awsEndpoint?: string;
  dryRun: boolean;
}

export type ClusterAccess = { kind: 'eks'; name: string; endpoint: string; certificateAuthorityData: string } | { kind: 'kubeconfig'; path: string };

export interface ControllerConfig extends CommonConfig {
  listenerArn?: string;
  cluster: ClusterAccess;
  policy?: (typeof POLICY_KINDS)[number];
}

export type OverrideConfig = CommonConfig;

function parseEnv<S extends z.ZodTypeAny>(schema: S, env: NodeJS.ProcessEnv, source: string, more: (env: Record<string, string>) => InputProblem[] = () => []): z.infer<S> {
  // Empty strings are how CloudFormation writes "unset": treat them as absent.
  const present = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  const result = schema.safeParse(present);
  const problems = [
    ...(result.success ? [] : result.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message === 'Required' ? 'required: the variable is not set' : i.message }))),
    ...more(present),
  ];
  if (problems.length > 0) throw new InputValidationError(source, problems);
  return result.data;
}

function commonConfig(env: z.infer<typeof OverrideEnvSchema>): CommonConfig {
  return {
    specFile: env.HWAI_SPEC_FILE ?? defaultSpecFile(),
    stateTable: env.HWAI_STATE_TABLE,
    alertTopicArn: env.HWAI_ALERT_TOPIC_ARN,
    ...(env.HWAI_AWS_ENDPOINT ? { awsEndpoint: env.HWAI_AWS_ENDPOINT } : {}),
    dryRun: env.HWAI_DRY_RUN,
  };
}

export function controllerConfig(env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const e = parseEnv(ControllerEnvSchema, env, 'controller environment', clusterProblems);
  const cluster: ClusterAccess = e.HWAI_CLUSTER_ENDPOINT
    ? { kind: 'eks', name: e.HWAI_CLUSTER_NAME!, endpoint: e.HWAI_CLUSTER_ENDPOINT, certificateAuthorityData: e.HWAI_CLUSTER_CA!.replace(/\s/g, '') }
    : { kind: 'kubeconfig', path: e.KUBECONFIG! };
  return {
    ...commonConfig(e),
    ...(e.HWAI_LISTENER_ARN ? { listenerArn: e.HWAI_LISTENER_ARN } : {}),
    cluster,
    ...(e.HWAI_POLICY ? { policy: e.HWAI_POLICY } : {}),
  };
}

export function overrideConfig(env: NodeJS.ProcessEnv = process.env): OverrideConfig {
  return commonConfig(parseEnv(OverrideEnvSchema, env, 'override environment'));
}
