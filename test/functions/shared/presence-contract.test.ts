import fc from 'fast-check';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  CALLBACK_TYPE,
  canonicalDetail,
  DETAIL_TYPE_PREFIX,
  DETAIL_TYPES,
  detailTypeFor,
  EVENT_SOURCE,
  INSTANCE_ID_PATTERN,
  jsonProblem,
  MAX_JSON_DEPTH,
  nonFiniteNumberPath,
  PRESENCE_STATUSES,
  PresenceCallbackSchema,
  presenceEventPattern,
  STATUS_DESCRIPTIONS,
} from '../../../functions/shared/contract/presence-contract.ts';
import groupPresence from '../../fixtures/group-presence.json' with { type: 'json' };
import docsExamples from '../../fixtures/zapi-docs-examples.json' with { type: 'json' };

const valid = {
  type: CALLBACK_TYPE,
  phone: '5544999999999',
  status: 'COMPOSING',
  lastSeen: null,
  instanceId: 'I1',
};

const issuesOf = (input: unknown) =>
  (v.safeParse(PresenceCallbackSchema, input).issues ?? []).map((issue) => ({
    field: v.getDotPath(issue),
    message: issue.message,
  }));

describe('public contract values', () => {
  // These strings are what subscribers' rules match on: changing one breaks every subscriber.
  it('pins the callback type, the event source and the detail-types', () => {
    expect(CALLBACK_TYPE).toBe('PresenceChatCallback');
    expect(EVENT_SOURCE).toBe('zapi.chat-presence');
    expect(DETAIL_TYPE_PREFIX).toBe('Z-API Chat Presence ');
    expect(PRESENCE_STATUSES).toEqual(['UNAVAILABLE', 'AVAILABLE', 'COMPOSING', 'RECORDING', 'PAUSED']);
    expect(DETAIL_TYPES).toEqual({
      UNAVAILABLE: 'Z-API Chat Presence UNAVAILABLE',
      AVAILABLE: 'Z-API Chat Presence AVAILABLE',
      COMPOSING: 'Z-API Chat Presence COMPOSING',
      RECORDING: 'Z-API Chat Presence RECORDING',
      PAUSED: 'Z-API Chat Presence PAUSED',
    });
  });

  it('freezes the per-status tables', () => {
    expect(Object.isFrozen(DETAIL_TYPES)).toBe(true);
    expect(Object.isFrozen(STATUS_DESCRIPTIONS)).toBe(true);
  });

  it('describes every status, each differently', () => {
    expect(Object.keys(STATUS_DESCRIPTIONS).sort()).toEqual([...PRESENCE_STATUSES].sort());
    const descriptions = PRESENCE_STATUSES.map((status) => STATUS_DESCRIPTIONS[status]);
    for (const description of descriptions) expect(description.length).toBeGreaterThan(10);
    expect(new Set(descriptions).size).toBe(PRESENCE_STATUSES.length);
    expect(STATUS_DESCRIPTIONS.COMPOSING).toMatch(/typing/);
    expect(STATUS_DESCRIPTIONS.RECORDING).toMatch(/recording/);
  });

  it('describes every documented field of the schema', () => {
    const { entries } = PresenceCallbackSchema;
    const descriptions = [
      v.getDescription(entries.type),
      v.getDescription(entries.phone),
      v.getDescription(entries.status),
      v.getDescription(entries.lastSeen.wrapped),
      v.getDescription(entries.instanceId),
    ];
    for (const description of descriptions) expect(description?.length ?? 0).toBeGreaterThan(10);
    expect(new Set(descriptions).size).toBe(descriptions.length);
    expect(descriptions[0]).toContain(CALLBACK_TYPE);
  });
});

describe('INSTANCE_ID_PATTERN', () => {
  it.each(['I1', 'a', '3C01A5B2E0F4D8E1A2B3C4D5E6F7A8B9', 'with-dash_and_underscore', 'x'.repeat(64)])(
    'accepts %s',
    (id) => {
      expect(INSTANCE_ID_PATTERN.test(id)).toBe(true);
    },
  );

  it.each([
    ['empty', ''],
    ['65 characters', 'x'.repeat(65)],
    ['a dot', 'instance.id'],
    ['a slash', 'a/b'],
    ['a leading slash', '/ab'],
    ['a trailing slash', 'ab/'],
    ['a space', 'a b'],
    ['a trailing newline', 'ab\n'],
    ['a percent escape', 'a%2Fb'],
    ['a non-ASCII letter', 'instância'],
    ['a query', 'ab?secret=x'],
  ])('refuses %s', (_case, id) => {
    expect(INSTANCE_ID_PATTERN.test(id)).toBe(false);
  });
});

describe('PresenceCallbackSchema', () => {
  it.each(Object.entries(docsExamples))('accepts the Z-API docs example for %s', (status, example) => {
    const result = v.safeParse(PresenceCallbackSchema, example);
    expect(result.success).toBe(true);
    expect(result.output).toEqual(example);
    expect((result.output as { status: string }).status).toBe(status);
  });

  it('covers every status in the docs examples', () => {
    expect(Object.keys(docsExamples).sort()).toEqual([...PRESENCE_STATUSES].sort());
  });

  it('keeps fields it does not know (group presence)', () => {
    const result = v.safeParse(PresenceCallbackSchema, groupPresence);
    expect(result.success).toBe(true);
    expect(result.output).toEqual(groupPresence);
  });

  it.each([
    ['plain number', '5544999999999'],
    ['group id', '120363019502650977-group'],
    ['lid id', '123456789012345@lid'],
  ])('accepts a phone that is a %s', (_kind, phone) => {
    expect(v.safeParse(PresenceCallbackSchema, { ...valid, phone }).success).toBe(true);
  });

  it.each([
    ['null', null],
    ['an epoch number', 1732540000],
    ['zero', 0],
    ['a fraction', 1732540000.5],
    ['absent', undefined],
  ])('accepts lastSeen %s', (_kind, lastSeen) => {
    const body: Record<string, unknown> = { ...valid, lastSeen };
    if (lastSeen === undefined) delete body.lastSeen;
    const result = v.safeParse(PresenceCallbackSchema, body);
    expect(result.success).toBe(true);
    expect(result.output).toEqual(body);
  });

  it.each(PRESENCE_STATUSES)('accepts status %s', (status) => {
    expect(v.safeParse(PresenceCallbackSchema, { ...valid, status }).success).toBe(true);
  });

  it.each([
    ['type', { type: 'ReceivedCallback' }],
    ['type', { type: undefined }],
    ['phone', { phone: '' }],
    ['phone', { phone: 5544999999999 }],
    ['status', { status: 'composing' }],
    ['status', { status: 'TYPING' }],
    ['status', { status: undefined }],
    ['lastSeen', { lastSeen: '2024-01-01' }],
    ['lastSeen', { lastSeen: Number.POSITIVE_INFINITY }],
    ['lastSeen', { lastSeen: Number.NaN }],
    ['instanceId', { instanceId: '' }],
    ['instanceId', { instanceId: undefined }],
    ['instanceId', { instanceId: 7 }],
  ])('rejects a bad %s and names it', (field, patch) => {
    const result = v.safeParse(PresenceCallbackSchema, { ...valid, ...patch });
    expect(result.success).toBe(false);
    expect(result.issues?.map((issue) => v.getDotPath(issue))).toContain(field);
  });

  it('says what each field must be', () => {
    expect(issuesOf({ ...valid, type: 'ReceivedCallback' })).toEqual([
      { field: 'type', message: 'must be "PresenceChatCallback"' },
    ]);
    expect(issuesOf({ ...valid, phone: 1 })).toEqual([{ field: 'phone', message: 'must be a string' }]);
    expect(issuesOf({ ...valid, phone: '' })).toEqual([{ field: 'phone', message: 'must not be empty' }]);
    expect(issuesOf({ ...valid, status: 'TYPING' })).toEqual([
      { field: 'status', message: 'must be one of UNAVAILABLE, AVAILABLE, COMPOSING, RECORDING, PAUSED' },
    ]);
    expect(issuesOf({ ...valid, lastSeen: 'yesterday' })).toEqual([
      { field: 'lastSeen', message: 'must be a number or null' },
    ]);
    expect(issuesOf({ ...valid, lastSeen: Number.NEGATIVE_INFINITY })).toEqual([
      { field: 'lastSeen', message: 'must be a finite number' },
    ]);
    expect(issuesOf({ ...valid, instanceId: 1 })).toEqual([
      { field: 'instanceId', message: 'must be a string' },
    ]);
    expect(issuesOf({ ...valid, instanceId: '' })).toEqual([
      { field: 'instanceId', message: 'must not be empty' },
    ]);
  });

  it('names every failing field at once, in the order of the contract', () => {
    expect(
      issuesOf({ instanceId: '', lastSeen: 'x', status: 'TYPING', phone: '', type: 'X' }).map((i) => i.field),
    ).toEqual(['type', 'phone', 'status', 'lastSeen', 'instanceId']);
  });

  it('rejects what is not an object', () => {
    for (const input of [null, [], 'text', 1, true]) {
      expect(v.safeParse(PresenceCallbackSchema, input).success).toBe(false);
    }
  });
});

describe('canonicalDetail', () => {
  const parseValid = (text: string) => v.parse(PresenceCallbackSchema, JSON.parse(text));

  it('is the JSON of the validated value, documented fields first', () => {
    const callback = parseValid(
      '{ "extra": {"b": [1, 2]}, "instanceId": "I1", "lastSeen": 1.5E3, "status": "PAUSED", "phone": "55", "type": "PresenceChatCallback" }',
    );
    expect(canonicalDetail(callback)).toBe(
      '{"type":"PresenceChatCallback","phone":"55","status":"PAUSED","lastSeen":1500,"instanceId":"I1","extra":{"b":[1,2]}}',
    );
  });

  it('carries one value per key: the last, as validated', () => {
    const callback = parseValid(
      '{"instanceId":"OTHER","type":"PresenceChatCallback","phone":"55","status":"PAUSED","instanceId":"I1","x":1,"x":2}',
    );
    const detail = canonicalDetail(callback);
    expect(detail).toBe(
      '{"type":"PresenceChatCallback","phone":"55","status":"PAUSED","instanceId":"I1","x":2}',
    );
  });

  it('leaves out the top-level keys __proto__, constructor and prototype', () => {
    const callback = parseValid(
      '{"__proto__":{"polluted":true},"constructor":1,"prototype":2,"type":"PresenceChatCallback","phone":"55","status":"PAUSED","instanceId":"I1"}',
    );
    const detail = canonicalDetail(callback);
    expect(detail).toBe('{"type":"PresenceChatCallback","phone":"55","status":"PAUSED","instanceId":"I1"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('keeps such keys inside unknown fields, as own data (not prototypes)', () => {
    // Current behaviour, pinned: only the top level is filtered (see the report to the lead).
    const callback = parseValid(
      '{"type":"PresenceChatCallback","phone":"55","status":"PAUSED","instanceId":"I1","x":{"__proto__":{"a":1}}}',
    );
    const detail = canonicalDetail(callback);
    expect(detail).toBe(
      '{"type":"PresenceChatCallback","phone":"55","status":"PAUSED","instanceId":"I1","x":{"__proto__":{"a":1}}}',
    );
  });

  it('round-trips through the schema (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PRESENCE_STATUSES),
        fc.string({ minLength: 1 }),
        fc.dictionary(
          fc.string().filter((key) => !(key in PresenceCallbackSchema.entries)),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        (status, phone, extra) => {
          const text = JSON.stringify({ ...extra, ...valid, status, phone });
          const callback = parseValid(text);
          const detail = canonicalDetail(callback);
          expect(detail).toBe(JSON.stringify(callback));
          expect(parseValid(detail)).toEqual(JSON.parse(detail));
          expect(canonicalDetail(parseValid(detail))).toBe(detail);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('nonFiniteNumberPath', () => {
  it.each([
    ['a finite object', { a: 1, b: [1.5, -2, 0], c: { d: null, e: 'Infinity', f: true } }],
    ['null', null],
    ['a string', 'x'],
    ['a finite number', 42],
    ['an empty object', {}],
    ['an empty array', []],
    ['nested nulls', { a: null, b: [null, { c: null }] }],
  ])('is undefined for %s', (_case, value) => {
    expect(nonFiniteNumberPath(value)).toBeUndefined();
  });

  it('names a top-level field by its key', () => {
    expect(nonFiniteNumberPath({ lastSeen: Number.POSITIVE_INFINITY })).toBe('lastSeen');
    expect(nonFiniteNumberPath({ lastSeen: Number.NaN })).toBe('lastSeen');
  });

  it('names a nested field by its dotted path, array items by index', () => {
    expect(nonFiniteNumberPath({ a: { b: { c: Number.NEGATIVE_INFINITY } } })).toBe('a.b.c');
    expect(nonFiniteNumberPath({ a: [1, 2, Number.POSITIVE_INFINITY] })).toBe('a.2');
    expect(nonFiniteNumberPath({ a: [{ x: 1 }, { y: Number.NaN }] })).toBe('a.1.y');
  });

  it('names the first one found', () => {
    expect(nonFiniteNumberPath({ a: 1, b: Number.NaN, c: Number.POSITIVE_INFINITY })).toBe('b');
    expect(nonFiniteNumberPath({ a: { z: Number.NaN }, b: Number.NaN })).toBe('a.z');
  });

  it('names a bare non-finite number (body)', () => {
    expect(nonFiniteNumberPath(Number.POSITIVE_INFINITY)).toBe('(body)');
    expect(nonFiniteNumberPath([Number.POSITIVE_INFINITY])).toBe('0');
  });

  it('refuses nesting deeper than MAX_JSON_DEPTH without recursion (no stack overflow)', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
    expect(jsonProblem(deep)).toEqual({ kind: 'too-deep', path: Array(MAX_JSON_DEPTH).fill('0').join('.') });
    const atLimit = JSON.parse(`${'['.repeat(MAX_JSON_DEPTH)}1${']'.repeat(MAX_JSON_DEPTH)}`) as unknown;
    expect(jsonProblem(atLimit)).toBeUndefined();
    const overLimit = JSON.parse(
      `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`,
    ) as unknown;
    expect(jsonProblem(overLimit)?.kind).toBe('too-deep');
    expect(jsonProblem({ a: 1, b: [{ c: 'x' }] })).toBeUndefined();
  });

  it('reports the first problem in document order', () => {
    expect(jsonProblem({ a: Number.NaN, b: Number.POSITIVE_INFINITY })).toEqual({
      kind: 'non-finite',
      path: 'a',
    });
  });

  it('finds what JSON.parse makes of numbers beyond double range', () => {
    expect(nonFiniteNumberPath(JSON.parse('{"a":{"b":[0,-1e400]},"lastSeen":1e309}'))).toBe('a.b.1');
    expect(nonFiniteNumberPath(JSON.parse('{"lastSeen":1e308}'))).toBeUndefined();
  });
});

describe('event contract', () => {
  it('has one distinct detail-type per status, each naming its status', () => {
    const types = PRESENCE_STATUSES.map((status) => DETAIL_TYPES[status]);
    expect(new Set(types).size).toBe(PRESENCE_STATUSES.length);
    for (const status of PRESENCE_STATUSES) {
      expect(DETAIL_TYPES[status]).toBe(`${DETAIL_TYPE_PREFIX}${status}`);
      expect(detailTypeFor(status)).toBe(DETAIL_TYPES[status]);
    }
  });

  it('builds patterns for chosen statuses and for all of them', () => {
    expect(presenceEventPattern(['COMPOSING', 'RECORDING', 'COMPOSING'])).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': [DETAIL_TYPES.COMPOSING, DETAIL_TYPES.RECORDING],
    });
    expect(presenceEventPattern(['PAUSED'])).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': [DETAIL_TYPES.PAUSED],
    });
    expect(presenceEventPattern()).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': [{ prefix: DETAIL_TYPE_PREFIX }],
    });
    expect(presenceEventPattern([])).toEqual(presenceEventPattern());
  });

  it('refuses an unknown status, listing the known ones', () => {
    expect(() => presenceEventPattern(['COMPOSING', 'TYPING' as never])).toThrow(
      new Error(
        'Unknown presence status "TYPING"; use one of UNAVAILABLE, AVAILABLE, COMPOSING, RECORDING, PAUSED.',
      ),
    );
  });

  it('a pattern for every status matches every detail-type (prefix)', () => {
    const [prefixRule] = presenceEventPattern()['detail-type'];
    const prefix = (prefixRule as { prefix: string }).prefix;
    for (const status of PRESENCE_STATUSES) expect(DETAIL_TYPES[status].startsWith(prefix)).toBe(true);
  });

  it('never accepts a status outside the list (property)', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !(PRESENCE_STATUSES as readonly string[]).includes(s)),
        (status) => !v.safeParse(PresenceCallbackSchema, { ...valid, status }).success,
      ),
    );
  });
});
