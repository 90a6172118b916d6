/**
 * What the reconciler is asked to do (functions/fleet/sweep-trigger.ts): the drift sweep's
 * schedule, SSM Parameter Store changes, and manual invocations; anything else is refused with a
 * message that says what is accepted.
 */
import { describe, expect, it } from 'vitest';
import { tokenPattern } from '../../../functions/fleet/runtime.ts';
import { InvalidInput, type TriggerContext, triggerFor } from '../../../functions/fleet/sweep-trigger.ts';
import { CANARY_INSTANCE_ID } from '../../../functions/shared/contract/presence-contract.ts';

const MASTER_PARAMETER = '/zapi/webhook-secret';
const CLIENT_TOKEN_PARAMETER = '/zapi/client-token';
const ACCEPTED =
  'expected {}, {"instanceIds": ["ID"]}, {"release": ["ID"]}, a scheduled event or an SSM Parameter Store Change event';

const context: TriggerContext = {
  tokenInstance: tokenPattern('/zapi/{instanceId}/token').match,
  masterSecretParameter: MASTER_PARAMETER,
  clientTokenParameter: CLIENT_TOKEN_PARAMETER,
};

const scheduled = {
  version: '0',
  id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: '2026-11-25T12:00:00Z',
  region: 'sa-east-1',
  resources: ['arn:aws:events:sa-east-1:123456789012:rule/zapi-drift-sweep'],
  detail: {},
};

function parameterChange(name: string, operation: string) {
  return {
    version: '0',
    id: '9547ef2d-3b7e-4057-b6cb-5fdf09ee7c8f',
    'detail-type': 'Parameter Store Change',
    source: 'aws.ssm',
    account: '123456789012',
    time: '2026-11-25T12:00:00Z',
    region: 'sa-east-1',
    resources: [`arn:aws:ssm:sa-east-1:123456789012:parameter${name}`],
    detail: { name, type: 'SecureString', operation },
  };
}

function invalid(event: unknown): InvalidInput {
  try {
    triggerFor(event, context);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInput);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('InvalidInput');
    return error as InvalidInput;
  }
  throw new Error(`expected ${JSON.stringify(event)} to be refused`);
}

describe('triggerFor: the schedule', () => {
  it('a scheduled event sweeps the whole fleet', () => {
    expect(triggerFor(scheduled, context)).toStrictEqual({
      kind: 'run',
      request: { mode: 'reconcile', trigger: 'sweep' },
    });
  });

  it('needs both the source and the detail-type of a scheduled event', () => {
    expect(invalid({ ...scheduled, 'detail-type': 'Other Event' }).message).toBe(
      `unrecognized input; ${ACCEPTED}`,
    );
    expect(invalid({ ...scheduled, source: 'aws.ssm' }).message).toBe(`unrecognized input; ${ACCEPTED}`);
    expect(triggerFor({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, context)).toStrictEqual({
      kind: 'run',
      request: { mode: 'reconcile', trigger: 'sweep' },
    });
  });
});

describe('triggerFor: SSM Parameter Store changes', () => {
  it.each(['Create', 'Update'])("a token's %s reconciles that instance", (operation) => {
    expect(triggerFor(parameterChange('/zapi/3C01A2B3C4D5E6F7/token', operation), context)).toStrictEqual({
      kind: 'run',
      request: { mode: 'reconcile', trigger: 'change', instanceIds: ['3C01A2B3C4D5E6F7'] },
    });
  });

  it("the canary's token changing is ignored, and the canary cannot be named: it is never registered at Z-API", () => {
    const name = `/zapi/${CANARY_INSTANCE_ID}/token`;
    expect(triggerFor(parameterChange(name, 'Update'), context)).toStrictEqual({
      kind: 'ignored',
      reason: `${name} is not a token parameter`,
    });
    for (const key of ['instanceIds', 'release']) {
      expect(invalid({ [key]: ['ABC', CANARY_INSTANCE_ID] }).message).toContain(
        `${CANARY_INSTANCE_ID} is the canary's instance id: it is never registered at Z-API`,
      );
    }
  });

  it("a token's Delete is reported as a removed instance", () => {
    expect(triggerFor(parameterChange('/zapi/ABC/token', 'Delete'), context)).toStrictEqual({
      kind: 'removed',
      instanceId: 'ABC',
    });
  });

  it.each(['LabelParameterVersion', 'UnlabelParameterVersion', 'Other'])(
    "a token's %s is ignored",
    (operation) => {
      expect(triggerFor(parameterChange('/zapi/ABC/token', operation), context)).toStrictEqual({
        kind: 'ignored',
        reason: `${operation} of /zapi/ABC/token changes no URL`,
      });
    },
  );

  it.each(['Create', 'Update'])(
    "the master's %s reconciles the whole fleet, waiting until receivers know the new master",
    (operation) => {
      expect(triggerFor(parameterChange(MASTER_PARAMETER, operation), context)).toStrictEqual({
        kind: 'run',
        request: { mode: 'reconcile', trigger: 'change', waitForNewMaster: true },
      });
    },
  );

  it.each(['Create', 'Update'])(
    "the Client-Token's %s reconciles the whole fleet, without waiting",
    (operation) => {
      expect(triggerFor(parameterChange(CLIENT_TOKEN_PARAMETER, operation), context)).toStrictEqual({
        kind: 'run',
        request: { mode: 'reconcile', trigger: 'change' },
      });
    },
  );

  it.each([
    [MASTER_PARAMETER, 'Delete'],
    [MASTER_PARAMETER, 'LabelParameterVersion'],
    [CLIENT_TOKEN_PARAMETER, 'Delete'],
    [CLIENT_TOKEN_PARAMETER, 'LabelParameterVersion'],
  ])('%s %s is ignored', (name, operation) => {
    expect(triggerFor(parameterChange(name, operation), context)).toStrictEqual({
      kind: 'ignored',
      reason: `${operation} of ${name} changes no URL`,
    });
  });

  it.each([
    '/zapi/ABC/other',
    '/zapi/a/b/token',
    '/zapi/bad.id/token',
    '/other/ABC/token',
    '/zapi/webhook-secret-old',
  ])('%s (not a token, the master or the Client-Token) is ignored', (name) => {
    for (const operation of ['Create', 'Update', 'Delete']) {
      expect(triggerFor(parameterChange(name, operation), context)).toStrictEqual({
        kind: 'ignored',
        reason: `${name} is not a token parameter`,
      });
    }
  });

  it('without a Client-Token parameter, a change of that name is just another name', () => {
    const without: TriggerContext = { ...context, clientTokenParameter: undefined };
    expect(triggerFor(parameterChange(CLIENT_TOKEN_PARAMETER, 'Update'), without)).toStrictEqual({
      kind: 'ignored',
      reason: `${CLIENT_TOKEN_PARAMETER} is not a token parameter`,
    });
    expect(triggerFor(parameterChange(MASTER_PARAMETER, 'Update'), without)).toMatchObject({ kind: 'run' });
  });

  it('with a template without a suffix, the master is still the master', () => {
    const flat: TriggerContext = { ...context, tokenInstance: tokenPattern('/zapi/{instanceId}').match };
    expect(triggerFor(parameterChange(MASTER_PARAMETER, 'Update'), flat)).toStrictEqual({
      kind: 'run',
      request: { mode: 'reconcile', trigger: 'change', waitForNewMaster: true },
    });
    expect(triggerFor(parameterChange(MASTER_PARAMETER, 'Delete'), flat)).toMatchObject({ kind: 'ignored' });
    expect(triggerFor(parameterChange('/zapi/ABC', 'Update'), flat)).toMatchObject({
      request: { instanceIds: ['ABC'] },
    });
  });

  it('an SSM event without a usable detail is refused', () => {
    const event = parameterChange('/zapi/ABC/token', 'Update');
    expect(invalid({ ...event, detail: { operation: 'Update' } }).message).toBe(
      `unrecognized input; ${ACCEPTED}`,
    );
    expect(invalid({ ...event, detail: { name: '/zapi/ABC/token' } }).message).toBe(
      `unrecognized input; ${ACCEPTED}`,
    );
    expect(invalid({ ...event, detail: { name: 5, operation: 'Update' } }).message).toBe(
      `unrecognized input; ${ACCEPTED}`,
    );
    expect(invalid({ ...event, detail: undefined }).message).toBe(`unrecognized input; ${ACCEPTED}`);
    expect(invalid({ ...event, 'detail-type': 'Parameter Store Policy Action' }).message).toBe(
      `unrecognized input; ${ACCEPTED}`,
    );
  });
});

describe('triggerFor: manual inputs', () => {
  it('{} reconciles the whole fleet', () => {
    expect(triggerFor({}, context)).toStrictEqual({
      kind: 'run',
      request: { mode: 'reconcile', trigger: 'manual' },
    });
  });

  it('no payload at all (undefined or null) is taken as {}', () => {
    expect(triggerFor(undefined, context)).toStrictEqual({
      kind: 'run',
      request: { mode: 'reconcile', trigger: 'manual' },
    });
    expect(triggerFor(null, context)).toStrictEqual({
      kind: 'run',
      request: { mode: 'reconcile', trigger: 'manual' },
    });
  });

  it('{"instanceIds": [...]} reconciles those instances', () => {
    expect(triggerFor({ instanceIds: ['ABC', '3C01A2B3C4D5E6F7', 'a_b-c'] }, context)).toStrictEqual({
      kind: 'run',
      request: { mode: 'reconcile', trigger: 'manual', instanceIds: ['ABC', '3C01A2B3C4D5E6F7', 'a_b-c'] },
    });
  });

  it('{"release": [...]} releases those instances', () => {
    expect(triggerFor({ release: ['ABC'] }, context)).toStrictEqual({
      kind: 'run',
      request: { mode: 'release', trigger: 'manual', instanceIds: ['ABC'] },
    });
  });

  it('accepts ids of 64 characters and lists of 10,000', () => {
    const long = 'A'.repeat(64);
    expect(triggerFor({ instanceIds: [long] }, context)).toMatchObject({ request: { instanceIds: [long] } });
    const many = Array.from({ length: 10_000 }, (_, i) => `I${i}`);
    expect(triggerFor({ release: many }, context)).toMatchObject({
      request: { mode: 'release', instanceIds: many },
    });
  });

  it.each([
    ['an id with a space', { instanceIds: ['bad id'] }, 'instanceIds.0: must be a Z-API instance id'],
    ['a later bad id', { instanceIds: ['OK', 'no/slash'] }, 'instanceIds.1: must be a Z-API instance id'],
    [
      'an id of 65 characters',
      { instanceIds: ['A'.repeat(65)] },
      'instanceIds.0: must be a Z-API instance id',
    ],
    ['an empty id', { instanceIds: [''] }, 'instanceIds.0: must be a Z-API instance id'],
    ['a bad id to release', { release: ['a.b'] }, 'release.0: must be a Z-API instance id'],
    ['an empty instance list', { instanceIds: [] }, 'instanceIds: must list at least one instance'],
    ['an empty release list', { release: [] }, 'release: must list at least one instance'],
    [
      'more than 10,000 instances',
      { instanceIds: Array.from({ length: 10_001 }, (_, i) => `I${i}`) },
      'instanceIds: lists too many instances',
    ],
  ])('refuses %s, saying where and what is accepted', (_, event, detail) => {
    expect(invalid(event).message).toBe(`unrecognized input (${detail}); ${ACCEPTED}`);
  });

  it.each([
    ['both keys', { instanceIds: ['A'], release: ['B'] }],
    ['an unknown key', { instances: ['A'] }],
    ['an extra key', { instanceIds: ['A'], dryRun: true }],
    ['ids that are not strings', { instanceIds: [5] }],
    ['ids that are not a list', { instanceIds: 'A' }],
    ['a string', 'sweep'],
    ['a number', 5],
    ['a boolean', true],
    ['an empty string', ''],
  ])('refuses %s, saying what is accepted', (_, event) => {
    expect(invalid(event).message).toBe(`unrecognized input; ${ACCEPTED}`);
  });

  it.each([
    ['an empty array', []],
    ['an array of ids', ['ABC']],
  ])('refuses %s (not an object)', (_, event) => {
    expect(invalid(event).message).toMatch(
      new RegExp(`^unrecognized input.*; ${ACCEPTED.replace(/[{}[\]()"]/g, '\\$&')}$`),
    );
  });
});
