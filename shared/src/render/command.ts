import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { DEFAULT_FLEET_PATH, loadFleetSpec } from '../spec/load.ts';
import { DEFAULT_RENDER_OPTIONS, renderFleet } from './fleet.ts';
import { manifestFiles, readRbacManifest, writeManifestFiles, type ManifestFile } from './files.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The files `hwai render` writes for a spec file (the staleness test calls this too). */
export function renderSpecFile(specPath: string): ManifestFile[] {
  const path = resolve(specPath);
  const label = relative(REPO_ROOT, path).split('\\').join('/');
  const spec = loadFleetSpec(path);
  return manifestFiles(renderFleet(spec, DEFAULT_RENDER_OPTIONS, path), readRbacManifest().text, label);
}

/** `hwai render --spec FILE --out DIR`: the fleet's Kubernetes manifests, as `cdk deploy` applies them. */
export function registerRenderCommand(program: Command, io: { out: NodeJS.WritableStream }): void {
  program
    .command('render')
    .description('render the Kubernetes manifests of a fleet spec (node pools, units, KEDA, RBAC)')
    .option('--spec <file>', 'fleet spec YAML', DEFAULT_FLEET_PATH)
    .option('--out <dir>', 'folder to write (replaced as a whole)', 'manifests')
    .action((opts: { spec: string; out: string }) => {
      const files = renderSpecFile(opts.spec);
      writeManifestFiles(resolve(opts.out), files);
      io.out.write(`${opts.out}: ${files.length} files from ${opts.spec} (target groups by name, images and cluster names are placeholders until \`cdk deploy\`)\n`);
    });
}
