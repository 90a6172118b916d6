/**
 * Which instances a helpdesk agent may see: the one rule of the live feed, applied by the feed's
 * `onSubscribe` handler (on AppSync, in the APPSYNC_JS runtime) and by the snapshot route (in Lambda).
 *
 * An agent may read instance I when the groups of its token (`cognito:groups`, or the claim an OIDC issuer
 * lists groups in) contain I itself or {@link ALL_INSTANCES_GROUP}. Nothing else grants access.
 *
 * Written in the subset of JavaScript APPSYNC_JS runs (no regular expressions, no try/catch/throw, no
 * `for(;;)`/`while`, no `++`, no `in`, no classes, no recursion, no
 * function passed as an argument): test/functions/live-feed/subscribe-handler.test.ts parses
 * the shipped handler bundle and fails on anything else. A leaf: no imports.
 */

/** The group whose members may see every instance. */
export const ALL_INSTANCES_GROUP = 'zapi-presence-all';
/** The channel namespace of the live feed: one channel per instance, `/presence/{instanceId}`. */
export const FEED_NAMESPACE = 'presence';
/** The canary's reserved instance (as in the contract): never on the feed, never readable by an agent. */
export const RESERVED_INSTANCE = 'zapi-presence-canary';

const ID_CHARACTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

/** A Z-API instance id as the receiver accepts it (1 to 64 of A-Z a-z 0-9 _ -), written without a RegExp. */
export function isInstanceId(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) return false;
  for (const character of value.split('')) {
    if (!ID_CHARACTERS.includes(character)) return false;
  }
  return true;
}

/** The live-feed channel of an instance. */
export function feedChannel(instanceId: string): string {
  return `/${FEED_NAMESPACE}/${instanceId}`;
}

/**
 * The groups a claim lists, whichever way the token or its carrier wrote them: a JSON array (AppSync's
 * claims, most OIDC issuers), API Gateway's flattening of an array claim (`[a b c]`), a JSON array held in
 * a string, or a string of names separated by commas or spaces. Anything else lists none.
 */
export function groupsFromClaim(value: unknown): string[] {
  if (Array.isArray(value)) {
    const names: string[] = [];
    for (const group of value as unknown[]) {
      if (typeof group === 'string' && group !== '') names.push(group);
    }
    return names;
  }
  if (typeof value !== 'string') return [];
  const text = value.trim();
  if (text.startsWith('[') && text.endsWith(']')) {
    const inner = text.slice(1, -1).trim();
    if (inner.startsWith('"')) return parseJsonArray(text);
    return splitNames(inner);
  }
  return splitNames(text);
}

/**
 * A JSON array of plain names (`["a","b"]`), read by hand: APPSYNC_JS has no try/catch around JSON.parse.
 * A name holding a quote or a backslash makes the whole list unreadable: it lists none.
 */
function parseJsonArray(text: string): string[] {
  const names: string[] = [];
  for (const part of text.slice(1, -1).split(',')) {
    const name = part.trim();
    if (name.length < 2 || !name.startsWith('"') || !name.endsWith('"')) return [];
    const inner = name.slice(1, -1);
    if (inner.includes('"') || inner.includes('\\')) return [];
    if (inner !== '') names.push(inner);
  }
  return names;
}

function splitNames(text: string): string[] {
  const names: string[] = [];
  for (const part of text.split(',')) {
    for (const name of part.split(' ')) {
      if (name !== '') names.push(name);
    }
  }
  return names;
}

/** True when these groups let an agent see this instance (never the canary's, never a malformed id). */
export function mayReadInstance(groups: readonly string[], instanceId: string): boolean {
  if (!isInstanceId(instanceId) || instanceId === RESERVED_INSTANCE) return false;
  return groups.includes(ALL_INSTANCES_GROUP) || groups.includes(instanceId);
}

/** Why a subscription is refused (the reason is logged; the client is only told it is unauthorized). */
export type SubscribeRefusal =
  | 'other-namespace'
  | 'wildcard'
  | 'not-one-instance'
  | 'invalid-instance'
  | 'not-your-instance';

export type SubscribeDecision =
  | { readonly allowed: true; readonly instanceId: string }
  | { readonly allowed: false; readonly reason: SubscribeRefusal };

/**
 * The subscription rule: exactly `/presence/{instanceId}` (two segments, no wildcard), an instance the
 * agent's groups name (or the all-instances group).
 */
export function subscribeDecision(
  namespace: string | undefined,
  path: string | undefined,
  groups: readonly string[],
): SubscribeDecision {
  if (namespace !== FEED_NAMESPACE) return { allowed: false, reason: 'other-namespace' };
  const channel = path ?? '';
  if (channel.includes('*')) return { allowed: false, reason: 'wildcard' };
  // AppSync writes the path with a leading slash (`/presence/I`); without one it is the same channel.
  const segments = (channel.startsWith('/') ? channel.slice(1) : channel).split('/');
  if (segments.length !== 2 || segments[0] !== FEED_NAMESPACE) {
    return { allowed: false, reason: 'not-one-instance' };
  }
  const instanceId = segments[1] ?? '';
  if (!isInstanceId(instanceId) || instanceId === RESERVED_INSTANCE) {
    return { allowed: false, reason: 'invalid-instance' };
  }
  if (!mayReadInstance(groups, instanceId)) return { allowed: false, reason: 'not-your-instance' };
  return { allowed: true, instanceId };
}
