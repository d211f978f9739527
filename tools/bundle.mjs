#!/usr/bin/env node
// Bundles each Lambda function (functions/<name>/handler.ts) into out/bundle/<name>/index.mjs
// for the nodejs24.x runtime and prints the size of each.
//
// The AWS SDK v3 is bundled, not left to the runtime's copy: the runtime's SDK version moves
// under us between deploys, while the bundle runs the exact versions the tests ran (pinned in
// package-lock.json), and esbuild keeps only the commands we import. Pass --external-sdk to see
// the size with @aws-sdk/* left to the runtime.
//
//   node tools/bundle.mjs [--external-sdk] [--metafile] [--max-bytes N] [--strict]
// --strict exits 1 when a bundle is over the target (otherwise it is only said).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FUNCTIONS = ['controller', 'override'];
/** The target: at most 1.5 MB per function. */
const DEFAULT_MAX_BYTES = 1.5 * 1024 * 1024;

const args = process.argv.slice(2);
const externalSdk = args.includes('--external-sdk');
const writeMetafile = args.includes('--metafile');
const strict = args.includes('--strict');
const maxIndex = args.indexOf('--max-bytes');
const maxBytes = maxIndex >= 0 ? Number(args[maxIndex + 1]) : DEFAULT_MAX_BYTES;

const results = [];
for (const name of FUNCTIONS) {
  const outfile = join(root, 'out', 'bundle', name, 'index.mjs');
  mkdirSync(dirname(outfile), { recursive: true });
  const result = await build({
    entryPoints: [join(root, 'functions', name, 'handler.ts')],
    outfile,
    bundle: true,
    minify: true,
    treeShaking: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    // Prefer a package's ES module build, which esbuild can tree-shake.
    mainFields: ['module', 'main'],
    // Node's built-ins are the runtime's; everything else ships in the bundle.
    external: externalSdk ? ['@aws-sdk/*', '@smithy/*'] : [],
    // CommonJS dependencies inside an ES module bundle still call require().
    banner: { js: "import { createRequire as __hwaiRequire } from 'node:module'; const require = __hwaiRequire(import.meta.url);" },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((o) => o.endsWith('index.mjs'))].bytes;
  if (writeMetafile) writeFileSync(join(dirname(outfile), 'meta.json'), JSON.stringify(result.metafile));
  // Lambda limits and bills the zipped package; gzip is within a few percent of zip.
  const zipped = gzipSync(readFileSync(outfile), { level: 9 }).length;
  results.push({ name, bytes, zipped, outfile });
}

const mb = (b) => `${(b / 1024 / 1024).toFixed(2)} MB`;
let over = false;
for (const r of results) {
  const flag = r.bytes > maxBytes ? `  OVER the ${mb(maxBytes)} target` : '';
  over ||= r.bytes > maxBytes;
  process.stdout.write(`${r.name.padEnd(12)} ${mb(r.bytes).padStart(9)}  (${r.bytes.toLocaleString('en-US')} bytes; ${mb(r.zipped)} gzipped)  ${r.outfile.slice(root.length + 1)}${flag}\n`);
}
process.stdout.write(`AWS SDK: ${externalSdk ? 'left to the nodejs24.x runtime' : 'bundled (pinned versions)'}\n`);
process.exitCode = over && strict ? 1 : 0;
