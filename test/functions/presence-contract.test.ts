import fc from 'fast-check';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  CALLBACK_TYPE,
  DETAIL_TYPE_PREFIX,
  DETAIL_TYPES,
  EVENT_SOURCE,
  PRESENCE_STATUSES,
  PresenceCallbackSchema,
  presenceEventPattern,
} from '../../functions/shared/presence-contract.ts';
import groupPresence from '../fixtures/group-presence.json' with { type: 'json' };
import docsExamples from '../fixtures/zapi-docs-examples.json' with { type: 'json' };

const valid = {
  type: CALLBACK_TYPE,
  phone: '5544999999999',
  status: 'COMPOSING',
  lastSeen: null,
  instanceId: 'I1',
};

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
    ['absent', undefined],
  ])('accepts lastSeen %s', (_kind, lastSeen) => {
    const body: Record<string, unknown> = { ...valid, lastSeen };
    if (lastSeen === undefined) delete body.lastSeen;
    expect(v.safeParse(PresenceCallbackSchema, body).success).toBe(true);
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
    ['instanceId', { instanceId: '' }],
    ['instanceId', { instanceId: undefined }],
  ])('rejects a bad %s and names it', (field, patch) => {
    const result = v.safeParse(PresenceCallbackSchema, { ...valid, ...patch });
    expect(result.success).toBe(false);
    expect(result.issues?.map((issue) => v.getDotPath(issue))).toContain(field);
  });
});

describe('event contract', () => {
  it('has one distinct detail-type per status, each naming its status', () => {
    const types = PRESENCE_STATUSES.map((status) => DETAIL_TYPES[status]);
    expect(new Set(types).size).toBe(PRESENCE_STATUSES.length);
    for (const status of PRESENCE_STATUSES) {
      expect(DETAIL_TYPES[status]).toContain(status);
      expect(DETAIL_TYPES[status].startsWith(DETAIL_TYPE_PREFIX)).toBe(true);
    }
  });

  it('builds patterns for chosen statuses and for all of them', () => {
    expect(presenceEventPattern(['COMPOSING', 'RECORDING', 'COMPOSING'])).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': [DETAIL_TYPES.COMPOSING, DETAIL_TYPES.RECORDING],
    });
    expect(presenceEventPattern()).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': [{ prefix: DETAIL_TYPE_PREFIX }],
    });
    expect(() => presenceEventPattern(['TYPING' as never])).toThrow(/Unknown presence status "TYPING"/);
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
