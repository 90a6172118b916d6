import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { DependencyError } from '../../functions/presence-webhook/receive.ts';
import { createSecretVerifier, MIN_SECRET_LENGTH } from '../../functions/presence-webhook/secret.ts';
import {
  PREVIOUS_RETRY_MS,
  PREVIOUS_SECRET_GRACE_MS,
  secretParameterLoader,
} from '../../functions/presence-webhook/secret-parameter.ts';

const SECRET = 'a-secret-of-enough-length';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('createSecretVerifier', () => {
  it('reads the secret once and caches it across calls', async () => {
    const load = vi.fn(async () => SECRET);
    const verify = createSecretVerifier({ load });
    const results = await Promise.all([verify(SECRET), verify(SECRET), verify('wrong-guess-xxxxxxxx')]);
    expect(results).toEqual([true, true, false]);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('re-reads after the TTL so a rotated secret takes effect', async () => {
    const c = clock();
    let value = SECRET;
    const load = vi.fn(async () => value);
    const verify = createSecretVerifier({
      load,
      ttlMs: 60_000,
      refreshOnMismatchAfterMs: 60_000,
      now: c.now,
    });
    expect(await verify(SECRET)).toBe(true);
    value = 'the-rotated-secret-value';
    c.advance(30_000);
    expect(await verify('the-rotated-secret-value')).toBe(false);
    c.advance(31_000);
    expect(await verify('the-rotated-secret-value')).toBe(true);
    expect(await verify(SECRET)).toBe(false);
  });

  it('re-reads early on a mismatch, at most once per window', async () => {
    const c = clock();
    let value = SECRET;
    const load = vi.fn(async () => value);
    const verify = createSecretVerifier({
      load,
      ttlMs: 300_000,
      refreshOnMismatchAfterMs: 30_000,
      now: c.now,
    });
    await verify(SECRET);
    value = 'the-rotated-secret-value';
    c.advance(10_000);
    expect(await verify('the-rotated-secret-value')).toBe(false); // too soon: no SSM call per bad request
    expect(load).toHaveBeenCalledTimes(1);
    c.advance(25_000);
    expect(await verify('the-rotated-secret-value')).toBe(true);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('throws a DependencyError when SSM cannot be read and nothing is cached', async () => {
    const verify = createSecretVerifier({
      load: async () => {
        throw new Error('AccessDeniedException');
      },
    });
    await expect(verify(SECRET)).rejects.toBeInstanceOf(DependencyError);
  });

  it('keeps serving the cached secret while SSM is down', async () => {
    const c = clock();
    let fail = false;
    const load = vi.fn(async () => {
      if (fail) throw new Error('down');
      return SECRET;
    });
    const verify = createSecretVerifier({ load, ttlMs: 1_000, now: c.now });
    expect(await verify(SECRET)).toBe(true);
    fail = true;
    c.advance(5_000);
    expect(await verify(SECRET)).toBe(true);
  });

  it('never lets wrong secrets drive SSM calls, even after a failed read', async () => {
    const c = clock();
    let fail = false;
    const load = vi.fn(async () => {
      if (fail) throw new Error('throttled');
      return SECRET;
    });
    const verify = createSecretVerifier({
      load,
      ttlMs: 300_000,
      refreshOnMismatchAfterMs: 30_000,
      now: c.now,
    });
    expect(await verify(SECRET)).toBe(true);
    fail = true;
    c.advance(31_000);
    expect(await verify('wrong-secret-value-000')).toBe(false); // re-read allowed: fails
    expect(load).toHaveBeenCalledTimes(2);
    for (let i = 0; i < 5; i++) {
      c.advance(1_000);
      expect(await verify('wrong-secret-value-000')).toBe(false);
    }
    expect(load).toHaveBeenCalledTimes(2);
    expect(await verify(SECRET)).toBe(true); // the cached value keeps serving
  });

  it('after a failed first read, answers 503 for a moment without asking SSM again', async () => {
    const c = clock();
    let fail = true;
    const load = vi.fn(async () => {
      if (fail) throw new Error('ThrottlingException');
      return SECRET;
    });
    const verify = createSecretVerifier({ load, failedReadBackoffMs: 2_000, now: c.now });
    await expect(verify(SECRET)).rejects.toBeInstanceOf(DependencyError);
    c.advance(500);
    await expect(verify('anything-at-all-xxxxx')).rejects.toThrow(/could not be read a moment ago/);
    expect(load).toHaveBeenCalledTimes(1);
    fail = false;
    c.advance(2_000);
    expect(await verify(SECRET)).toBe(true);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it.each([undefined, '', 'x'.repeat(MIN_SECRET_LENGTH - 1)])(
    'refuses a missing or short secret (%s)',
    async (value) => {
      const verify = createSecretVerifier({ load: async () => value });
      await expect(verify('x'.repeat(MIN_SECRET_LENGTH - 1))).rejects.toThrow(/empty or shorter than 16/);
    },
  );
});

describe('rotation', () => {
  it('accepts the previous value until its deadline, then only the current one', async () => {
    const c = clock();
    const deadline = c.now() + 60_000;
    const verify = createSecretVerifier({
      load: async () => ({ current: 'the-new-secret-value-1', previous: SECRET, previousUntil: deadline }),
      ttlMs: 3_600_000,
      now: c.now,
    });
    expect(await verify('the-new-secret-value-1')).toBe(true);
    expect(await verify(SECRET)).toBe(true);
    c.advance(61_000);
    expect(await verify(SECRET)).toBe(false);
    expect(await verify('the-new-secret-value-1')).toBe(true);
  });
});

describe('secretParameterLoader', () => {
  const ssm = mockClient(SSMClient);
  beforeEach(() => ssm.reset());
  const NOW = Date.parse('2026-11-25T12:00:00Z');

  it('reads only the current version when the parameter was not rotated lately', async () => {
    ssm.on(GetParameterCommand, { Name: '/s', WithDecryption: true }).resolves({
      Parameter: {
        Value: 'current-secret-value-xx',
        Version: 4,
        LastModifiedDate: new Date(NOW - PREVIOUS_SECRET_GRACE_MS - 1),
      },
    });
    await expect(secretParameterLoader(new SSMClient({}), '/s', () => NOW)()).resolves.toEqual({
      current: 'current-secret-value-xx',
    });
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(1);
  });

  it('also reads the previous version, valid for an hour after the rotation', async () => {
    const rotatedAt = NOW - 10 * 60_000;
    ssm.on(GetParameterCommand, { Name: '/s', WithDecryption: true }).resolves({
      Parameter: { Value: 'current-secret-value-xx', Version: 4, LastModifiedDate: new Date(rotatedAt) },
    });
    ssm
      .on(GetParameterCommand, { Name: '/s:3', WithDecryption: true })
      .resolves({ Parameter: { Value: 'previous-secret-value-x', Version: 3 } });
    await expect(secretParameterLoader(new SSMClient({}), '/s', () => NOW)()).resolves.toEqual({
      current: 'current-secret-value-xx',
      previous: 'previous-secret-value-x',
      previousUntil: rotatedAt + PREVIOUS_SECRET_GRACE_MS,
    });
  });

  it('serves the current version alone, briefly, when the previous one cannot be read', async () => {
    ssm.on(GetParameterCommand, { Name: '/s', WithDecryption: true }).resolves({
      Parameter: { Value: 'current-secret-value-xx', Version: 2, LastModifiedDate: new Date(NOW) },
    });
    ssm
      .on(GetParameterCommand, { Name: '/s:1' })
      .rejects(Object.assign(new Error('gone'), { name: 'ThrottlingException' }));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    await expect(secretParameterLoader(new SSMClient({}), '/s', () => NOW)()).resolves.toEqual({
      current: 'current-secret-value-xx',
      ttlMs: PREVIOUS_RETRY_MS,
    });
    expect(JSON.stringify(warn.mock.calls)).toContain('ThrottlingException');
    expect(JSON.stringify(warn.mock.calls)).not.toContain('current-secret-value-xx');
  });

  it('treats a previous version deleted from the history as permanent (no warning, usual TTL)', async () => {
    ssm.on(GetParameterCommand, { Name: '/s', WithDecryption: true }).resolves({
      Parameter: { Value: 'current-secret-value-xx', Version: 2, LastModifiedDate: new Date(NOW) },
    });
    ssm
      .on(GetParameterCommand, { Name: '/s:1' })
      .rejects(Object.assign(new Error('gone'), { name: 'ParameterVersionNotFound' }));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    await expect(secretParameterLoader(new SSMClient({}), '/s', () => NOW)()).resolves.toEqual({
      current: 'current-secret-value-xx',
    });
    expect(warn).not.toHaveBeenCalled();
  });

  it('caches a load without the previous version only briefly', async () => {
    const c = clock();
    const load = vi.fn(async () => ({ current: SECRET, ttlMs: 30_000 }));
    const verify = createSecretVerifier({ load, ttlMs: 300_000, now: c.now });
    await verify(SECRET);
    c.advance(31_000);
    await verify(SECRET);
    expect(load).toHaveBeenCalledTimes(2);
  });
});
