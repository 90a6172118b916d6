/**
 * URL equivalence (functions/fleet/url.ts): RFC 3986 syntax- and scheme-based normalization, by
 * example and by property (fast-check): every equivalent shape of this endpoint's URL compares equal, and
 * every other path does not; and `isOurs` agrees with what a WHATWG client (`new URL()`) actually
 * requests, over shapes with Unicode whitespace around and inside and odd slashes after the scheme.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify, isOwnEndpoint } from '../../../functions/fleet/reconcile.ts';
import { isOurs, isPlainUrl, normalizedResource, normalizeUrl } from '../../../functions/fleet/url.ts';
import { instanceWebhookPath, instanceWebhookUrl } from '../../../functions/shared/secrets/webhook-secret.ts';

const BASE = 'https://abc123.execute-api.sa-east-1.amazonaws.com';
const MASTER = 'Url_master-secret-0123456789abcdefghijkl';
const ID = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const OURS = instanceWebhookUrl(BASE, ID, MASTER);
const OWN_PATH = instanceWebhookPath(BASE, ID);

describe('normalizeUrl and isOurs', () => {
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
    expect(isOurs(shape, OURS)).toBe(true);
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
    expect(isOurs(shape, OURS)).toBe(false);
    expect(classify(shape, OURS, OWN_PATH)).not.toBe('right');
  });

  // What String.prototype.trim() drops and a client does not: each of these is our endpoint in a shape
  // no client calls as ours (a WHATWG client sends a trailing no-break space as %C2%A0 after the secret,
  // and reads no URL at all behind a leading U+FEFF), or one only a forgiving parser reads as ours.
  it.each([
    ['a trailing no-break space (U+00A0)', `${OURS}\u00a0`, 'stale'],
    ['a leading byte-order mark (U+FEFF)', `\ufeff${OURS}`, 'stale'],
    ['a leading ideographic space (U+3000)', `\u3000${OURS}`, 'stale'],
    ['a trailing line separator (U+2028)', `${OURS}\u2028`, 'stale'],
    ['a trailing paragraph separator (U+2029)', `${OURS}\u2029`, 'stale'],
    ['a no-break space inside the secret', OURS.replace('secret=', 'secret=\u00a0'), 'stale'],
    ['a trailing tab', `${OURS}\t`, 'stale'],
    ['an empty authority: https:///host/...', OURS.replace('https://', 'https:///'), 'stale'],
    ['three slashes and more', OURS.replace('https://', 'https:////'), 'stale'],
    ['one slash: https:/host/...', OURS.replace('https://', 'https:/'), 'stale'],
    ['no authority: https:host/...', OURS.replace('https://', 'https:'), 'stale'],
    ['empty userinfo', OURS.replace('https://', 'https://@'), 'stale'],
    // Another request altogether, even for a WHATWG client: another path, credentials, no host.
    ['an ideographic space inside the path', OURS.replace('/presence', '/\u3000presence'), 'foreign'],
    ['userinfo', OURS.replace('https://', 'https://user@'), 'foreign'],
    [
      'an empty host with a port',
      OURS.replace('abc123.execute-api.sa-east-1.amazonaws.com', ':443'),
      'foreign',
    ],
  ] as const)('%s: not ours, registered again (found as stale or foreign)', (_, shape, found) => {
    expect(isOurs(shape, OURS)).toBe(false);
    expect(classify(shape, OURS, OWN_PATH)).toBe(found);
  });

  it('isPlainUrl: the whole text, from the scheme to the end of the query, and no dot segment at the end either', () => {
    expect(isPlainUrl('https://h.example/a/b?x=1')).toBe(true);
    expect(isPlainUrl('  https://h.example/a  ')).toBe(true);
    expect(isPlainUrl('https://h.example')).toBe(true);
    expect(isPlainUrl('https://h.example:8443?x')).toBe(true);
    for (const shape of [
      '1https://h.example/a', // a scheme starts with a letter
      'https://h.example/a#x', // a fragment
      'https://h.example/a/..', // a dot segment at the end
      'https://h.example/a/.',
      'https://h.example/a/%2e%2E',
      'https://h.example:44x/a', // a port is digits
      'https://:443/a', // no host
      'https://u@h.example/a', // userinfo
      'https://h%2Eexample/a', // an encoded host
      'https://h.example/a b', // a space inside
      'https://h.example\\a',
    ])
      expect(isPlainUrl(shape), shape).toBe(false);
  });

  it('spaces around it, however many, are dropped before anything is compared', () => {
    expect(isOurs(`   ${OURS}   `, OURS)).toBe(true);
    expect(isOurs(`\u00a0 ${OURS}`, OURS)).toBe(false);
  });

  it('two URLs no client can read are not ours, even when they are the same text', () => {
    // Plain, but no WHATWG client reads them (a port above 65535).
    expect(isOurs('https://h.example:99999/p', 'https://h.example:99999/p')).toBe(false);
  });

  it('normalizes userinfo and a fragment too (normalizedResource sees them: it is lenient)', () => {
    expect(normalizeUrl('https://Us%65r:P%61ss@H.example/p?q#a%7eb')).toBe(
      'https://User:Pass@h.example/p?q#a~b',
    );
    expect(normalizeUrl('https://user@h.example/p')).toBe('https://user@h.example/p');
    expect(normalizedResource('https://u:p@h.example/p?q#f')).toBe('https://u:p@h.example/p');
  });

  it('an explicit empty port is the default port', () => {
    expect(isOurs(OURS.replace('.amazonaws.com/', '.amazonaws.com:/'), OURS)).toBe(true);
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
    expect(isOurs('not a url', 'not a url')).toBe(false);
    expect(isOurs(undefined, OURS)).toBe(false);
    expect(isOurs(OURS, `${OURS}\u00a0`)).toBe(false);
    // Exactly what a WHATWG client reads: no trimming of its own.
    expect(normalizeUrl(`${OURS}\u00a0`)).toBe(`${OURS}%C2%A0`);
    expect(normalizeUrl(`\ufeff${OURS}`)).toBeUndefined();
    // Lenient where it only tells this endpoint from another: whitespace around is dropped.
    expect(normalizedResource(`\u3000${OURS}\u00a0`)).toBe(OWN_PATH);
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
        expect(isOurs(equivalent, canonical)).toBe(true);
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
          expect(isOurs(`https://${host}${other}?secret=${secret}`, canonical)).toBe(false);
          expect(isOwnEndpoint(`https://${host}${other}`, `https://${host}${path}`)).toBe(false);
        },
      ),
    );
  });
});

describe('isOurs agrees with what a WHATWG client requests (new URL())', () => {
  /** Percent-encoded unreserved characters decoded, other hex upper-cased: what the receiver reads. */
  const receiverForm = (text: string) =>
    text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
      const c = String.fromCharCode(Number.parseInt(hex, 16));
      return /^[A-Za-z0-9\-._~]$/.test(c) ? c : `%${hex.toUpperCase()}`;
    });
  /** The request a WHATWG client sends for `raw`: scheme, credentials, host and port, path and query. */
  const requested = (raw: string): string | undefined => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return undefined;
    }
    const credentials = url.username || url.password ? `${url.username}:${url.password}@` : '';
    return `${url.protocol}//${credentials}${url.host}${receiverForm(url.pathname)}${receiverForm(url.search)}`;
  };

  /** Whitespace, Unicode's and ASCII's: what `trim()` or a WHATWG parser drops, and what it does not. */
  const WHITESPACE = [
    ' ',
    '\t',
    '\n',
    '\r',
    '\u000b',
    '\u000c',
    '\u0000',
    '\u001f',
    '\u0085',
    '\u00a0',
    '\u1680',
    '\u180e',
    '\u2000',
    '\u2007',
    '\u200a',
    '\u200b',
    '\u2028',
    '\u2029',
    '\u202f',
    '\u205f',
    '\u3000',
    '\ufeff',
  ];
  const SLASHES = ['//', '/', '///', '////', '', '\\\\', '/\\', '\\/'];
  const label = fc
    .tuple(
      fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'),
      fc.array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-'), { maxLength: 8 }),
      fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'),
    )
    .map(([a, b, c]) => a + b.join('') + c);
  const unreserved = fc
    .array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~'), {
      minLength: 1,
      maxLength: 20,
    })
    .map((chars) => chars.join(''));
  const canonical = fc
    .record({ host: fc.array(label, { minLength: 2, maxLength: 4 }), id: unreserved, secret: unreserved })
    .map(({ host, id, secret }) => `https://${host.join('.')}/instances/${id}/presence?secret=${secret}`);

  /** One change to a URL's text, and whether it keeps the URL plain (an RFC 3986 equivalent). */
  type Change = { readonly apply: (url: string) => string; readonly plain: boolean; readonly name: string };
  const at = (url: string, where: number, text: string) => url.slice(0, where) + text + url.slice(where);
  const change: fc.Arbitrary<Change> = fc.oneof(
    // Equivalent shapes: case of the scheme and host, the default port, unreserved characters encoded.
    fc.constant<Change>({
      name: 'upper-case scheme',
      plain: true,
      apply: (u) => u.replace('https:', 'HTTPS:'),
    }),
    fc.constant<Change>({
      name: 'upper-case host',
      plain: true,
      apply: (u) => u.replace(/^([^:]+:\/\/)([^/]+)/, (_, s: string, h: string) => s + h.toUpperCase()),
    }),
    fc.constant<Change>({
      name: ':443',
      plain: true,
      apply: (u) => u.replace(/^([^:]+:\/\/[^/:]+)(?=\/)/, '$1:443'),
    }),
    fc.nat().map<Change>((n) => ({
      name: 'an unreserved character encoded',
      plain: true,
      apply: (u) => {
        const start = u.indexOf('/', u.indexOf('//') + 2) + 1;
        // An unreserved character not already part of a %XX.
        const spots = [...u.slice(start)].flatMap((c, i) =>
          /[A-Za-z0-9]/.test(c) && !u.slice(start + i - 2, start + i).includes('%') ? [start + i] : [],
        );
        if (spots.length === 0) return u;
        const i = spots[n % spots.length] as number;
        const hex = (u.charCodeAt(i) as number).toString(16);
        return `${u.slice(0, i)}%${n % 2 ? hex.toUpperCase() : hex}${u.slice(i + 1)}`;
      },
    })),
    // Whitespace around or inside; slashes after the scheme; other shapes outside plain RFC 3986.
    fc.tuple(fc.constantFrom(...WHITESPACE), fc.nat()).map<Change>(([w, n]) => ({
      name: `whitespace U+${(w.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
      plain: false,
      apply: (u) => at(u, n % (u.length + 1), w),
    })),
    fc.constantFrom(...SLASHES.filter((x) => x !== '//')).map<Change>((slashes) => ({
      name: `"${slashes}" after the scheme`,
      plain: false,
      apply: (u) => u.replace('://', `:${slashes}`),
    })),
    fc.constant<Change>({
      name: 'a trailing slash',
      plain: false,
      apply: (u) => u.replace('/presence?', '/presence/?'),
    }),
    fc.constant<Change>({
      name: 'a dot segment',
      plain: false,
      apply: (u) => u.replace('/presence', '/./presence'),
    }),
    fc.constant<Change>({ name: 'a fragment', plain: false, apply: (u) => `${u}#x` }),
    fc.constant<Change>({ name: 'userinfo', plain: false, apply: (u) => u.replace('://', '://u@') }),
  );

  it('isOurs only where a WHATWG client requests exactly our path and secret; never with whitespace (but spaces around) or odd slashes; always for the equivalent shapes', () => {
    fc.assert(
      fc.property(canonical, fc.array(change, { maxLength: 4 }), (ours, changes) => {
        const shape = changes.reduce((url, c) => c.apply(url), ours);
        const verdict = isOurs(shape, ours);
        // Sound: what we call ours is what the client requests.
        if (verdict) expect(requested(shape)).toBe(requested(ours));
        // Whitespace inside, or around it other than plain spaces, is never ours.
        const inner = shape.replace(/^ +| +$/g, '');
        if (WHITESPACE.some((w) => inner.includes(w))) expect(verdict).toBe(false);
        // Only "://" after the scheme.
        if (!/^[A-Za-z]+:\/\/[^/\\]/.test(inner)) expect(verdict).toBe(false);
        // Complete on the equivalent shapes: every one of them is ours.
        if (changes.every((c) => c.plain)) expect(verdict).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('a trailing no-break space is requested as %C2%A0 after the secret: not ours', () => {
    const ours = `${BASE}/instances/${ID}/presence?secret=abc`;
    expect(requested(`${ours}\u00a0`)).toBe(`${requested(ours)}%C2%A0`);
    expect(isOurs(`${ours}\u00a0`, ours)).toBe(false);
    // An empty authority a WHATWG client forgives (it requests our URL) is still not plain.
    expect(requested(ours.replace('https://', 'https:///'))).toBe(requested(ours));
    expect(isOurs(ours.replace('https://', 'https:///'), ours)).toBe(false);
  });
});
