import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { stringify } from 'yaml';
import type { FleetSpec } from '../../../shared/src/spec/schema.ts';

/** Where the bundle's copy of the fleet spec lies in the Lambda (beside index.mjs). */
export const SPEC_FILE_IN_BUNDLE = '/var/task/fleet.yaml';
export const METRICS_NAMESPACE = 'hwai';

export interface ControlFunctionProps {
  /** The function's name (`hwai status` and `hwai override` find the override function by it). */
  functionName: string;
  /** The handler module (exports `handler`). */
  entry: string;
  /** The repository root: esbuild resolves packages from its node_modules and package-lock.json. */
  projectRoot: string;
  /** Powertools' service name: the `service` dimension of the function's EMF metrics. */
  serviceName: string;
  spec: FleetSpec;
  environment: Record<string, string>;
  statements: iam.PolicyStatement[];
  timeout: Duration;
  memorySize: number;
  reservedConcurrentExecutions?: number;
}

/**
 * A control-plane Lambda: bundled locally by esbuild (no Docker), Node 24 on ARM64, its own log
 * group with a retention, a role with exactly the given statements, and the fleet spec beside
 * the bundle. The spec is copied with its calibrations applied, so the function needs no other file.
 */
export class ControlFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ControlFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `hwai ${props.serviceName}` });
    const policy = new iam.Policy(this, 'Policy', {
      roles: [this.role],
      statements: [new iam.PolicyStatement({ sid: 'WriteLogs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [this.logGroup.logGroupArn] }), ...props.statements],
    });
    const specFile = resolvedSpecFile(props.spec);
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      functionName: props.functionName,
      entry: props.entry,
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      role: this.role,
      logGroup: this.logGroup,
      timeout: props.timeout,
      memorySize: props.memorySize,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: {
        HWAI_SPEC_FILE: SPEC_FILE_IN_BUNDLE,
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // Stack traces map to the sources; the sources themselves stay out of the zip.
        esbuildArgs: { '--sources-content': 'false' },
        // Bundle the AWS SDK too: the versions the tests ran, not the runtime's.
        externalModules: [],
        banner: "import { createRequire as hwaiCreateRequire } from 'node:module'; const require = hwaiCreateRequire(import.meta.url);",
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir: string, outputDir: string) => [`cp "${specFile}" "${outputDir}/fleet.yaml"`],
        },
      },
    });
    // The role's statements exist before the function, so its first invocation has them.
    this.function.node.addDependency(policy);
  }
}

/** The spec as the stack read it (calibrations applied), in a file named by its content. */
function resolvedSpecFile(spec: FleetSpec): string {
  const text = `# The fleet spec this function was deployed with (calibrations applied).\n${stringify({ ...spec, calibrationFiles: [] }, { lineWidth: 0, aliasDuplicateObjects: false })}`;
  const dir = join(tmpdir(), 'hwai-cdk-spec');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `fleet-${createHash('sha256').update(text).digest('hex').slice(0, 16)}.yaml`);
  writeFileSync(file, text);
  return file;
}
