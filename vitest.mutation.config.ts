/** The unit tests Stryker runs per mutant: the function tests, without the slow synth-and-bundle test. */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/functions/**/*.test.ts'],
    // A mutant is killed by an assertion, not by a warning it makes Node print.
    setupFiles: [],
    // The onSubscribe test reads the shipped bundle's syntax (what APPSYNC_JS runs), which Stryker's
    // instrumentation changes; agent-access.test.ts tests the same rule as plain functions.
    exclude: [
      'test/functions/local/local-server.test.ts',
      'test/functions/live-feed/subscribe-handler.test.ts',
    ],
  },
});
