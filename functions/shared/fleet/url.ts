/**
 * URL equivalence per RFC 3986 section 6.2.2 (syntax-based normalization) and 6.2.3 (scheme-based):
 * the scheme and the host compare case-insensitively, a default port (`:443` on https, `:80` on http)
 * is the same as none, an empty path is `/`, and a percent-encoded unreserved character (`%41`, `%7e`,
 * `%7E`) is the character itself; other percent-encodings compare with upper-case hex. Nothing else is
 * equivalent: a trailing slash, another path, another query string stay different.
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

/** True when both are URLs and equivalent (see {@link normalizeUrl}); false for anything unparsable. */
export function sameUrl(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const left = normalizeUrl(a);
  return left !== undefined && left === normalizeUrl(b);
}

/** The URL without its query string and fragment, normalized; undefined when it is not a URL. */
export function normalizedResource(raw: string): string | undefined {
  const normal = normalizeUrl(raw);
  return normal === undefined ? undefined : (normal.split(/[?#]/, 1)[0] as string);
}
