/**
 * Agent tokens for `npm start`'s twin of the live feed: JWTs signed with HMAC-SHA256 by a key the local
 * server makes at start (never written anywhere), carrying the claims a Cognito access token carries
 * (`sub`, `cognito:groups`, `token_use`, `exp`). The twin's WebSocket and snapshot route accept only
 * these, unexpired; the deployed feed accepts only Cognito's or your issuer's.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const LOCAL_ISSUER = 'zapi-presence-local';

const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** A local agent token whose groups are `groups`, valid for `ttlSeconds`. */
export function issueLocalToken(
  key: Buffer,
  agent: { readonly sub: string; readonly groups: readonly string[] },
  ttlSeconds = 3_600,
  now: () => number = Date.now,
): string {
  const iat = Math.floor(now() / 1_000);
  const header = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64(
    JSON.stringify({
      iss: LOCAL_ISSUER,
      sub: agent.sub,
      username: agent.sub,
      token_use: 'access',
      'cognito:groups': [...agent.groups],
      iat,
      exp: iat + ttlSeconds,
    }),
  );
  const signature = createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** The claims of a valid, unexpired local token (a `Bearer ` prefix is fine); undefined for anything else. */
export function verifyLocalToken(
  key: Buffer,
  token: unknown,
  now: () => number = Date.now,
): Record<string, unknown> | undefined {
  if (typeof token !== 'string' || token.length > 8_192) return undefined;
  const raw = token.startsWith('Bearer ') ? token.slice(7) : token;
  const parts = raw.split('.');
  if (parts.length !== 3) return undefined;
  const [header, payload, signature] = parts as [string, string, string];
  const expected = createHmac('sha256', key).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const head = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown };
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (head.alg !== 'HS256' || claims.iss !== LOCAL_ISSUER) return undefined;
    if (typeof claims.exp !== 'number' || claims.exp * 1_000 <= now()) return undefined;
    return claims;
  } catch {
    return undefined;
  }
}
