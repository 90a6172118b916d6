/**
 * The secret check's per-instance cache: once an instance's derived secret has matched, its digest is
 * reused (no HMAC per request); wrong secrets add nothing; the cache is bounded and never outlives its
 * master.
 */
import * as crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { createSecretVerifier, MAX_CACHED_INSTANCES } from '../../../functions/presence-webhook/secret.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { deriveInstanceSecret } from '../../../functions/shared/secrets/webhook-secret.ts';

vi.mock('node:crypto', async (original) => {
  const actual = await original<typeof import('node:crypto')>();
  return { ...actual, createHmac: vi.fn(actual.createHmac) };
});

const MASTER = 'master-secret-0123456789abcdefghijklmnop';
const ROTATED = 'rotated-master-0123456789abcdefghijklmnop';
const A = 'INSTANCEA';
const soon = () => deadlineAt(Date.now() + 5_000);
const hmacs = vi.mocked(crypto.createHmac);

/** HMACs computed by `check`, the test's own derivations done beforehand. */
async function hmacsDuring(check: () => unknown): Promise<number> {
  const before = hmacs.mock.calls.length;
  await check();
  return hmacs.mock.calls.length - before;
}

describe('createSecretVerifier: the per-instance digest cache', () => {
  it('computes the HMAC for the first match only, then answers from the cache', async () => {
    const verify = createSecretVerifier({ load: async () => ({ current: MASTER }) });
    const secret = deriveInstanceSecret(MASTER, A);
    expect(await hmacsDuring(async () => expect(await verify(A, secret, soon())).toBe(true))).toBe(1);
    expect(await hmacsDuring(() => expect(verify(A, secret, soon())).toBe(true))).toBe(0);
    // A wrong secret for a known instance is still refused, from the cached digest.
    expect(await hmacsDuring(async () => expect(await verify(A, `${secret}x`, soon())).toBe(false))).toBe(0);
  });

  it('caches nothing for a wrong secret: an unknown instance costs an HMAC every time', async () => {
    const verify = createSecretVerifier({ load: async () => ({ current: MASTER }) });
    await verify(A, deriveInstanceSecret(MASTER, A), soon());
    for (let i = 0; i < 3; i++) {
      expect(
        await hmacsDuring(async () => expect(await verify('OTHER', 'wrong-guess', soon())).toBe(false)),
      ).toBe(1);
    }
  });

  it('starts afresh with a new master: the old derived secret is refused, the new one accepted', async () => {
    let t = 1_000_000;
    let master = MASTER;
    const verify = createSecretVerifier({
      load: async () => ({ current: master }),
      ttlMs: 1_000,
      now: () => t,
    });
    const old = deriveInstanceSecret(MASTER, A);
    expect(await verify(A, old, soon())).toBe(true);
    expect(verify(A, old, soon())).toBe(true);
    master = ROTATED;
    t += 1_001;
    expect(await verify(A, old, soon())).toBe(false);
    expect(await verify(A, deriveInstanceSecret(ROTATED, A), soon())).toBe(true);
  });

  it(`keeps at most ${MAX_CACHED_INSTANCES} instances, and still answers right past the bound`, async () => {
    const verify = createSecretVerifier({ load: async () => ({ current: MASTER }) });
    const ids = Array.from({ length: MAX_CACHED_INSTANCES + 1 }, (_, i) => `I${i}`);
    const secrets = ids.map((id) => deriveInstanceSecret(MASTER, id));
    for (const [i, id] of ids.entries()) expect(await verify(id, secrets[i] as string, soon())).toBe(true);
    // The bound was reached at the last one: the map was emptied, so the first costs an HMAC again.
    expect(await hmacsDuring(() => expect(verify('I0', secrets[0] as string, soon())).toBe(true))).toBe(1);
    expect(await hmacsDuring(() => expect(verify('I0', secrets[0] as string, soon())).toBe(true))).toBe(0);
    expect(await verify('I1', `${secrets[1]}x`, soon())).toBe(false);
  });
});
