import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The package's own name, as its users import it (examples and documentation snippets).
    alias: {
      'zapi-presence-eventbridge/testing': fileURLToPath(new URL('./lib/testing.ts', import.meta.url)),
      'zapi-presence-eventbridge/client': fileURLToPath(
        new URL('./functions/live-feed/client.ts', import.meta.url),
      ),
      'zapi-presence-eventbridge': fileURLToPath(new URL('./lib/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // Unit-test Apps skip CloudFormation's built-in template validator; the real synth test keeps it. The
    // AWS SDK's notice that its 2027 releases need Node 22 is switched off the way the SDK documents (this
    // project supports Node 20.19+; the README says so).
    env: { CDK_VALIDATION: 'false', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    // `npm test` prints no warnings: one printed during a test fails it.
    setupFiles: ['test/support/no-warnings.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
    restoreMocks: true,
  },
});
