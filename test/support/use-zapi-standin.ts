/**
 * The Z-API stand-in for one test file: started before its tests, closed after them, and back to a clean
 * slate before each test (no instances, no requests, no latency, no rate limit or storm, the given trickle pace).
 * Its own module, so the benches can import the stand-in without vitest.
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startZapiStandIn, type ZapiStandIn } from './zapi-standin.ts';

export interface ZapiStandInDefaults {
  /** How fast a trickling answer drips, set before each test. @default 100 */
  readonly trickleEveryMs?: number;
}

/** Registers the hooks; returns the stand-in (usable from the first test on). */
export function useZapiStandIn(defaults: ZapiStandInDefaults = {}): ZapiStandIn {
  let standIn: ZapiStandIn | undefined;
  const current = (): ZapiStandIn => {
    if (standIn === undefined)
      throw new Error('the Z-API stand-in starts in beforeAll: use it inside a test or hook');
    return standIn;
  };
  beforeAll(async () => {
    standIn = await startZapiStandIn();
  });
  afterAll(async () => {
    await standIn?.close();
  });
  beforeEach(() => {
    const zapi = current();
    zapi.instances.clear();
    zapi.reset();
    zapi.latencyMs = 0;
    zapi.rateLimit = undefined;
    zapi.stormUntil = undefined;
    zapi.stormRetryAfter = '1';
    zapi.trickleEveryMs = defaults.trickleEveryMs ?? 100;
  });
  return new Proxy({} as ZapiStandIn, {
    get: (_, key) => Reflect.get(current(), key),
    set: (_, key, value) => Reflect.set(current(), key, value),
  });
}
