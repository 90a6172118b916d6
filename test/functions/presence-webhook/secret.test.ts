/**
 * The receiver's secret check (per-instance secrets derived from one cached master) and the master's
 * reader (current and, after a rotation, previous version), the latter against the SSM stand-in.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DependencyError } from '../../../functions/presence-webhook/receive.ts';
import { createSecretVerifier } from '../../../functions/presence-webhook/secret.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { ParameterError } from '../../../functions/shared/aws/ssm.ts';
import { type MasterSecret, masterSecretReader } from '../../../functions/shared/secrets/master-secret.ts';
import { deriveInstanceSecret } from '../../../functions/shared/secrets/webhook-secret.ts';
import { type AwsStandIn, startAwsStandIn } from '../../support/aws-standin.ts';

const MASTER = 'master-secret-0123456789abcdefghijklmnop';
const ROTATED = 'rotated-master-0123456789abcdefghijklmnop';
const A = 'INSTANCEA';
const B = 'INSTANCEB';
const soon = () => deadlineAt(Date.now() + 5_000);

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const loader = (value: () => MasterSecret) => vi.fn(async () => value());

describe('createSecretVerifier', () => {
  it("accepts each instance's derived secret, refuses it for another instance and refuses the master", async () => {
    const load = loader(() => ({ current: MASTER }));
    const verify = createSecretVerifier({ load });
    const forA = deriveInstanceSecret(MASTER, A);
    expect(await verify(A, forA, soon())).toBe(true);
    expect(await verify(B, deriveInstanceSecret(MASTER, B), soon())).toBe(true);
    expect(await verify(B, forA, soon())).toBe(false);
    expect(await verify(A, MASTER, soon())).toBe(false);
    expect(await verify(A, `${forA}x`, soon())).toBe(false);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('answers synchronously from a fresh cache (no SSM call per request, whatever the fleet size)', async () => {
    const load = loader(() => ({ current: MASTER }));
    const verify = createSecretVerifier({ load });
    await verify(A, deriveInstanceSecret(MASTER, A), soon());
    for (let i = 0; i < 200; i++) {
      const id = `I${i}`;
      expect(verify(id, deriveInstanceSecret(MASTER, id), soon())).toBe(true);
    }
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('reads the master once for concurrent first requests', async () => {
    const load = loader(() => ({ current: MASTER }));
    const verify = createSecretVerifier({ load });
    const results = await Promise.all([
      verify(A, deriveInstanceSecret(MASTER, A), soon()),
      verify(B, deriveInstanceSecret(MASTER, B), soon()),
      verify(A, 'wrong-guess', soon()),
    ]);
    expect(results).toEqual([true, true, false]);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('re-reads after the TTL so a rotated master takes effect', async () => {
    const c = clock();
    let value = MASTER;
    const load = loader(() => ({ current: value }));
    const verify = createSecretVerifier({
      load,
      ttlMs: 60_000,
      refreshOnMismatchAfterMs: 60_000,
      now: c.now,
    });
    expect(await verify(A, deriveInstanceSecret(MASTER, A), soon())).toBe(true);
    value = ROTATED;
    c.advance(30_000);
    expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(false);
    c.advance(30_000);
    expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
    expect(await verify(A, deriveInstanceSecret(MASTER, A), soon())).toBe(false);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('re-reads early on a mismatch, at most once per window', async () => {
    const c = clock();
    let value = MASTER;
    const load = loader(() => ({ current: value }));
    const verify = createSecretVerifier({
      load,
      ttlMs: 300_000,
      refreshOnMismatchAfterMs: 30_000,
      now: c.now,
    });
    await verify(A, deriveInstanceSecret(MASTER, A), soon());
    value = ROTATED;
    c.advance(29_999);
    expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(false); // too soon: no SSM call
    expect(load).toHaveBeenCalledTimes(1);
    c.advance(1);
    expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('throws a DependencyError naming the problem when the master cannot be read and nothing is cached', async () => {
    const verify = createSecretVerifier({
      load: async () => {
        throw new ParameterError(
          'SSM parameter /p could not be read (ThrottlingException)',
          'unavailable',
          '/p',
        );
      },
    });
    const error = await Promise.resolve(verify(A, 'x', soon())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyError);
    expect((error as DependencyError).dependency).toBe('secret');
    expect((error as Error).message).toContain('SSM parameter /p could not be read (ThrottlingException)');
  });

  it('keeps serving the cached master while SSM is down, and retries after the refresh window', async () => {
    const c = clock();
    let fail = false;
    const load = vi.fn(async (): Promise<MasterSecret> => {
      if (fail) throw new Error('down');
      return { current: MASTER };
    });
    const verify = createSecretVerifier({ load, ttlMs: 1_000, refreshOnMismatchAfterMs: 5_000, now: c.now });
    const good = deriveInstanceSecret(MASTER, A);
    expect(await verify(A, good, soon())).toBe(true);
    fail = true;
    c.advance(1_000);
    expect(await verify(A, good, soon())).toBe(true); // stale but served
    expect(load).toHaveBeenCalledTimes(2);
    c.advance(4_999);
    expect(verify(A, good, soon())).toBe(true); // still within the retry window: cached, synchronous
    expect(load).toHaveBeenCalledTimes(2);
    c.advance(1);
    expect(await verify(A, good, soon())).toBe(true);
    expect(load).toHaveBeenCalledTimes(3);
  });

  it('after a failed first read, answers 503 for a moment without asking SSM again', async () => {
    const c = clock();
    const load = vi.fn(async (): Promise<MasterSecret> => {
      throw new Error('down');
    });
    const verify = createSecretVerifier({ load, failedReadBackoffMs: 2_000, now: c.now });
    await expect(Promise.resolve(verify(A, 'x', soon()))).rejects.toBeInstanceOf(DependencyError);
    c.advance(1_999);
    await expect(Promise.resolve(verify(A, 'x', soon()))).rejects.toThrow(/a moment ago/);
    expect(load).toHaveBeenCalledTimes(1);
    c.advance(1);
    await expect(Promise.resolve(verify(A, 'x', soon()))).rejects.toBeInstanceOf(DependencyError);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('never lets wrong secrets drive SSM calls', async () => {
    const c = clock();
    const load = loader(() => ({ current: MASTER }));
    const verify = createSecretVerifier({ load, refreshOnMismatchAfterMs: 30_000, now: c.now });
    await verify(A, deriveInstanceSecret(MASTER, A), soon());
    for (let i = 0; i < 100; i++) {
      c.advance(100);
      expect(await verify(A, `guess-${i}`, soon())).toBe(false);
    }
    // 10 s of guessing at 10/s: at most one re-read (none here, the window is 30 s).
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('passes the request deadline to the loader', async () => {
    const load = vi.fn(async (_deadline: { at: number }): Promise<MasterSecret> => ({ current: MASTER }));
    const verify = createSecretVerifier({ load });
    const deadline = soon();
    await verify(A, 'x', deadline);
    expect(load.mock.calls[0]?.[0]).toBe(deadline);
  });

  describe('rotation', () => {
    it("accepts the previous master's derived secrets until the grace deadline, then only the current ones", async () => {
      const c = clock();
      const load = loader(() => ({ current: ROTATED, previous: MASTER, previousUntil: c.now() + 3_600_000 }));
      const verify = createSecretVerifier({
        load,
        ttlMs: 10 * 3_600_000,
        refreshOnMismatchAfterMs: 10 * 3_600_000,
        now: c.now,
      });
      expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
      expect(await verify(A, deriveInstanceSecret(MASTER, A), soon())).toBe(true);
      expect(await verify(B, deriveInstanceSecret(MASTER, A), soon())).toBe(false);
      c.advance(3_599_999);
      expect(await verify(A, deriveInstanceSecret(MASTER, A), soon())).toBe(true);
      c.advance(1);
      expect(await verify(A, deriveInstanceSecret(MASTER, A), soon())).toBe(false);
      expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
    });

    it('keeps an incomplete answer (previous version unreadable) only briefly', async () => {
      const c = clock();
      const load = loader(() => ({ current: ROTATED, incomplete: true }));
      const verify = createSecretVerifier({ load, ttlMs: 300_000, incompleteTtlMs: 30_000, now: c.now });
      await verify(A, deriveInstanceSecret(ROTATED, A), soon());
      c.advance(29_999);
      expect(verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
      c.advance(1);
      await verify(A, deriveInstanceSecret(ROTATED, A), soon());
      expect(load).toHaveBeenCalledTimes(2);
    });
  });
});

describe('masterSecretReader (SSM stand-in)', () => {
  let standIn: AwsStandIn;
  let ssm: SSMClient;
  const warnings: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    standIn = await startAwsStandIn();
    ssm = new SSMClient({
      region: 'sa-east-1',
      endpoint: standIn.url,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    ssm.destroy();
    await standIn.close();
  });
  beforeEach(() => {
    standIn.misbehaveParameters.clear();
    standIn.calls.length = 0;
    warnings.length = 0;
  });

  const read = (name: string, graceMs = 3_600_000) =>
    masterSecretReader({ ssm, parameterName: name, graceMs, warn: (r) => warnings.push(r) });

  it('reads only the current version when the master was not rotated lately', async () => {
    standIn.put('/m/old', MASTER, Date.now() - 2 * 3_600_000);
    standIn.put('/m/old', ROTATED, Date.now() - 3_600_001);
    expect(await read('/m/old')(soon())).toEqual({ current: ROTATED, since: expect.any(Number) });
    expect(standIn.calls).toEqual(['AmazonSSM.GetParameter /m/old']);
  });

  it('also reads the previous version within the grace window after a rotation', async () => {
    standIn.put('/m/rotated', MASTER, Date.now() - 86_400_000);
    const rotatedAt = Date.now() - 60_000;
    standIn.put('/m/rotated', ROTATED, rotatedAt);
    const secret = await read('/m/rotated')(soon());
    expect(secret).toEqual({
      current: ROTATED,
      since: rotatedAt,
      previous: MASTER,
      previousUntil: rotatedAt + 3_600_000,
    });
    expect(standIn.calls).toEqual([
      'AmazonSSM.GetParameter /m/rotated',
      'AmazonSSM.GetParameter /m/rotated:1',
    ]);
  });

  it('with no grace window, never reads the previous version', async () => {
    standIn.put('/m/nograce', MASTER);
    standIn.put('/m/nograce', ROTATED);
    expect(await read('/m/nograce', 0)(soon())).toEqual({ current: ROTATED, since: expect.any(Number) });
  });

  it('cuts a hanging previous-version read at 1.5 s and serves the current one, briefly', async () => {
    standIn.put('/m/hang', MASTER, Date.now() - 86_400_000);
    standIn.put('/m/hang', ROTATED);
    standIn.misbehaveParameters.set('/m/hang:1', 'hang');
    const started = Date.now();
    const secret = await read('/m/hang')(deadlineAt(Date.now() + 9_000));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(secret).toEqual({ current: ROTATED, since: expect.any(Number), incomplete: true });
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings)).not.toContain(MASTER);
  });

  it('cuts a trickling current-version read at the deadline', async () => {
    standIn.put('/m/trickle', MASTER);
    standIn.misbehaveParameters.set('/m/trickle', 'trickle');
    const started = Date.now();
    const error = await read('/m/trickle')(deadlineAt(Date.now() + 800)).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_300);
    expect(error).toBeInstanceOf(ParameterError);
    expect((error as ParameterError).code).toBe('timeout');
  });

  it.each([
    ['too short', 'x'.repeat(31)],
    ['with characters outside the alphabet', `${'a'.repeat(31)}+/=`],
  ])('refuses a master %s, naming the parameter and a command, never the value', async (_case, value) => {
    standIn.put('/m/bad', value);
    const error = (await read('/m/bad')(soon()).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ParameterError);
    expect(error.message).toContain('/m/bad');
    expect(error.message).toContain('openssl rand -hex 32');
    expect(error.message).not.toContain(value);
  });

  it('names a missing parameter with the command that creates it', async () => {
    const error = (await read('/m/missing')(soon()).catch((e: unknown) => e)) as ParameterError;
    expect(error.code).toBe('not-found');
    expect(error.message).toContain('aws ssm put-parameter --type SecureString --name /m/missing');
  });
});

describe('createSecretVerifier: defaults and edges', () => {
  const failing = (thrown: unknown = new Error('down')) =>
    vi.fn(async (): Promise<MasterSecret> => {
      throw thrown;
    });
  const settle = (result: boolean | Promise<boolean>) => Promise.resolve(result).catch((e: unknown) => e);

  it('after a failed first read, answers 503 for 2 s by default', async () => {
    const c = clock();
    const load = failing();
    const verify = createSecretVerifier({ load, now: c.now });
    expect(await settle(verify(A, 'x', soon()))).toBeInstanceOf(DependencyError);
    c.advance(1_999);
    const refused = (await settle(verify(A, 'x', soon()))) as DependencyError;
    expect(refused).toBeInstanceOf(DependencyError);
    expect(refused.dependency).toBe('secret');
    expect(refused.message).toBe('the webhook master secret could not be read a moment ago');
    expect(load).toHaveBeenCalledTimes(1);
    c.advance(1);
    expect(await settle(verify(A, 'x', soon()))).toBeInstanceOf(DependencyError);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('honours a failedReadBackoffMs other than the default', async () => {
    const c = clock();
    const load = failing();
    const verify = createSecretVerifier({ load, failedReadBackoffMs: 500, now: c.now });
    await settle(verify(A, 'x', soon()));
    c.advance(499);
    expect(((await settle(verify(A, 'x', soon()))) as Error).message).toMatch(/a moment ago/);
    expect(load).toHaveBeenCalledTimes(1);
    c.advance(1);
    await settle(verify(A, 'x', soon()));
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('never answers "a moment ago" while a cached value can be served: retries every refresh window', async () => {
    const c = clock();
    let fail = false;
    const load = vi.fn(async (): Promise<MasterSecret> => {
      if (fail) throw new Error('down');
      return { current: MASTER };
    });
    // The refresh window (500 ms) is shorter than the backoff (5 s): the backoff must not apply here.
    const verify = createSecretVerifier({
      load,
      ttlMs: 1_000,
      refreshOnMismatchAfterMs: 500,
      failedReadBackoffMs: 5_000,
      now: c.now,
    });
    const good = deriveInstanceSecret(MASTER, A);
    expect(await verify(A, good, soon())).toBe(true);
    fail = true;
    c.advance(1_000);
    expect(await verify(A, good, soon())).toBe(true);
    expect(load).toHaveBeenCalledTimes(2);
    for (let i = 3; i <= 5; i++) {
      c.advance(500);
      expect(await settle(verify(A, good, soon()))).toBe(true);
      expect(load).toHaveBeenCalledTimes(i);
    }
  });

  it("carries the loader's message and the error itself as the cause", async () => {
    const problem = new ParameterError(
      'SSM parameter /p cannot be read (AccessDeniedException)',
      'denied',
      '/p',
    );
    const error = (await settle(createSecretVerifier({ load: failing(problem) })(A, 'x', soon()))) as Error;
    expect(error).toBeInstanceOf(DependencyError);
    expect((error as DependencyError).dependency).toBe('secret');
    expect(error.message).toBe(
      'the webhook master secret could not be read: SSM parameter /p cannot be read (AccessDeniedException)',
    );
    expect(error.cause).toBe(problem);
  });

  it("says 'unknown error' when the loader throws something that is not an Error", async () => {
    const thrown = { code: 'weird' };
    const error = (await settle(createSecretVerifier({ load: failing(thrown) })(A, 'x', soon()))) as Error;
    expect(error).toBeInstanceOf(DependencyError);
    expect(error.message).toBe('the webhook master secret could not be read: unknown error');
    expect(error.cause).toBe(thrown);
  });

  it('keeps an incomplete answer 30 s by default (then re-reads)', async () => {
    const c = clock();
    const load = loader(() => ({ current: ROTATED, incomplete: true }));
    const verify = createSecretVerifier({ load, now: c.now });
    const good = deriveInstanceSecret(ROTATED, A);
    expect(await verify(A, good, soon())).toBe(true);
    c.advance(29_999);
    expect(verify(A, good, soon())).toBe(true); // fresh: synchronous
    expect(load).toHaveBeenCalledTimes(1);
    c.advance(1);
    expect(await verify(A, good, soon())).toBe(true);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('honours an incompleteTtlMs other than the default, and never keeps it longer than ttlMs', async () => {
    const c = clock();
    const load = loader(() => ({ current: ROTATED, incomplete: true }));
    const verify = createSecretVerifier({ load, incompleteTtlMs: 10_000, now: c.now });
    const good = deriveInstanceSecret(ROTATED, A);
    await verify(A, good, soon());
    c.advance(9_999);
    expect(verify(A, good, soon())).toBe(true);
    c.advance(1);
    expect(await verify(A, good, soon())).toBe(true);
    expect(load).toHaveBeenCalledTimes(2);

    const d = clock();
    const short = loader(() => ({ current: ROTATED, incomplete: true }));
    const verifyShort = createSecretVerifier({
      load: short,
      ttlMs: 5_000,
      incompleteTtlMs: 60_000,
      now: d.now,
    });
    await verifyShort(A, good, soon());
    d.advance(5_000);
    expect(await verifyShort(A, good, soon())).toBe(true);
    expect(short).toHaveBeenCalledTimes(2);
  });

  it('a complete answer keeps the full ttlMs, whatever incompleteTtlMs says', async () => {
    const c = clock();
    const load = loader(() => ({ current: ROTATED }));
    const verify = createSecretVerifier({ load, ttlMs: 100_000, incompleteTtlMs: 1_000, now: c.now });
    const good = deriveInstanceSecret(ROTATED, A);
    await verify(A, good, soon());
    c.advance(99_999);
    expect(verify(A, good, soon())).toBe(true);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('refuses a previous master that comes without a deadline (previousUntil defaults to 0)', async () => {
    const c = clock();
    const load = loader(() => ({ current: ROTATED, previous: MASTER }));
    const verify = createSecretVerifier({ load, now: c.now });
    expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
    expect(await verify(A, deriveInstanceSecret(MASTER, A), soon())).toBe(false);
  });

  it('ignores a deadline that comes without a previous master', async () => {
    const c = clock();
    const load = loader(() => ({ current: ROTATED, previousUntil: c.now() + 3_600_000 }));
    const verify = createSecretVerifier({ load, now: c.now });
    expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
    expect(await verify(A, deriveInstanceSecret(MASTER, A), soon())).toBe(false);
  });

  it('accepts the previous master up to 1 ms before previousUntil, on the hot path too', async () => {
    const c = clock();
    const load = loader(() => ({ current: ROTATED, previous: MASTER, previousUntil: c.now() + 1_000 }));
    const verify = createSecretVerifier({ load, now: c.now, refreshOnMismatchAfterMs: 60_000 });
    const old = deriveInstanceSecret(MASTER, B);
    expect(await verify(B, old, soon())).toBe(true);
    c.advance(999);
    expect(verify(B, old, soon())).toBe(true);
    c.advance(1);
    expect(await verify(B, old, soon())).toBe(false);
    expect(load).toHaveBeenCalledTimes(1);
  });
});

describe('rotation edge cases (adversarial review)', () => {
  it("answers 503, not 401, to a URL that may be the previous master's when that version could not be read", async () => {
    const verify = createSecretVerifier({ load: async () => ({ current: ROTATED, incomplete: true }) });
    await expect(Promise.resolve(verify(A, deriveInstanceSecret(MASTER, A), soon()))).rejects.toBeInstanceOf(
      DependencyError,
    );
    expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
  });

  it('stops accepting a rotated-away master once the cached value is older than maxStaleMs, even with SSM down', async () => {
    const c = clock();
    let fail = false;
    const load = vi.fn(async (): Promise<MasterSecret> => {
      if (fail) throw new ParameterError('SSM parameter /m holds characters other than …', 'invalid', '/m');
      return { current: MASTER };
    });
    const verify = createSecretVerifier({
      load,
      ttlMs: 60_000,
      refreshOnMismatchAfterMs: 30_000,
      maxStaleMs: 3_600_000,
      now: c.now,
    });
    const leaked = deriveInstanceSecret(MASTER, A);
    expect(await verify(A, leaked, soon())).toBe(true);
    fail = true; // rotated to a value that cannot be used
    c.advance(3_599_000);
    expect(await verify(A, leaked, soon())).toBe(true); // still within the bound: availability
    c.advance(1_000);
    await expect(Promise.resolve(verify(A, leaked, soon()))).rejects.toBeInstanceOf(DependencyError);
    c.advance(60_000);
    await expect(Promise.resolve(verify(A, leaked, soon()))).rejects.toBeInstanceOf(DependencyError);
  });
});

describe('masterSecretReader: the previous valid version (adversarial review)', () => {
  let standIn: AwsStandIn;
  let ssm: SSMClient;
  beforeAll(async () => {
    standIn = await startAwsStandIn();
    ssm = new SSMClient({
      region: 'sa-east-1',
      endpoint: standIn.url,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    ssm.destroy();
    await standIn.close();
  });

  it('skips a mistyped version: v1 good, v2 invalid, v3 good -> v1 is the previous master', async () => {
    standIn.put('/m/typo', MASTER, Date.now() - 86_400_000);
    standIn.put('/m/typo', 'bad+value/=', Date.now() - 600_000);
    const rotatedAt = Date.now() - 60_000;
    standIn.put('/m/typo', ROTATED, rotatedAt);
    const secret = await masterSecretReader({ ssm, parameterName: '/m/typo', graceMs: 3_600_000 })(soon());
    expect(secret).toEqual({
      current: ROTATED,
      since: rotatedAt,
      previous: MASTER,
      previousUntil: rotatedAt + 3_600_000,
    });
  });
});
