/**
 * THE contract between Z-API, the receiver and every subscriber.
 *
 * Imported by the receiver Lambda (to validate and publish) and by the CDK code in lib/ (to build rule
 * patterns and the published JSON Schema), so the two can never disagree.
 */
import * as v from 'valibot';

/** Every chat-presence status, exactly as Z-API sends it. */
export const PRESENCE_STATUSES = ['UNAVAILABLE', 'AVAILABLE', 'COMPOSING', 'RECORDING', 'PAUSED'] as const;
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];

/**
 * A Z-API instance id as it appears in the webhook path: short, letters, digits, `-` and `_` (which also
 * keeps it safe in URLs, SSM parameter names and construct ids).
 */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The `type` Z-API puts on every chat-presence callback. */
export const CALLBACK_TYPE = 'PresenceChatCallback';

/** EventBridge `source` of every event this project publishes. */
export const EVENT_SOURCE = 'zapi.chat-presence';

/**
 * The canary's instance id. Z-API instance ids are 32 upper-case hex digits, so this one (lower case,
 * with dashes) can never be a real instance: the fleet never registers it at Z-API, and the receiver
 * publishes its callbacks under {@link CANARY_EVENT_SOURCE}, never {@link EVENT_SOURCE}.
 */
export const CANARY_INSTANCE_ID = 'zapi-presence-canary';

/**
 * EventBridge `source` of the canary's callbacks (detail-types as for any callback). No rule on
 * {@link EVENT_SOURCE} matches it: EventBridge matches `source` exactly unless a rule uses `prefix`.
 */
export const CANARY_EVENT_SOURCE = 'zapi.chat-presence.canary';

/** Common prefix of every detail-type, for rules that want every status (`prefix` matching). */
export const DETAIL_TYPE_PREFIX = 'Z-API Chat Presence ' as const;

/** EventBridge `detail-type` per status: one per status, each naming it. */
export const DETAIL_TYPES = Object.freeze({
  UNAVAILABLE: `${DETAIL_TYPE_PREFIX}UNAVAILABLE`,
  AVAILABLE: `${DETAIL_TYPE_PREFIX}AVAILABLE`,
  COMPOSING: `${DETAIL_TYPE_PREFIX}COMPOSING`,
  RECORDING: `${DETAIL_TYPE_PREFIX}RECORDING`,
  PAUSED: `${DETAIL_TYPE_PREFIX}PAUSED`,
} as const) satisfies Readonly<Record<PresenceStatus, `${typeof DETAIL_TYPE_PREFIX}${PresenceStatus}`>>;

/** The detail-type of a status, as a type: `DetailType<'COMPOSING'>` is `'Z-API Chat Presence COMPOSING'`. */
export type DetailType<S extends PresenceStatus = PresenceStatus> = (typeof DETAIL_TYPES)[S];

/** What each status means, for documentation and the schema. */
// PURE: the receiver's bundle leaves out what it does not use.
export const STATUS_DESCRIPTIONS: Readonly<Record<PresenceStatus, string>> = /* @__PURE__ */ Object.freeze({
  UNAVAILABLE: 'The contact left the chat (offline or app in background).',
  AVAILABLE: 'The contact is in the chat.',
  COMPOSING: 'The contact is typing.',
  RECORDING: 'The contact is recording audio (multi-device instances only).',
  PAUSED: 'The contact stopped typing or recording (multi-device instances only).',
});

/**
 * A Z-API `PresenceChatCallback` body.
 *
 * Unknown fields are kept (group presence carries participant data, chat names and photos that Z-API
 * does not document). What goes on the bus is {@link canonicalDetail} of the validated output: exactly
 * what was validated, never the raw text (see there).
 */
export const PresenceCallbackSchema = v.looseObject({
  type: v.pipe(
    v.literal(CALLBACK_TYPE, `must be "${CALLBACK_TYPE}"`),
    v.description('Z-API event type; always "PresenceChatCallback".'),
  ),
  phone: v.pipe(
    v.string('must be a string'),
    v.nonEmpty('must not be empty'),
    v.description('The chat: a phone number, a group id ("...-group") or an "@lid" id.'),
  ),
  status: v.pipe(
    v.picklist(PRESENCE_STATUSES, `must be one of ${PRESENCE_STATUSES.join(', ')}`),
    v.description('The chat presence status.'),
  ),
  lastSeen: v.optional(
    v.pipe(
      v.nullable(v.pipe(v.number('must be a number or null'), v.finite('must be a finite number'))),
      v.description('When the contact was last seen (epoch number), or null.'),
    ),
  ),
  instanceId: v.pipe(
    v.string('must be a string'),
    v.nonEmpty('must not be empty'),
    v.description('The Z-API instance that received the presence.'),
  ),
});

/** A validated callback (unknown fields included). */
export type PresenceCallback = v.InferOutput<typeof PresenceCallbackSchema>;

/**
 * The `detail` of every presence event: the validated callback, plus `receivedAt`, set by the receiver
 * (never taken from Z-API: a `receivedAt` in the body is replaced). It orders one chat's events within a
 * second, which EventBridge's `time` (whole seconds) cannot.
 */
export const PresenceDetailSchema = v.looseObject({
  ...PresenceCallbackSchema.entries,
  receivedAt: v.pipe(
    v.number('must be a number'),
    v.integer('must be a whole number'),
    v.description(
      "When the receiver received the callback (epoch milliseconds; API Gateway's request time). Set by the receiver, never taken from Z-API.",
    ),
  ),
});

/**
 * The detail published for a validated callback received at `receivedAt` (epoch ms): the documented
 * fields, then `receivedAt`, then the others in the order received (a `receivedAt` of the body dropped).
 */
export function stampedDetail(callback: PresenceCallback, receivedAt: number): PresenceEventDetail {
  const {
    type,
    phone,
    status,
    lastSeen,
    instanceId,
    receivedAt: _fromTheBody,
    ...rest
  } = callback as PresenceCallback & { receivedAt?: unknown };
  return {
    type,
    phone,
    status,
    ...(lastSeen !== undefined && { lastSeen }),
    instanceId,
    receivedAt,
    ...rest,
  } as PresenceEventDetail;
}

/**
 * The `detail` text published for a validated callback: its canonical JSON. The raw body is never
 * published, because what a JSON reader makes of odd text depends on the reader: with duplicate keys
 * JSON.parse keeps the last value where others keep the first, and numbers beyond double range become
 * Infinity. Re-serializing the validated value means every consumer reads exactly what was validated:
 * one value per key (the last, as validated), documented fields first, numbers in their shortest form,
 * and the top-level keys `__proto__`, `constructor` and `prototype` left out (inside other fields they
 * are kept as plain data, as JSON.parse made them).
 */
export function canonicalDetail(callback: PresenceCallback | PresenceEventDetail): string {
  // An unpaired surrogate outside the documented fields (a chat name cut in the middle of an emoji, say)
  // is not refused: it becomes U+FFFD, so the event is one every UTF-8 reader takes. JSON.stringify
  // writes such a surrogate, and only such a one, as a `\udXXX` escape.
  const text = JSON.stringify(callback);
  return text.includes('\\u') ? text.replace(LONE_SURROGATE_ESCAPE, '$1\\ufffd') : text;
}

/** A `\uD800`-`\uDFFF` escape that is not itself escaped (an even number of backslashes before it). */
const LONE_SURROGATE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u[dD][89a-fA-F][0-9a-fA-F]{2}/g;

/** The documented text fields: in these, text that is not well-formed Unicode is refused. */
const WELL_FORMED_FIELDS = new Set(['type', 'phone', 'status', 'instanceId']);

/**
 * The largest `detail` published, in UTF-8 bytes: EventBridge takes entries of at most 256 KB (detail,
 * detail-type, source and the rest together); 1 KiB is left for the rest.
 */
export const MAX_DETAIL_BYTES = 256 * 1024 - 1024;

/** Deepest nesting accepted in a callback (Z-API's are 2 levels deep; this bounds every walk of it). */
export const MAX_JSON_DEPTH = 32;

/** What is wrong with a parsed JSON value beyond its schema: the dotted path of the first problem. */
export type JsonProblem = {
  readonly kind: 'non-finite' | 'too-deep' | 'ill-formed';
  readonly path: string;
};

/** An unpaired UTF-16 surrogate (`"\ud800"` in JSON): text no UTF-8 reader can take. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Finds a number JSON cannot carry (`1e309` parses to Infinity), a documented text field that is not
 * well-formed Unicode (an unpaired surrogate escape: valid JSON, but `jq`, Python and UTF-8 stores
 * refuse or mangle it; elsewhere one is replaced, see {@link canonicalDetail}), or nesting deeper than
 * {@link MAX_JSON_DEPTH}, without recursion (a hostile body cannot exhaust the stack).
 */
export function jsonProblem(value: unknown): JsonProblem | undefined {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { value: item, path, depth } = stack.pop() as { value: unknown; path: string; depth: number };
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) return { kind: 'non-finite', path: path || '(body)' };
      continue;
    }
    if (typeof item === 'string') {
      if (WELL_FORMED_FIELDS.has(path) && LONE_SURROGATE.test(item)) return { kind: 'ill-formed', path };
      continue;
    }
    if (typeof item !== 'object' || item === null) continue;
    if (depth >= MAX_JSON_DEPTH) return { kind: 'too-deep', path: path || '(body)' };
    const entries = Object.entries(item);
    // In reverse, so the first problem in document order is found first.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i] as [string, unknown];
      const name = key === '' ? '""' : key;
      stack.push({ value: child, path: path === '' ? name : `${path}.${name}`, depth: depth + 1 });
    }
  }
  return undefined;
}

/** The dotted path of the first number that is not finite, or undefined (see {@link jsonProblem}). */
export function nonFiniteNumberPath(value: unknown): string | undefined {
  const problem = jsonProblem(value);
  return problem?.kind === 'non-finite' ? problem.path : undefined;
}

/** The `detail` of every event on the bus: the validated callback and the receiver's `receivedAt`. */
export type PresenceEventDetail = PresenceCallback & { readonly receivedAt: number };

/** An EventBridge event as a subscriber (a Lambda target, say) receives it. */
export interface PresenceEvent<S extends PresenceStatus = PresenceStatus> {
  readonly version: string;
  readonly id: string;
  readonly 'detail-type': DetailType<S>;
  readonly source: typeof EVENT_SOURCE;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: PresenceEventDetail & { readonly status: S };
}

/** The detail-type for a status. */
export function detailTypeFor<S extends PresenceStatus>(status: S): DetailType<S> {
  return DETAIL_TYPES[status];
}

/** The EventBridge event pattern matching the given statuses (every status when none are given). */
export function presenceEventPattern(statuses: readonly PresenceStatus[] = []): {
  source: string[];
  'detail-type': Array<string | { prefix: string }>;
} {
  const unique = [...new Set(statuses)];
  for (const status of unique) {
    if (!PRESENCE_STATUSES.includes(status)) {
      throw new Error(
        `Unknown presence status "${String(status)}"; use one of ${PRESENCE_STATUSES.join(', ')}.`,
      );
    }
  }
  return {
    source: [EVENT_SOURCE],
    'detail-type': unique.length === 0 ? [{ prefix: DETAIL_TYPE_PREFIX }] : unique.map(detailTypeFor),
  };
}

/**
 * The member of a group chat a callback is about: `participantPhone`, else `participant`, else
 * `participantLid` (Z-API does not document them; seen in group presence). Undefined for a direct chat.
 */
export function participantOf(detail: Record<string, unknown>): string | undefined {
  for (const field of ['participantPhone', 'participant', 'participantLid']) {
    const value = detail[field];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return undefined;
}

// --- Derived events (the optional presence store, functions/presence-store/presence-state.ts) -------------

/**
 * EventBridge `source` of the events derived from presence changes. A source of their own, so rules on
 * raw presence (`source: zapi.chat-presence`) never receive them.
 */
export const DERIVED_EVENT_SOURCE = 'zapi.chat-presence.state';

/** EventBridge `detail-type` per derived event. */
export const DERIVED_DETAIL_TYPES = /* @__PURE__ */ Object.freeze({
  activityStarted: 'Z-API Chat Activity Started',
  activityStopped: 'Z-API Chat Activity Stopped',
  cameOnline: 'Z-API Chat Came Online',
  wentOffline: 'Z-API Chat Went Offline',
} as const);
export type DerivedDetailType = (typeof DERIVED_DETAIL_TYPES)[keyof typeof DERIVED_DETAIL_TYPES];

/** The pattern of the given derived events (all of them when none are given). */
export function derivedEventPattern(detailTypes: readonly DerivedDetailType[] = []): {
  source: string[];
  'detail-type': string[];
} {
  const all = Object.values(DERIVED_DETAIL_TYPES) as DerivedDetailType[];
  for (const type of detailTypes) {
    if (!all.includes(type))
      throw new Error(`Unknown derived event "${String(type)}"; use one of ${all.join(', ')}.`);
  }
  return {
    source: [DERIVED_EVENT_SOURCE],
    'detail-type': detailTypes.length === 0 ? all : [...new Set(detailTypes)],
  };
}
