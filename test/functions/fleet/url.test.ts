/**
 * URL equivalence (functions/fleet/url.ts): RFC 3986 syntax- and scheme-based normalization, by
 * example and by property (fast-check): every equivalent shape of this endpoint's URL compares equal, and
 * every other path does not.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify, isOwnEndpoint } from '../../../functions/fleet/reconcile.ts';
import { normalizedResource, normalizeUrl, sameUrl } from '../../../functions/fleet/url.ts';
import { instanceWebhookPath, instanceWebhookUrl } from '../../../functions/shared/secrets/webhook-secret.ts';

const BASE = 'https://abc123.execute-api.sa-east-1.amazonaws.com';
const MASTER = 'Url_master-secret-0123456789abcdefghijkl';
const ID = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const OURS = instanceWebhookUrl(BASE, ID, MASTER);
const OWN_PATH = instanceWebhookPath(BASE, ID);

describe('normalizeUrl and sameUrl', () => {
  it.each([
    [
      'an upper-case scheme and host',
      OURS.replace('https://abc123.execute-api', 'HTTPS://ABC123.Execute-API'),
    ],
    ['an explicit default port', OURS.replace('.amazonaws.com/', '.amazonaws.com:443/')],
    [
      'percent-encoded unreserved characters in the path (lower-case hex)',
      OURS.replace('/presence', '/%70resence'),
    ],
    [
      'percent-encoded unreserved characters in the secret (upper- and lower-case hex)',
      OURS.replace(/secret=(.)(.)/, (_, a: string, b: string) => {
        const hex = (c: string) => c.charCodeAt(0).toString(16);
        return `secret=%${hex(a).toUpperCase()}%${hex(b).toLowerCase()}`;
      }),
    ],
    [
      'the secret every character percent-encoded',
      OURS.replace(
        /secret=(.*)$/,
        (_, secret: string) =>
          `secret=${[...secret].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('')}`,
      ),
    ],
    ['surrounding spaces', ` ${OURS} `],
  ])('%s is the same URL', (_, shape) => {
    expect(sameUrl(shape, OURS)).toBe(true);
    expect(classify(shape, OURS, OWN_PATH)).toBe('right');
  });

  it.each([
    ['a trailing slash', OURS.replace('/presence?', '/presence/?')],
    ['another route', OURS.replace('/presence?', '/presencex?')],
    ['upper-case path', OURS.replace('/presence?', '/Presence?')],
    ['another secret', `${OWN_PATH}?secret=other`],
    ['no secret', OWN_PATH],
    ['http', OURS.replace('https://', 'http://')],
    ['another port', OURS.replace('.amazonaws.com/', '.amazonaws.com:8443/')],
    ['an encoded reserved character (%2F is not /)', OURS.replace('/instances/', '/instances%2F')],
    ['another host', OURS.replace('abc123', 'abc124')],
    // Outside RFC 3986: what a forgiving parser would read as ours, another client might not.
    ['a percent-encoded host', OURS.replace('abc123', '%61bc123')],
    ['a dot segment', OURS.replace('/instances/', '/x/../instances/')],
    ['an encoded dot segment', OURS.replace('/instances/', '/x/%2e%2E/instances/')],
    ['a backslash for a slash', OURS.replace('/instances/', '\\instances/')],
    ['a tab in the path', OURS.replace('/presence?', '/pres\tence?')],
    ['a line break in the query', `${OURS}\r\n`.replace('?secret=', '?\r\nsecret=')],
    ['an empty fragment', `${OURS}#`],
    ['a fragment', `${OURS}#x`],
    ['a soft hyphen in the host', OURS.replace('abc123', 'abc\u00ad123')],
    ['full-width letters in the host', OURS.replace('abc123', '\uff41bc123')],
  ])('%s is not the same URL', (_, shape) => {
    expect(sameUrl(shape, OURS)).toBe(false);
    expect(classify(shape, OURS, OWN_PATH)).not.toBe('right');
  });

  it('keeps this endpoint under equivalent shapes stale (re-registered), not foreign', () => {
    const shape = `${OWN_PATH.replace('https://abc123', 'HTTPS://ABC123').replace('.com/', '.com:443/')}?secret=old`;
    expect(classify(shape, OURS, OWN_PATH)).toBe('stale');
    expect(isOwnEndpoint(shape, OWN_PATH)).toBe(true);
    expect(isOwnEndpoint(`${OWN_PATH}/`, OWN_PATH)).toBe(false);
  });

  it('writes other percent-encodings with upper-case hex, and leaves unparsable text alone', () => {
    expect(normalizeUrl('https://h.example/a%2fb?x=%c3%a9')).toBe('https://h.example/a%2Fb?x=%C3%A9');
    expect(normalizeUrl('https://h.example')).toBe('https://h.example/');
    expect(normalizeUrl('http://H.Example:80/p')).toBe('http://h.example/p');
    expect(normalizeUrl('not a url')).toBeUndefined();
    expect(sameUrl('not a url', 'not a url')).toBe(false);
    expect(sameUrl(undefined, OURS)).toBe(false);
    expect(normalizedResource(`${OURS}#frag`)).toBe(OWN_PATH);
    expect(normalizedResource('::')).toBeUndefined();
  });
});

describe('URL equivalence by property', () => {
  const UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
  const unreservedText = fc
    .array(fc.constantFrom(...UNRESERVED), { minLength: 1, maxLength: 24 })
    .map((chars) => chars.join(''));
  // A label starting with a letter (a last label of digits would make an IPv4 address).
  const hostLabel = fc
    .tuple(
      fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'),
      fc.array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), { maxLength: 11 }),
    )
    .map(([first, rest]) => first + rest.join(''));
  /** An https URL of this endpoint's shape: a host, a path of unreserved segments, a secret. */
  const url = fc
    .record({
      host: fc.array(hostLabel, { minLength: 2, maxLength: 4 }),
      // Never a `.` or `..` segment: this endpoint's paths have none, and a URL with one is never ours.
      path: fc.array(
        unreservedText.filter((segment) => segment !== '.' && segment !== '..'),
        { minLength: 1, maxLength: 4 },
      ),
      secret: unreservedText,
    })
    .map(({ host, path, secret }) => ({ host: host.join('.'), path: `/${path.join('/')}`, secret }));

  /** Percent-encodes some characters (chosen by `mask`), in upper- or lower-case hex. */
  const encodeSome = (text: string, mask: readonly boolean[], upper: readonly boolean[]) =>
    [...text]
      .map((c, i) => {
        if (c === '/' || !mask[i % mask.length]) return c;
        const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
        return `%${upper[i % upper.length] ? hex.toUpperCase() : hex}`;
      })
      .join('');

  const shapes = fc.record({
    upperScheme: fc.boolean(),
    hostCase: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
    port: fc.boolean(),
    mask: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
    upper: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
  });

  it('every equivalent shape (scheme and host case, :443, unreserved characters percent-encoded) is the same URL', () => {
    fc.assert(
      fc.property(url, shapes, ({ host, path, secret }, shape) => {
        const canonical = `https://${host}${path}?secret=${secret}`;
        const scheme = shape.upperScheme ? 'HTTPS' : 'https';
        const casedHost = [...host]
          .map((c, i) => (shape.hostCase[i % shape.hostCase.length] ? c.toUpperCase() : c))
          .join('');
        const equivalent = `${scheme}://${casedHost}${shape.port ? ':443' : ''}${encodeSome(path, shape.mask, shape.upper)}?secret=${encodeSome(secret, shape.upper, shape.mask)}`;
        expect(sameUrl(equivalent, canonical)).toBe(true);
        expect(normalizeUrl(equivalent)).toBe(normalizeUrl(canonical));
        // Normalizing is idempotent.
        const once = normalizeUrl(equivalent) as string;
        expect(normalizeUrl(once)).toBe(once);
      }),
    );
  });

  it('a different path (a trailing slash, a segment more or changed) is never the same URL', () => {
    fc.assert(
      fc.property(
        url,
        fc.oneof(
          fc.constant('slash'),
          fc.constant('segment'),
          unreservedText.map((t) => `replace:${t}`),
        ),
        ({ host, path, secret }, change) => {
          const canonical = `https://${host}${path}?secret=${secret}`;
          let other: string;
          if (change === 'slash') other = `${path}/`;
          else if (change === 'segment') other = `${path}/x`;
          else {
            const replacement = change.slice('replace:'.length);
            fc.pre(replacement !== path.slice(1));
            other = `/${replacement}`;
          }
          fc.pre(other !== path);
          expect(sameUrl(`https://${host}${other}?secret=${secret}`, canonical)).toBe(false);
          expect(isOwnEndpoint(`https://${host}${other}`, `https://${host}${path}`)).toBe(false);
        },
      ),
    );
  });
});
