// Mutation testing: `npm run mutation` (about half an hour on 2 cores; not run in CI).
// Stryker 9 (10 needs Node 22; this project's floor is 20.19).
// Scores per file are recorded in docs/mutation-testing.md. Survivors that are truly equivalent are
// disabled in the source with a `// Stryker disable next-line <mutator>: <reason>` comment next to them.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  coverageAnalysis: 'perTest',
  mutate: [
    'functions/presence-webhook/receive.ts',
    'functions/presence-webhook/publisher.ts',
    'functions/presence-webhook/secret.ts',
    'functions/shared/contract/presence-contract.ts',
    'functions/shared/aws/deadline.ts',
    'functions/shared/secrets/webhook-secret.ts',
    'functions/shared/secrets/master-secret.ts',
    'functions/shared/aws/ssm.ts',
    'functions/fleet/zapi.ts',
    'functions/fleet/reconcile.ts',
    'functions/fleet/report.ts',
    'functions/fleet/runtime.ts',
    'functions/fleet/url.ts',
    'functions/fleet/rate-limit.ts',
    'functions/fleet/sweep-trigger.ts',
    'functions/presence-store/presence-state.ts',
    'functions/presence-store/store.ts',
    'functions/presence-store/process.ts',
    'functions/canary/probe.ts',
    'functions/canary/arrival.ts',
    'functions/shared/access/agent-access.ts',
    'functions/shared/contract/live-feed-contract.ts',
    'functions/live-feed/message.ts',
    'functions/live-feed/publisher.ts',
    'functions/presence-store/snapshot.ts',
  ],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // `break` applies to all files together here; `npm run mutation` then runs bin/mutation-per-file.ts, which
  // fails when any one file is under it (docs/mutation-testing.md records the scores).
  thresholds: { high: 90, low: 85, break: 85 },
  concurrency: 2,
  timeoutMS: 20_000,
  tempDirName: '.stryker-tmp',
  // TypeScript 7 has no JavaScript API, which Stryker's tsconfig rewriting step calls: pointing it at no
  // file skips that step (vitest transpiles on its own).
  tsconfigFile: 'stryker-has-no-tsconfig.json',
  cleanTempDir: 'always',
};
