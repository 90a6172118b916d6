/**
 * URL equivalence per RFC 3986 section 6.2.2 (syntax-based normalization) and 6.2.3 (scheme-based):
 * the scheme and the host compare case-insensitively, a default port (`:443` on https, `:80` on http)
 * is the same as none, an empty path is `/`, and a percent-encoded unreserved character (`%41`, `%7e`,
 * `%7E`) is the character itself; other percent-encodings compare with upper-case hex. Nothing else is
 * equivalent: a trailing slash, another path, another query string stay different, and so does any shape
 * outside RFC 3986 (a dot segment, a backslash, a fragment, an encoded host, an empty authority, any
 * whitespace but plain spaces around it: see isPlainUrl).
 *
 * Z-API echoes back the URL it stores, and may report ours with an upper-case host, an explicit `:443`
 * or the secret's characters percent-encoded; the receiver accepts all of these, so the reconciler must
 * too (reconcile, release, the confirming GET after a PUT, reports). What decides is the request a
 * client sends for the URL Z-API holds: {@link isOurs} is true only when a WHATWG client (`new URL()`,
 * Node's fetch) requests exactly our path and secret, and the URL is plain enough that no other client
 * could read it another way. A URL with a no-break space after the secret (`String.prototype.trim`
 * removes it, a WHATWG client sends it as `%C2%A0`) is not ours.
 */

/** RFC 3986 section 2.3. */
// Stryker disable next-line Regex: equivalent, it is only ever tested on one character (the anchors change nothing).
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Decodes percent-encoded unreserved characters and upper-cases the hex of the others. */
function normalizePercent(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
}

/**
 * The normal form of what a WHATWG client requests for `raw` (`new URL(raw)`, exactly as given: the
 * parser itself drops surrounding ASCII spaces and control characters, nothing else), or undefined when
 * such a client reads no URL in it. Two URLs are equivalent when their normal forms are equal.
 */
export function normalizeUrl(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  // WHATWG URL parsing already lower-cases the scheme and the host, drops a default port, decodes a
  // percent-encoded host and turns an empty http(s) path into `/`. What is left is the percent-encoding
  // of the path, the query and the fragment (it keeps those as they came).
  const userinfo =
    url.username || url.password ? `${url.username}${url.password ? `:${url.password}` : ''}@` : '';
  const query = (url.href.split('#', 1)[0] as string).includes('?')
    ? `?${normalizePercent(url.search.slice(1))}`
    : '';
  const fragment = url.hash ? `#${normalizePercent(url.hash.slice(1))}` : '';
  return `${url.protocol}//${normalizePercent(userinfo)}${url.host}${normalizePercent(url.pathname)}${query}${fragment}`;
}

/**
 * A plain URL: a scheme, `://`, an authority that is a host name (no userinfo, nothing percent-encoded)
 * with an optional port, then a path and query of characters RFC 3986 allows (section 2); no fragment
 * (Z-API has no use for one).
 */
const PLAIN_URL =
  /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[A-Za-z0-9\-._~!$&'()*+,;=]+(?::\d*)?(?:[/?][A-Za-z0-9\-._~:/?@!$&'()*+,;=%[\]]*)?$/;
/** A `.` or `..` path segment, raw or percent-encoded. */
const DOT_SEGMENT = /\/(?:\.|%2[eE]){1,2}(?=[/?]|$)/;

/** Plain spaces (U+0020) around a URL, which every client drops; no other character is dropped. */
const stripSpaces = (raw: string) => raw.replace(/^ +| +$/g, '');

/**
 * True when the URL is plain RFC 3986, as Z-API's client could read it only one way: none of what the
 * WHATWG parser forgives (backslashes, tabs and line breaks, dot segments, a non-ASCII or
 * percent-encoded host, an empty host or authority, userinfo, a fragment), and no whitespace but plain
 * spaces around it (a no-break space, a byte-order mark, an ideographic space or a line separator, around
 * it or inside, is not plain: `trim()` would drop it, a client would not).
 */
export function isPlainUrl(raw: string): boolean {
  const text = stripSpaces(raw);
  return PLAIN_URL.test(text) && !DOT_SEGMENT.test(text.split('?', 1)[0] as string);
}

/**
 * True when `current` (the URL Z-API holds) is ours: a plain URL (see {@link isPlainUrl}) that a WHATWG
 * client requests as exactly `expected` (see {@link normalizeUrl}); false for anything else, which is
 * re-registered.
 */
export function isOurs(current: string | undefined, expected: string): boolean {
  if (current === undefined || !isPlainUrl(current) || !isPlainUrl(expected)) return false;
  const ours = normalizeUrl(stripSpaces(current));
  return ours !== undefined && ours === normalizeUrl(expected);
}

/**
 * The URL without its query string and fragment, normalized; undefined when it is not a URL. Lenient on
 * purpose: whitespace around it (Unicode's too) is dropped, so that our own endpoint in a shape no client
 * would call (a trailing no-break space) is still recognized as ours, to be registered again (stale), or
 * released, rather than taken for another tool's.
 */
export function normalizedResource(raw: string): string | undefined {
  const normal = normalizeUrl(raw.trim());
  return normal === undefined ? undefined : (normal.split(/[?#]/, 1)[0] as string);
}
