import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The package's own name, as its users import it (examples and documentation snippets).
    alias: {
      'zapi-presence-eventbridge/testing': fileURLToPath(new URL('./lib/testing.ts', import.meta.url)),
      'zapi-presence-eventbridge': fileURLToPath(new URL('./lib/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // Unit-test Apps skip CloudFormation's built-in template validator; the real synth test keeps it.
    env: { CDK_VALIDATION: 'false', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    // The SDK's Node 20 notice, once per run instead of once per test file.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
    restoreMocks: true,
  },
});
