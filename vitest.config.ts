import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Unit-test Apps skip CloudFormation's built-in template validator; the real synth test keeps it.
    env: { CDK_VALIDATION: 'false' },
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
    restoreMocks: true,
  },
});
