import { describe, expect, it, vi } from 'vitest';
import { DependencyError } from '../../functions/presence-webhook/receive.ts';
import { createSecretVerifier, MIN_SECRET_LENGTH } from '../../functions/presence-webhook/secret.ts';

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

  it.each([undefined, '', 'x'.repeat(MIN_SECRET_LENGTH - 1)])(
    'refuses a missing or short secret (%s)',
    async (value) => {
      const verify = createSecretVerifier({ load: async () => value });
      await expect(verify('x'.repeat(MIN_SECRET_LENGTH - 1))).rejects.toThrow(/empty or shorter than 16/);
    },
  );
});
