/**
 * In every test file (vitest `setupFiles`): a warning printed while a test runs fails that test, so
 * `npm test` stays free of warnings and a new one is noticed where it starts. Warnings are Node's process
 * warnings (`(node:…) SomeWarning: …`, including the AWS SDK's Node version notice and DeprecationWarning)
 * and jsii's deprecation notices from aws-cdk-lib (`[WARNING] aws-cdk-lib.… is deprecated`). They are
 * still printed; a test that expects one spies on `process.emitWarning` or `console.warn` instead.
 */
import { afterAll, afterEach } from 'vitest';

interface Collector {
  readonly seen: string[];
}

const KEY = Symbol.for('zapi-presence.test.warnings');
const holder = globalThis as typeof globalThis & { [KEY]?: Collector };

// Once per process, however many test files share it.
if (holder[KEY] === undefined) {
  const collector: Collector = { seen: [] };
  holder[KEY] = collector;
  process.on('warning', (warning) => {
    collector.seen.push(`${warning.name}: ${warning.message}`);
  });
  const consoleWarn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (args[0] === '[WARNING]') collector.seen.push(args.map(String).join(' '));
    consoleWarn.apply(console, args);
  };
}
const { seen } = holder[KEY];

function check(when: string): void {
  if (seen.length === 0) return;
  const printed = seen.splice(0);
  throw new Error(
    `${when} printed ${printed.length === 1 ? 'a warning' : `${printed.length} warnings`} (npm test must print none; fix the cause, or spy on it in a test that expects it):\n${printed.map((w) => `  - ${w}`).join('\n')}`,
  );
}

afterEach(() => check('this test'));
afterAll(() => check('this file (after its last test)'));
