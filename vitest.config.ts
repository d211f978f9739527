import { defineConfig } from 'vitest/config';

// `unit` is pure (no I/O, no servers; `npm run bench` runs its benchmarks); `integration` runs
// against the harness of real parts (moto, kube-apiserver + etcd) that test/harness/global-setup.ts
// starts and stops; `infra` synthesizes the CDK app; `e2e` opens the simulator's report in headless Chromium.
export default defineConfig({
  test: {
    // Integration files share one harness (moto, apiserver): run files one after another.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          benchmark: { include: ['test/bench/**/*.bench.ts'] },
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          setupFiles: ['test/harness/per-file.ts'],
          testTimeout: 120_000,
          hookTimeout: 600_000,
        },
      },
      {
        // The CDK app: synth (esbuild bundles, no Docker), template assertions, cdk-nag, cfn-lint.
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120000,
        },
      },
    ],
  },
});
