// `cdk synth|deploy` (from infra/): the hwai stacks for the fleet spec in the `spec` context.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app.ts';
import { DeployContextSchema, parseDeployContext } from '../lib/context.ts';

const infraDir = dirname(dirname(fileURLToPath(import.meta.url)));
const app = new App();
const raw = Object.fromEntries(Object.keys(DeployContextSchema.shape).map((k) => [k, app.node.tryGetContext(k)]));
buildApp({ app, context: parseDeployContext(raw, infraDir) }).synth();
