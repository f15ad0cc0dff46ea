import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['crds/**/*.test.ts', 'sidecar/**/*.test.ts', 'operator/**/*.test.ts', 'test/**/*.test.ts'],
    // One PostgreSQL and one MariaDB for the whole run, shared by every test file.
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The machine has two cores, and the servers under test need some of them.
    maxWorkers: 2,
    fileParallelism: true,
    // The JSON report lets .ci/run print a plain 'N passed, N failed' line.
    reporters: ['default', 'json'],
    outputFile: { json: '.cache/vitest-results.json' },
  },
});
