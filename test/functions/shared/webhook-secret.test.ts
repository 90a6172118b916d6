import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INSTANCE_ID_PATTERN } from '../../../functions/shared/contract/presence-contract.ts';
import {
  deriveInstanceSecret,
  instanceWebhookPath,
  instanceWebhookUrl,
  MASTER_SECRET_COMMAND,
  MAX_MASTER_LENGTH,
  MIN_MASTER_LENGTH,
  masterSecretDefect,
  masterSecretProblem,
} from '../../../functions/shared/secrets/webhook-secret.ts';

const MASTER = '0123456789abcdef0123456789abcdef';
const INSTANCE = '3C01A5B2E0F4D8E1A2B3C4D5E6F7A8B9';
/**
 * Computed once, outside this code, with
 *   printf %s 3C01A5B2E0F4D8E1A2B3C4D5E6F7A8B9 \
 *     | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef -binary | base64 | tr '+/' '-_' | tr -d =
 */
const KNOWN_SECRET = 'wlMFGS6QQ-Wu5tU3MChX9omiznO9tbaO5LT6EjZa-Lk';

/** The published formula, computed independently: base64url(HMAC-SHA256(key = master, message = id)), no padding. */
function independentSecret(master: string, instanceId: string): string {
  const mac = createHmac('sha256', Buffer.from(master, 'utf8'))
    .update(Buffer.from(instanceId, 'utf8'))
    .digest('base64');
  return mac.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

const masterArb = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'),
  minLength: MIN_MASTER_LENGTH,
  maxLength: 80,
});
const instanceArb = fc.stringMatching(INSTANCE_ID_PATTERN);

describe('deriveInstanceSecret', () => {
  it('matches a known vector', () => {
    expect(deriveInstanceSecret(MASTER, INSTANCE)).toBe(KNOWN_SECRET);
  });

  it('is base64url(HMAC-SHA256(master, instanceId)) without padding: 43 URL-safe characters (property)', () => {
    fc.assert(
      fc.property(masterArb, instanceArb, (master, instanceId) => {
        const secret = deriveInstanceSecret(master, instanceId);
        expect(secret).toBe(independentSecret(master, instanceId));
        expect(secret).toHaveLength(43);
        expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }),
      { numRuns: 200 },
    );
  });

  it('reads both sides as UTF-8', () => {
    const master = 'ключ-'.repeat(8);
    const instanceId = 'instância';
    const secret = deriveInstanceSecret(master, instanceId);
    expect(secret).toBe(independentSecret(master, instanceId));
    const latin1 = createHmac('sha256', Buffer.from(master, 'latin1'))
      .update(Buffer.from(instanceId, 'latin1'))
      .digest('base64url');
    expect(secret).not.toBe(latin1);
  });

  it('uses the master as the key and the instance as the message (not the other way round)', () => {
    expect(deriveInstanceSecret(MASTER, INSTANCE)).not.toBe(deriveInstanceSecret(INSTANCE, MASTER));
    expect(deriveInstanceSecret(MASTER, INSTANCE)).not.toBe(independentSecret(INSTANCE, MASTER));
  });

  it('gives different instances different secrets, and different masters too', () => {
    const a = deriveInstanceSecret(MASTER, 'INSTANCE1');
    const b = deriveInstanceSecret(MASTER, 'INSTANCE2');
    const c = deriveInstanceSecret(MASTER.replace('0', '1'), 'INSTANCE1');
    expect(new Set([a, b, c]).size).toBe(3);
    fc.assert(
      fc.property(masterArb, instanceArb, instanceArb, (master, x, y) => {
        fc.pre(x !== y);
        expect(deriveInstanceSecret(master, x)).not.toBe(deriveInstanceSecret(master, y));
      }),
      { numRuns: 100 },
    );
  });

  it('is deterministic', () => {
    expect(deriveInstanceSecret(MASTER, INSTANCE)).toBe(deriveInstanceSecret(MASTER, INSTANCE));
  });
});

describe('instanceWebhookUrl / instanceWebhookPath', () => {
  it('is {base}/instances/{id}/presence?secret={derived}', () => {
    expect(instanceWebhookUrl('https://api.example.com/prod', INSTANCE, MASTER)).toBe(
      `https://api.example.com/prod/instances/${INSTANCE}/presence?secret=${KNOWN_SECRET}`,
    );
    expect(instanceWebhookPath('https://api.example.com/prod', INSTANCE)).toBe(
      `https://api.example.com/prod/instances/${INSTANCE}/presence`,
    );
  });

  it.each([
    ['https://api.example.com/prod/', 'https://api.example.com/prod'],
    ['https://api.example.com/prod///', 'https://api.example.com/prod'],
    ['https://api.example.com', 'https://api.example.com'],
    ['https://api.example.com/', 'https://api.example.com'],
    ['http://localhost:3000//a//b/', 'http://localhost:3000//a//b'],
  ])('drops only the trailing slashes of %s', (base, trimmed) => {
    expect(instanceWebhookPath(base, 'I1')).toBe(`${trimmed}/instances/I1/presence`);
    expect(instanceWebhookUrl(base, 'I1', MASTER)).toBe(
      `${trimmed}/instances/I1/presence?secret=${deriveInstanceSecret(MASTER, 'I1')}`,
    );
  });

  it('carries the secret of the instance it names', () => {
    const url = new URL(instanceWebhookUrl('https://api.example.com/prod', 'INSTANCE2', MASTER));
    expect(url.searchParams.get('secret')).toBe(deriveInstanceSecret(MASTER, 'INSTANCE2'));
    expect(url.pathname).toBe('/prod/instances/INSTANCE2/presence');
  });
});

describe('masterSecretDefect', () => {
  it('has the documented bounds and command', () => {
    expect(MIN_MASTER_LENGTH).toBe(32);
    expect(MAX_MASTER_LENGTH).toBe(512);
    expect(MASTER_SECRET_COMMAND).toBe('openssl rand -hex 32');
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
  ])('says an %s value is empty', (_case, value) => {
    expect(masterSecretDefect(value)).toBe('is empty');
  });

  it.each([1, 31, 513, 1_000])('refuses %s characters, naming the count and the range', (length) => {
    expect(masterSecretDefect('a'.repeat(length))).toBe(
      `holds ${length} characters; a master secret has 32 to 512`,
    );
  });

  it.each([32, 33, 64, 511, 512])('accepts %s characters', (length) => {
    expect(masterSecretDefect('a'.repeat(length))).toBeUndefined();
  });

  it('accepts every character of the alphabet, and what openssl rand -hex 32 prints', () => {
    expect(
      masterSecretDefect('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'),
    ).toBeUndefined();
    expect(
      masterSecretDefect('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'),
    ).toBeUndefined();
  });

  it.each([
    ['a +', `${'a'.repeat(31)}+`],
    ['a /', `/${'a'.repeat(31)}`],
    ['an =', `${'a'.repeat(16)}=${'a'.repeat(16)}`],
    ['a space', `${'a'.repeat(16)} ${'a'.repeat(16)}`],
    ['a trailing newline', `${'a'.repeat(32)}\n`],
    ['a non-ASCII letter', `${'a'.repeat(31)}é`],
    ['a dot', `${'a'.repeat(31)}.`],
    ['a quote', `${'a'.repeat(31)}"`],
  ])('refuses %s', (_case, value) => {
    expect(masterSecretDefect(value)).toBe('holds characters other than letters, digits, - and _');
  });

  it('checks the length before the characters', () => {
    expect(masterSecretDefect(`${'a'.repeat(30)}+`)).toBe(
      'holds 31 characters; a master secret has 32 to 512',
    );
  });
});

describe('masterSecretProblem', () => {
  const PARAMETER = '/zapi-presence/webhook-master';

  it('is undefined for a good master', () => {
    expect(masterSecretProblem(MASTER, PARAMETER)).toBeUndefined();
  });

  it('names the parameter, the defect and the command that stores a good one', () => {
    expect(masterSecretProblem(undefined, PARAMETER)).toBe(
      `SSM parameter ${PARAMETER} is empty; store a good one: aws ssm put-parameter --overwrite --type SecureString --name ${PARAMETER} --value "$(${MASTER_SECRET_COMMAND})"`,
    );
    const problem = masterSecretProblem('short', PARAMETER);
    expect(problem).toContain(`SSM parameter ${PARAMETER} holds 5 characters`);
    expect(problem).toContain('openssl rand -hex 32');
  });

  it.each(['short', `${'s3cr3t'.repeat(6)}+`, `${'very-long-but-bad value '.repeat(3)}`, 'x'.repeat(600)])(
    'never contains the value (%#)',
    (value) => {
      const problem = masterSecretProblem(value, PARAMETER);
      expect(problem).toBeDefined();
      expect(problem).not.toContain(value);
    },
  );

  it('never contains a bad value (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 12, maxLength: 600 }), (value) => {
        const problem = masterSecretProblem(value, PARAMETER);
        if (problem === undefined) {
          expect(masterSecretDefect(value)).toBeUndefined();
          return;
        }
        expect(problem).toContain(PARAMETER);
        expect(problem).toContain(MASTER_SECRET_COMMAND);
        expect(problem).not.toContain(value);
      }),
      { numRuns: 200 },
    );
  });
});
