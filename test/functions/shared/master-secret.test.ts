/**
 * masterSecretReader (functions/shared/secrets/master-secret.ts), branch by branch, against a fake SSM client
 * that answers per parameter name (`name` or `name:version`) and records what it was asked; the wire is
 * covered in secret.test.ts and once here.
 */
import { type Parameter, SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { type Deadline, DeadlineExceeded, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { ParameterError, type SsmPort } from '../../../functions/shared/aws/ssm.ts';
import {
  DEFAULT_PREVIOUS_READ_CAP_MS,
  type MasterSecretReaderOptions,
  masterSecretReader,
} from '../../../functions/shared/secrets/master-secret.ts';
import { startAwsStandIn } from '../../support/aws-standin.ts';

const NAME = '/app/webhook-master';
const CURRENT = 'current-master-0123456789abcdefghijklmnop';
const PREVIOUS = 'previous-master-0123456789abcdefghijklmno';
const GRACE = 3_600_000;
const ROTATED_AT = 1_700_000_000_000;
const MSG =
  'could not read an earlier version of the webhook master secret: callbacks that do not match the current one are answered 503 for now';

const soon = () => deadlineAt(Date.now() + 5_000);

function sdkError(name: string): Error {
  const error = new Error(`stand-in ${name}`);
  error.name = name;
  return error;
}

type Answer = Parameter | Error | (() => Promise<never>);

/** Answers GetParameter per name; records the names asked for and the abort signals. */
function fakeSsm(answers: Record<string, Answer>) {
  const asked: string[] = [];
  const signals: AbortSignal[] = [];
  const ssm = {
    send: async (command: { input: { Name: string } }, options: { abortSignal: AbortSignal }) => {
      asked.push(command.input.Name);
      signals.push(options.abortSignal);
      const answer = answers[command.input.Name];
      if (answer === undefined) throw sdkError('ParameterVersionNotFound');
      if (answer instanceof Error) throw answer;
      if (typeof answer === 'function') return answer();
      return { Parameter: answer };
    },
  } as unknown as SsmPort;
  return { ssm, asked, signals };
}

/** The current version; `modified: null` leaves LastModifiedDate out. */
const current = (version: number | undefined, modified: number | null = ROTATED_AT): Parameter => ({
  Name: NAME,
  Value: CURRENT,
  ...(version !== undefined && { Version: version }),
  ...(modified !== null && { LastModifiedDate: new Date(modified) }),
});
const previous = (value = PREVIOUS): Parameter => ({ Name: NAME, Value: value, Version: 1 });

function reader(
  answers: Record<string, Answer>,
  options: Partial<MasterSecretReaderOptions> & { at?: number } = {},
) {
  const fake = fakeSsm(answers);
  const warnings: Array<Record<string, unknown>> = [];
  const { at = ROTATED_AT + 60_000, ...rest } = options;
  const read = masterSecretReader({
    ssm: fake.ssm,
    parameterName: NAME,
    graceMs: GRACE,
    now: () => at,
    warn: (record) => warnings.push(record),
    ...rest,
  });
  return { read, warnings, ...fake };
}

/** A deadline that records every `run` (what, cap) before running it for real. */
function spyDeadline(inner: Deadline = soon()) {
  const runs: Array<{ what: string; capMs: number | undefined }> = [];
  const deadline: Deadline = {
    ...inner,
    run: (what, fn, capMs) => {
      runs.push({ what, capMs });
      return inner.run(what, fn, capMs);
    },
  };
  return { deadline, runs };
}

describe('masterSecretReader: when only the current version is read', () => {
  it('version 1 (never rotated), even modified a moment ago: current and since', async () => {
    const { read, asked, warnings } = reader({ [NAME]: current(1), [`${NAME}:0`]: previous() });
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT });
    expect(asked).toEqual([NAME]);
    expect(warnings).toEqual([]);
  });

  it('no Version in the answer counts as version 1', async () => {
    const { read, asked } = reader({ [NAME]: current(undefined), [`${NAME}:0`]: previous() });
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT });
    expect(asked).toEqual([NAME]);
  });

  it('no LastModifiedDate: current only, without since', async () => {
    const { read, asked } = reader({ [NAME]: current(2, null), [`${NAME}:1`]: previous() });
    const secret = await read(soon());
    expect(secret).toStrictEqual({ current: CURRENT });
    expect('since' in secret).toBe(false);
    expect(asked).toEqual([NAME]);
  });

  it('rotated longer ago than the grace window: current and since', async () => {
    const { read, asked } = reader(
      { [NAME]: current(2), [`${NAME}:1`]: previous() },
      { at: ROTATED_AT + GRACE + 1 },
    );
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT });
    expect(asked).toEqual([NAME]);
  });

  it('exactly at the end of the grace window: current only', async () => {
    const { read, asked } = reader(
      { [NAME]: current(2), [`${NAME}:1`]: previous() },
      { at: ROTATED_AT + GRACE },
    );
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT });
    expect(asked).toEqual([NAME]);
  });

  it('with no grace window, right after a rotation: current only', async () => {
    const { read, asked } = reader(
      { [NAME]: current(2), [`${NAME}:1`]: previous() },
      { at: ROTATED_AT, graceMs: 0 },
    );
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT });
    expect(asked).toEqual([NAME]);
  });
});

describe('masterSecretReader: within the grace window', () => {
  it('1 ms inside the window: reads name:(version - 1), valid until rotation + grace', async () => {
    const { read, asked, warnings } = reader(
      { [NAME]: current(2), [`${NAME}:1`]: previous() },
      { at: ROTATED_AT + GRACE - 1 },
    );
    expect(await read(soon())).toStrictEqual({
      current: CURRENT,
      since: ROTATED_AT,
      previous: PREVIOUS,
      previousUntil: ROTATED_AT + GRACE,
    });
    expect(asked).toEqual([NAME, `${NAME}:1`]);
    expect(warnings).toEqual([]);
  });

  it('after several rotations, reads the version just before the current one', async () => {
    const { read, asked } = reader({ [NAME]: current(5), [`${NAME}:4`]: previous() }, { at: ROTATED_AT });
    expect(await read(soon())).toStrictEqual({
      current: CURRENT,
      since: ROTATED_AT,
      previous: PREVIOUS,
      previousUntil: ROTATED_AT + GRACE,
    });
    expect(asked).toEqual([NAME, `${NAME}:4`]);
  });

  it('uses Date.now when no clock is given', async () => {
    const recent = fakeSsm({ [NAME]: current(2, Date.now() - 60_000), [`${NAME}:1`]: previous() });
    const readRecent = masterSecretReader({ ssm: recent.ssm, parameterName: NAME, graceMs: GRACE });
    expect((await readRecent(soon())).previous).toBe(PREVIOUS);
    expect(recent.asked).toEqual([NAME, `${NAME}:1`]);

    const old = fakeSsm({ [NAME]: current(2, Date.now() - GRACE - 60_000), [`${NAME}:1`]: previous() });
    const readOld = masterSecretReader({ ssm: old.ssm, parameterName: NAME, graceMs: GRACE });
    expect((await readOld(soon())).previous).toBeUndefined();
    expect(old.asked).toEqual([NAME]);
  });

  it('caps the previous read at 1500 ms by default, and the current read not at all', async () => {
    expect(DEFAULT_PREVIOUS_READ_CAP_MS).toBe(1_500);
    const { read } = reader({ [NAME]: current(2), [`${NAME}:1`]: previous() });
    const { deadline, runs } = spyDeadline();
    await read(deadline);
    expect(runs).toEqual([
      { what: 'SSM GetParameter', capMs: undefined },
      { what: 'SSM GetParameter', capMs: 1_500 },
    ]);
  });

  it('hands readCapMs and previousReadCapMs to their reads', async () => {
    const { read } = reader(
      { [NAME]: current(2), [`${NAME}:1`]: previous() },
      { readCapMs: 700, previousReadCapMs: 40 },
    );
    const { deadline, runs } = spyDeadline();
    await read(deadline);
    expect(runs.map((r) => r.capMs)).toEqual([700, 40]);
  });

  it('aborts a hanging previous read at its cap and answers the current one, incomplete', async () => {
    const { read, signals, warnings } = reader(
      { [NAME]: current(2), [`${NAME}:1`]: () => new Promise<never>(() => {}) },
      { previousReadCapMs: 40 },
    );
    const started = Date.now();
    const secret = await read(deadlineAt(Date.now() + 10_000));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(secret).toStrictEqual({ current: CURRENT, since: ROTATED_AT, incomplete: true });
    const signal = signals[1] as AbortSignal;
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(DeadlineExceeded);
    expect((signal.reason as DeadlineExceeded).afterMs).toBe(40);
    expect(warnings).toStrictEqual([{ msg: MSG, parameter: `${NAME}:1`, error: 'timeout' }]);
  });

  it.each([
    ['too short', 'x'.repeat(31)],
    ['with characters outside the alphabet', `${'a'.repeat(31)}+/=`],
  ])('a previous value %s was never used: current only, no warning', async (_case, value) => {
    const { read, asked, warnings } = reader({ [NAME]: current(2), [`${NAME}:1`]: previous(value) });
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT });
    expect(asked).toEqual([NAME, `${NAME}:1`]);
    expect(warnings).toEqual([]);
  });

  it.each(['ParameterVersionNotFound', 'ParameterNotFound'])(
    'a previous version deleted from the history (%s): current only, no warning',
    async (name) => {
      const { read, asked, warnings } = reader({ [NAME]: current(2), [`${NAME}:1`]: sdkError(name) });
      expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT });
      expect(asked).toEqual([NAME, `${NAME}:1`]);
      expect(warnings).toEqual([]);
    },
  );

  it.each([
    ['AccessDeniedException', 'denied'],
    ['KMSAccessDeniedException', 'denied'],
    ['ThrottlingException', 'unavailable'],
  ])('a previous read failing with %s: incomplete, one warning with the code', async (name, code) => {
    const { read, warnings } = reader({ [NAME]: current(3), [`${NAME}:2`]: sdkError(name) });
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT, incomplete: true });
    expect(warnings).toStrictEqual([{ msg: MSG, parameter: `${NAME}:2`, error: code }]);
    expect(JSON.stringify(warnings)).not.toContain(CURRENT);
  });

  it("an empty previous version: incomplete, code 'empty'", async () => {
    const { read, warnings } = reader({ [NAME]: current(2), [`${NAME}:1`]: previous('') });
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT, incomplete: true });
    expect(warnings).toStrictEqual([{ msg: MSG, parameter: `${NAME}:1`, error: 'empty' }]);
  });

  it("a failure that is not a ParameterError (a broken SDK answer): incomplete, error 'unknown'", async () => {
    let reads = 0;
    const broken = {
      Name: NAME,
      Version: 1,
      // getParameter sees a value; reading it again fails.
      get Value() {
        reads++;
        if (reads > 1) throw new TypeError('answer no longer readable');
        return PREVIOUS;
      },
    } as Parameter;
    const { read, warnings } = reader({ [NAME]: current(2), [`${NAME}:1`]: broken });
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT, incomplete: true });
    expect(warnings).toStrictEqual([{ msg: MSG, parameter: `${NAME}:1`, error: 'unknown' }]);
  });

  it('without a warn callback, a failed previous read is still answered incomplete', async () => {
    const fake = fakeSsm({ [NAME]: current(2), [`${NAME}:1`]: sdkError('ThrottlingException') });
    const read = masterSecretReader({
      ssm: fake.ssm,
      parameterName: NAME,
      graceMs: GRACE,
      now: () => ROTATED_AT,
    });
    expect(await read(soon())).toStrictEqual({ current: CURRENT, since: ROTATED_AT, incomplete: true });
  });
});

describe('masterSecretReader: the current version', () => {
  it.each([
    ['too short', 'x'.repeat(31)],
    ['too long', 'x'.repeat(513)],
    ['with characters outside the alphabet', `${'a'.repeat(31)}+/=`],
  ])(
    'refuses a current master %s: a ParameterError naming the parameter, never the value',
    async (_c, value) => {
      const { read, asked } = reader({ [NAME]: { ...current(2), Value: value }, [`${NAME}:1`]: previous() });
      const error = await read(soon()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ParameterError);
      expect((error as ParameterError).code).toBe('invalid');
      expect((error as ParameterError).parameter).toBe(NAME);
      expect((error as Error).message).toContain(`SSM parameter ${NAME} `);
      expect((error as Error).message).toContain('openssl rand -hex 32');
      expect((error as Error).message).not.toContain(value);
      expect(asked).toEqual([NAME]);
    },
  );

  it('passes a failed current read on, naming the parameter', async () => {
    const { read, asked, warnings } = reader({ [NAME]: sdkError('AccessDeniedException') });
    const error = (await read(soon()).catch((e: unknown) => e)) as ParameterError;
    expect(error).toBeInstanceOf(ParameterError);
    expect(error.code).toBe('denied');
    expect(error.parameter).toBe(NAME);
    expect(asked).toEqual([NAME]);
    expect(warnings).toEqual([]);
  });
});

it('masterSecretReader reads name:(version - 1) over the wire after a third version (stand-in)', async () => {
  const standIn = await startAwsStandIn();
  const ssm = new SSMClient({
    region: 'sa-east-1',
    endpoint: standIn.url,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    maxAttempts: 1,
  });
  try {
    standIn.put(NAME, 'oldest-master-0123456789abcdefghijklmnop', Date.now() - 2 * 86_400_000);
    standIn.put(NAME, PREVIOUS, Date.now() - 86_400_000);
    const rotatedAt = Date.now() - 60_000;
    standIn.put(NAME, CURRENT, rotatedAt);
    const read = masterSecretReader({ ssm, parameterName: NAME, graceMs: GRACE });
    expect(await read(soon())).toStrictEqual({
      current: CURRENT,
      since: rotatedAt,
      previous: PREVIOUS,
      previousUntil: rotatedAt + GRACE,
    });
    expect(standIn.calls).toEqual([`AmazonSSM.GetParameter ${NAME}`, `AmazonSSM.GetParameter ${NAME}:2`]);
  } finally {
    ssm.destroy();
    await standIn.close();
  }
});
