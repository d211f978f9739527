// One in-process synth of the hwai app per test file: esbuild bundles the two functions, the
// model-server images are only hashed (no Docker), nothing is looked up (no account, no AZs).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp, REPO_ROOT, type HwaiApp } from '../../infra/lib/app.ts';
import { parseDeployContext } from '../../infra/lib/context.ts';

export const INFRA_DIR = join(REPO_ROOT, 'infra');

export function synthApp(context: Record<string, unknown> = {}): { hwai: HwaiApp; outdir: string } {
  const outdir = mkdtempSync(join(tmpdir(), 'hwai-synth-'));
  const hwai = buildApp({ app: new App({ outdir }), context: parseDeployContext(context, INFRA_DIR) });
  hwai.synth();
  return { hwai, outdir };
}
