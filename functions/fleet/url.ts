/**
 * URL equivalence per RFC 3986 section 6.2.2 (syntax-based normalization) and 6.2.3 (scheme-based):
 * the scheme and the host compare case-insensitively, a default port (`:443` on https, `:80` on http)
 * is the same as none, an empty path is `/`, and a percent-encoded unreserved character (`%41`, `%7e`,
 * `%7E`) is the character itself; other percent-encodings compare with upper-case hex. Nothing else is
 * equivalent: a trailing slash, another path, another query string stay different, and so does any shape
 * outside RFC 3986 (a dot segment, a backslash, a fragment, an encoded host: see isPlainUrl).
 *
 * Z-API echoes back the URL it stores, and may report ours with an upper-case host, an explicit `:443`
 * or the secret's characters percent-encoded; the receiver accepts all of these, so the reconciler must
 * too (reconcile, release, the confirming GET after a PUT, reports).
 */

/** RFC 3986 section 2.3. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Decodes percent-encoded unreserved characters and upper-cases the hex of the others. */
function normalizePercent(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
}

/**
 * The normal form of an absolute URL, or undefined when it is not one. Two URLs are equivalent when
 * their normal forms are equal.
 */
export function normalizeUrl(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw.trim());
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

/** Every character RFC 3986 allows in a URL (section 2), without a fragment (Z-API has no use for one). */
const RFC3986_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[A-Za-z0-9\-._~:/?@!$&'()*+,;=%[\]]*$/;
/** A `.` or `..` path segment, raw or percent-encoded. */
const DOT_SEGMENT = /\/(?:\.|%2[eE]){1,2}(?=[/?]|$)/;

/**
 * True when the URL is plain RFC 3986, as Z-API's client could read it only one way: none of what the
 * WHATWG parser forgives (backslashes, tabs and line breaks, dot segments, a non-ASCII or
 * percent-encoded host, a fragment). Surrounding spaces are not counted.
 */
export function isPlainUrl(raw: string): boolean {
  const text = raw.trim();
  if (!RFC3986_URL.test(text) || DOT_SEGMENT.test(text.split('?', 1)[0] as string)) return false;
  const host = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^@/?]*@)?([^/?]*)/.exec(text)?.[1] ?? '';
  return !host.includes('%');
}

/**
 * True when both are plain URLs (see {@link isPlainUrl}) and equivalent (see {@link normalizeUrl});
 * false for anything else: a shape outside RFC 3986 is never taken for ours (it is re-registered).
 */
export function sameUrl(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || !isPlainUrl(a) || !isPlainUrl(b)) return false;
  const left = normalizeUrl(a);
  return left !== undefined && left === normalizeUrl(b);
}

/** The URL without its query string and fragment, normalized; undefined when it is not a URL. */
export function normalizedResource(raw: string): string | undefined {
  const normal = normalizeUrl(raw);
  return normal === undefined ? undefined : (normal.split(/[?#]/, 1)[0] as string);
}
