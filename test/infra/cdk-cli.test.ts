// `cdk synth` through the real CLI as the README runs it, offline: no Docker on the PATH, no
// notices or telemetry, no context lookups; then cfn-lint (pinned, tools/infra) on every template.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/lib/app.ts';
import { INFRA_DIR } from './synth.ts';

const CFN_LINT = join(REPO_ROOT, 'tools/infra/.venv/bin/cfn-lint');
let outdir: string;
let synth: ReturnType<typeof spawnSync>;

beforeAll(() => {
  // cfn-lint, pinned with hashes, into tools/infra/.venv (seconds when already there).
  const tools = spawnSync('make', ['-s', 'infra-tools'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 240_000 });
  if (tools.status !== 0) throw new Error(`make infra-tools failed:\n${tools.stdout}\n${tools.stderr}`);
  outdir = mkdtempSync(join(tmpdir(), 'hwai-cdk-cli-'));
  // Only node, the project's binaries and the base system: a synth that wanted Docker would fail.
  const path = [join(REPO_ROOT, 'node_modules/.bin'), dirname(process.execPath), '/usr/bin', '/bin'].join(':');
  synth = spawnSync(join(REPO_ROOT, 'node_modules/.bin/cdk'), ['synth', '--quiet', '--no-notices', '--no-version-reporting', '--output', outdir, '-c', 'alertEmail=oncall@example.com'], {
    cwd: INFRA_DIR,
    env: { PATH: path, HOME: process.env.HOME ?? tmpdir(), CDK_DISABLE_CLI_TELEMETRY: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
    encoding: 'utf8',
    timeout: 240_000,
  });
});

describe('npx cdk synth (the CLI)', () => {
  it('synthesizes both stacks offline, without Docker and without context lookups', () => {
    expect(synth.status, `${synth.stdout}\n${synth.stderr}`).toBe(0);
    expect(readdirSync(outdir).filter((f) => f.endsWith('.template.json')).sort()).toEqual(['HwaiCluster.template.json', 'HwaiControl.template.json']);
    expect(existsSync(join(INFRA_DIR, 'cdk.context.json'))).toBe(false);
  });

  it('passes cfn-lint with no error on every template', () => {
    expect(existsSync(CFN_LINT)).toBe(true);
    const templates = readdirSync(outdir).filter((f) => f.endsWith('.template.json')).map((f) => join(outdir, f));
    const lint = spawnSync(CFN_LINT, ['--format', 'parseable', ...templates], { encoding: 'utf8', timeout: 120_000 });
    const errors = lint.stdout.split('\n').filter((line) => /:E\d{4}:/.test(line));
    expect(errors).toEqual([]);
    // cfn-lint's exit code is a bit mask: 2 = errors (4 = warnings, 8 = informational).
    expect(lint.status! & 2, lint.stderr).toBe(0);
  });
});
