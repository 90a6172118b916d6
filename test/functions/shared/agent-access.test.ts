/**
 * The live feed's access rule as plain functions: which ids are instance ids, how a claim's groups are
 * read in each shape a token or its carrier writes them, and the subscription decision with its reason.
 * test/functions/live-feed/subscribe-handler.test.ts runs the same rule through the shipped APPSYNC_JS
 * bundle; here each edge is pinned where it is written.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ALL_INSTANCES_GROUP,
  FEED_NAMESPACE,
  feedChannel,
  groupsFromClaim,
  isInstanceId,
  mayReadInstance,
  RESERVED_INSTANCE,
  subscribeDecision,
} from '../../../functions/shared/access/agent-access.ts';
import {
  CANARY_INSTANCE_ID,
  INSTANCE_ID_PATTERN,
} from '../../../functions/shared/contract/presence-contract.ts';

const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const B = '9F8E7D6C5B4A39281706F5E4D3C2B1A0';

describe('isInstanceId', () => {
  it('takes 1 to 64 of A-Z a-z 0-9 _ -', () => {
    for (const id of [A, 'a', 'Z', '0', '_', '-', 'a'.repeat(64), 'abc_DEF-123', 'zapi-presence-canary']) {
      expect(isInstanceId(id), id).toBe(true);
    }
  });

  it('refuses the empty string, 65 characters, anything else in it, and non-strings', () => {
    for (const id of ['', 'a'.repeat(65), 'a.b', 'a~b', 'a b', 'a/b', 'á', `${A}\n`, '*', '#', '%41']) {
      expect(isInstanceId(id), JSON.stringify(id)).toBe(false);
    }
    for (const value of [undefined, null, 7, [A], { id: A }]) {
      expect(isInstanceId(value)).toBe(false);
    }
  });

  it('agrees with the receiver’s INSTANCE_ID_PATTERN (property)', () => {
    const text = fc.string({
      unit: fc.constantFrom(...'AZaz09_-.~ /#*é\u00a0'.split('')),
      maxLength: 70,
    });
    fc.assert(
      fc.property(fc.oneof(text, fc.stringMatching(INSTANCE_ID_PATTERN)), (id) => {
        expect(isInstanceId(id)).toBe(INSTANCE_ID_PATTERN.test(id));
      }),
      { numRuns: 500 },
    );
  });
});

describe('feedChannel', () => {
  it('is /presence/{instanceId}', () => {
    expect(FEED_NAMESPACE).toBe('presence');
    expect(feedChannel(A)).toBe(`/presence/${A}`);
  });
});

describe('groupsFromClaim', () => {
  it('reads a JSON array, keeping only non-empty strings', () => {
    expect(groupsFromClaim([A, 'other'])).toEqual([A, 'other']);
    expect(groupsFromClaim([A, '', 7, null, ['x'], { a: 1 }, 'b'])).toEqual([A, 'b']);
    expect(groupsFromClaim([])).toEqual([]);
  });

  it('reads API Gateway’s flattening of an array claim: [a b c]', () => {
    expect(groupsFromClaim(`[${A} other]`)).toEqual([A, 'other']);
    expect(groupsFromClaim(` [ ${A}  other ] `)).toEqual([A, 'other']);
    expect(groupsFromClaim('[]')).toEqual([]);
    expect(groupsFromClaim(`[${A}]`)).toEqual([A]);
  });

  it('reads a JSON array held in a string', () => {
    expect(groupsFromClaim(`["${A}","other"]`)).toEqual([A, 'other']);
    expect(groupsFromClaim(`[ "${A}" , "other" ]`)).toEqual([A, 'other']);
    expect(groupsFromClaim(`["${A}", ""]`)).toEqual([A]);
    expect(groupsFromClaim('["a b"]')).toEqual(['a b']);
  });

  it('lists none when a JSON array in a string cannot be read plainly', () => {
    for (const claim of [
      `["${A}\\""]`, // a backslash in a name
      `["a"b"]`, // a quote in a name
      `["${A}", other]`, // an unquoted part
      `["${A}`, // no closing bracket: read as names, see below
      '["]',
      `["${A}",]`,
      `["${A}", "x]`,
      `["${A}", x"]`,
    ]) {
      const groups = groupsFromClaim(claim);
      expect(groups.includes(A), claim).toBe(false);
    }
    expect(groupsFromClaim(`["${A}", other]`)).toEqual([]);
    expect(groupsFromClaim(`["${A}", "x]`)).toEqual([]);
    expect(groupsFromClaim(`["${A}", x"]`)).toEqual([]);
    expect(groupsFromClaim('["]')).toEqual([]);
  });

  it('reads a string of names separated by commas or spaces', () => {
    expect(groupsFromClaim(A)).toEqual([A]);
    expect(groupsFromClaim(`other,${A}`)).toEqual(['other', A]);
    expect(groupsFromClaim(`other ${A}`)).toEqual(['other', A]);
    expect(groupsFromClaim(`  other, ,${A}  x `)).toEqual(['other', A, 'x']);
    // Brackets on one side only are part of a name.
    expect(groupsFromClaim(`[${A}`)).toEqual([`[${A}`]);
    expect(groupsFromClaim(`${A}]`)).toEqual([`${A}]`]);
  });

  it('lists none for anything else', () => {
    for (const claim of [undefined, null, 7, true, {}, { groups: [A] }, '', '   ', ',', '[ ]']) {
      expect(groupsFromClaim(claim), JSON.stringify(claim)).toEqual([]);
    }
  });
});

describe('mayReadInstance', () => {
  it('allows the instance the groups name, and every instance to the all-instances group', () => {
    expect(ALL_INSTANCES_GROUP).toBe('zapi-presence-all');
    expect(mayReadInstance([A], A)).toBe(true);
    expect(mayReadInstance(['x', A], A)).toBe(true);
    expect(mayReadInstance([ALL_INSTANCES_GROUP], A)).toBe(true);
    expect(mayReadInstance([ALL_INSTANCES_GROUP], B)).toBe(true);
  });

  it('refuses another instance, a near name, no groups, the canary and a malformed id', () => {
    expect(mayReadInstance([A], B)).toBe(false);
    expect(mayReadInstance([], A)).toBe(false);
    expect(mayReadInstance([`${A}x`, A.slice(1), A.toLowerCase()], A)).toBe(false);
    expect(mayReadInstance(['ZAPI-PRESENCE-ALL'], A)).toBe(false);
    expect(RESERVED_INSTANCE).toBe(CANARY_INSTANCE_ID);
    expect(mayReadInstance([ALL_INSTANCES_GROUP, RESERVED_INSTANCE], RESERVED_INSTANCE)).toBe(false);
    expect(mayReadInstance([ALL_INSTANCES_GROUP, 'a.b'], 'a.b')).toBe(false);
    expect(mayReadInstance([ALL_INSTANCES_GROUP, ''], '')).toBe(false);
  });
});

describe('subscribeDecision', () => {
  const allowed = (instanceId: string) => ({ allowed: true, instanceId });
  const refused = (reason: string) => ({ allowed: false, reason });

  it('allows /presence/{id} with or without the leading slash', () => {
    expect(subscribeDecision('presence', `/presence/${A}`, [A])).toEqual(allowed(A));
    expect(subscribeDecision('presence', `presence/${A}`, [A])).toEqual(allowed(A));
    expect(subscribeDecision('presence', `/presence/${B}`, [ALL_INSTANCES_GROUP])).toEqual(allowed(B));
  });

  it('gives each refusal its reason', () => {
    const cases: Array<[string | undefined, string | undefined, string[], string]> = [
      ['other', `/presence/${A}`, [ALL_INSTANCES_GROUP], 'other-namespace'],
      [undefined, `/presence/${A}`, [ALL_INSTANCES_GROUP], 'other-namespace'],
      ['presence', '/presence/*', [ALL_INSTANCES_GROUP], 'wildcard'],
      ['presence', `/presence/${A}*`, [ALL_INSTANCES_GROUP], 'wildcard'],
      ['presence', '/*', [ALL_INSTANCES_GROUP], 'wildcard'],
      ['presence', `/presence/${A}/chats`, [A], 'not-one-instance'],
      ['presence', '/presence', [ALL_INSTANCES_GROUP], 'not-one-instance'],
      ['presence', undefined, [ALL_INSTANCES_GROUP], 'not-one-instance'],
      ['presence', '', [ALL_INSTANCES_GROUP], 'not-one-instance'],
      ['presence', `/other/${A}`, [ALL_INSTANCES_GROUP], 'not-one-instance'],
      ['presence', `//presence/${A}`, [ALL_INSTANCES_GROUP], 'not-one-instance'],
      ['presence', '/presence/', [ALL_INSTANCES_GROUP], 'invalid-instance'],
      ['presence', '/presence/a.b', [ALL_INSTANCES_GROUP, 'a.b'], 'invalid-instance'],
      ['presence', `/presence/${'A'.repeat(65)}`, [ALL_INSTANCES_GROUP], 'invalid-instance'],
      [
        'presence',
        `/presence/${RESERVED_INSTANCE}`,
        [ALL_INSTANCES_GROUP, RESERVED_INSTANCE],
        'invalid-instance',
      ],
      ['presence', `/presence/${B}`, [A], 'not-your-instance'],
      ['presence', `/presence/${A}`, [], 'not-your-instance'],
    ];
    for (const [namespace, path, groups, reason] of cases) {
      expect(subscribeDecision(namespace, path, groups), `${namespace} ${path}`).toEqual(refused(reason));
    }
  });

  it('allows exactly when the path is one instance’s channel and mayReadInstance says so (property)', () => {
    const id = fc.oneof(
      fc.constantFrom(A, B, RESERVED_INSTANCE, 'a.b', ''),
      fc.stringMatching(INSTANCE_ID_PATTERN),
    );
    const group = fc.oneof(id, fc.constant(ALL_INSTANCES_GROUP));
    fc.assert(
      fc.property(id, fc.array(group, { maxLength: 3 }), fc.boolean(), (instanceId, groups, slash) => {
        const path = `${slash ? '/' : ''}presence/${instanceId}`;
        const decision = subscribeDecision(FEED_NAMESPACE, path, groups);
        expect(decision.allowed).toBe(mayReadInstance(groups, instanceId));
        if (decision.allowed) expect(decision.instanceId).toBe(instanceId);
      }),
      { numRuns: 300 },
    );
  });
});
