import { resolve } from 'node:path';
import { z } from 'zod';
import { validate } from '../../shared/src/spec/validation.ts';

/**
 * What `cdk deploy -c key=value` may set. Validated once, before any construct exists, so a bad
 * value is refused naming the context key (`-c` values arrive as strings).
 */
export const DeployContextSchema = z
  .object({
    /** The fleet spec: everything the cluster runs and the controller decides comes from it. */
    spec: z.string().min(1).default('../shared/fleets/default.yaml'),
    /** The EKS cluster's name; Karpenter discovers its subnets by it. */
    clusterName: z.string().regex(/^[a-zA-Z][-a-zA-Z0-9]{0,99}$/, 'expected an EKS cluster name (letters, digits, "-")').default('hwai'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as us-west-2').optional(),
    /** Alerts (mode changes, overrides, actuation failures, alarms) by e-mail. */
    alertEmail: z.string().email().optional(),
    /** An IAM role or user ARN given cluster-admin through an EKS access entry. */
    adminPrincipalArn: z.string().regex(/^arn:aws[-a-z]*:iam::\d{12}:(role|user)\/.+$/, 'expected an IAM role or user ARN').optional(),
    /** Who may reach the ALB. */
    ingressCidr: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'expected an IPv4 CIDR').default('0.0.0.0/0'),
    /** NAT gateways: 1 keeps the fixed cost down; one per AZ survives the loss of an AZ. */
    natGateways: z.coerce.number().int().min(1).max(3).default(1),
    /** Services per EventBridge schedule: each schedule ticks its shard of the fleet. */
    servicesPerSchedule: z.coerce.number().int().min(1).max(50).default(3),
  })
  .strict();

export type DeployContext = z.infer<typeof DeployContextSchema>;

/** `baseDir` resolves a relative spec path (the folder of cdk.json). */
export function parseDeployContext(raw: Record<string, unknown>, baseDir: string): DeployContext {
  const known = Object.fromEntries(Object.entries(raw).filter(([k, v]) => k in DeployContextSchema.shape && v !== undefined && v !== ''));
  const context = validate(DeployContextSchema, known, 'cdk context (-c key=value)');
  return { ...context, spec: resolve(baseDir, context.spec) };
}
