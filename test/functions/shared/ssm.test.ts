/**
 * SSM reads (functions/shared/aws/ssm.ts): the error mapping, the exact requests sent (against a fake client
 * that records each command's input and the options it was sent with) and the wire (against the SSM
 * stand-in: paging, versions, SDK error names, a connection torn down at the deadline).
 */
import {
  DescribeParametersCommand,
  GetParameterCommand,
  GetParametersCommand,
  type Parameter,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Deadline, DeadlineExceeded, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import {
  GET_PARAMETERS_BATCH,
  getParameter,
  getParameters,
  listParameterNames,
  MAX_LISTING_PAGES,
  ParameterError,
  parameterError,
  putParameterCommand,
  readSecureString,
  type SsmPort,
} from '../../../functions/shared/aws/ssm.ts';
import { type AwsStandIn, startAwsStandIn } from '../../support/aws-standin.ts';

const SECRET = 'the-value-nobody-may-see-0123456789';
const soon = () => deadlineAt(Date.now() + 5_000);

/** An Error whose name is an SDK exception name. */
function sdkError(name: string, message = `stand-in ${name}`): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

interface Sent {
  readonly command: unknown;
  readonly input: Record<string, unknown>;
  readonly options: { abortSignal?: AbortSignal } | undefined;
}

/** A client that records what it is sent and answers with `answer(input)`. */
function fakeSsm(answer: (input: Record<string, unknown>) => unknown) {
  const sent: Sent[] = [];
  const ssm = {
    send: async (command: { input: Record<string, unknown> }, options?: { abortSignal?: AbortSignal }) => {
      sent.push({ command, input: command.input, options });
      return answer(command.input);
    },
  } as unknown as SsmPort;
  return { ssm, sent };
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

const never = () => new Promise<never>(() => {});

async function rejection(promise: Promise<unknown>): Promise<ParameterError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ParameterError);
  return error as ParameterError;
}

describe('putParameterCommand', () => {
  it("leaves the value for the operator to fill in ('...') unless given", () => {
    expect(putParameterCommand('/app/secret')).toBe(
      'aws ssm put-parameter --type SecureString --name /app/secret --value ...',
    );
    expect(putParameterCommand('/app/secret', '"$(openssl rand -hex 32)"')).toBe(
      'aws ssm put-parameter --type SecureString --name /app/secret --value "$(openssl rand -hex 32)"',
    );
  });
});

describe('parameterError', () => {
  it('is a named Error carrying the code and the parameter', () => {
    const error = new ParameterError('message', 'denied', '/p');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ParameterError');
    expect(error.message).toBe('message');
    expect(error.code).toBe('denied');
    expect(error.parameter).toBe('/p');
  });

  it.each(['ParameterNotFound', 'ParameterVersionNotFound'])(
    '%s -> not-found, with the command that creates the parameter',
    (name) => {
      const error = parameterError(sdkError(name), '/app/token');
      expect(error).toBeInstanceOf(ParameterError);
      expect(error.code).toBe('not-found');
      expect(error.parameter).toBe('/app/token');
      expect(error.message).toBe(
        'SSM parameter /app/token does not exist; create it: aws ssm put-parameter --type SecureString --name /app/token --value ...',
      );
    },
  );

  it.each([
    'AccessDeniedException',
    'KMSAccessDeniedException',
    'KMSDisabledException',
    'KMSInvalidStateException',
    'KMSNotFoundException',
    'KMS',
    'InvalidKeyId',
  ])('%s -> denied, with the kms:Decrypt hint', (name) => {
    const error = parameterError(sdkError(name), '/app/token');
    expect(error.code).toBe('denied');
    expect(error.parameter).toBe('/app/token');
    // A name SSM does not use is not shown (it is the answer's text).
    const shown = name === 'KMS' ? 'UnexpectedError' : name;
    expect(error.message).toBe(
      `SSM parameter /app/token cannot be read (${shown}); if it is encrypted with a customer-managed KMS key, allow this function's role kms:Decrypt on it`,
    );
  });

  it.each([
    'ThrottlingException',
    'InternalServerError',
    'NotKMSException', // KMS only counts at the start of the name
    'AccessDenied', // not the SDK's AccessDeniedException
    'InvalidKeyIdentifier',
    'ParameterNotFoundish',
    'TypeError',
  ])('%s -> unavailable, naming the error when it is a known one', (name) => {
    const error = parameterError(sdkError(name), '/app/token');
    expect(error.code).toBe('unavailable');
    expect(error.parameter).toBe('/app/token');
    const known = ['ThrottlingException', 'InternalServerError', 'AccessDenied', 'TypeError'];
    expect(error.message).toBe(
      `SSM parameter /app/token could not be read (${known.includes(name) ? name : 'UnexpectedError'})`,
    );
  });

  it('never shows an error name it does not know: the SDK takes it from the answer (remote text)', () => {
    for (const name of ['REMOTE-TEXT-FROM-THE-ANSWER_anything the server wants', 'SecretValueAbc123', '']) {
      expect(parameterError(sdkError(name), '/app/token').message).toBe(
        'SSM parameter /app/token could not be read (UnexpectedError)',
      );
    }
  });

  it('maps a DeadlineExceeded to timeout, with how long it waited', () => {
    const error = parameterError(new DeadlineExceeded('SSM GetParameter', 1_500), '/app/token');
    expect(error.code).toBe('timeout');
    expect(error.parameter).toBe('/app/token');
    expect(error.message).toBe('SSM parameter /app/token could not be read in time (1500 ms)');
  });

  it('passes a ParameterError through unchanged (even under another name)', () => {
    const original = new ParameterError('SSM parameter /a is empty', 'empty', '/a');
    expect(parameterError(original, '/b')).toBe(original);
  });

  it.each([
    ['a string', 'ParameterNotFound'],
    ['undefined', undefined],
    ['a plain object with a name', { name: 'AccessDeniedException' }],
  ])('maps a non-Error value (%s) to UnexpectedError', (_case, value) => {
    const error = parameterError(value, '/app/token');
    expect(error.code).toBe('unavailable');
    expect(error.message).toBe('SSM parameter /app/token could not be read (UnexpectedError)');
  });
});

describe('getParameter (fake client)', () => {
  const parameter: Parameter = { Name: '/app/token', Value: SECRET, Version: 3 };

  it('sends GetParameter with the name and WithDecryption, and the run signal as abortSignal', async () => {
    const { ssm, sent } = fakeSsm(() => ({ Parameter: parameter }));
    const { deadline, runs } = spyDeadline();
    expect(await getParameter(ssm, '/app/token:2', deadline)).toBe(parameter);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.command).toBeInstanceOf(GetParameterCommand);
    expect(sent[0]?.input).toStrictEqual({ Name: '/app/token:2', WithDecryption: true });
    expect(Object.keys(sent[0]?.options ?? {})).toEqual(['abortSignal']);
    expect(sent[0]?.options?.abortSignal).toBeInstanceOf(AbortSignal);
    expect(sent[0]?.options?.abortSignal?.aborted).toBe(false);
    expect(runs).toEqual([{ what: 'SSM GetParameter', capMs: undefined }]);
  });

  it('hands the cap to the deadline', async () => {
    const { ssm } = fakeSsm(() => ({ Parameter: parameter }));
    const { deadline, runs } = spyDeadline();
    await getParameter(ssm, '/app/token', deadline, 250);
    expect(runs).toEqual([{ what: 'SSM GetParameter', capMs: 250 }]);
  });

  it('aborts the request at the deadline and answers timeout', async () => {
    const { ssm, sent } = fakeSsm(never);
    const started = Date.now();
    const error = await rejection(getParameter(ssm, '/app/token', deadlineAt(Date.now() + 60)));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.code).toBe('timeout');
    expect(error.parameter).toBe('/app/token');
    expect(error.message).toMatch(/^SSM parameter \/app\/token could not be read in time \(\d+ ms\)$/);
    const signal = sent[0]?.options?.abortSignal as AbortSignal;
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(DeadlineExceeded);
    expect((signal.reason as DeadlineExceeded).what).toBe('SSM GetParameter');
  });

  it('aborts the request at the cap when it comes before the deadline', async () => {
    const { ssm, sent } = fakeSsm(never);
    const started = Date.now();
    const error = await rejection(getParameter(ssm, '/app/token', deadlineAt(Date.now() + 10_000), 50));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.code).toBe('timeout');
    expect(error.message).toBe('SSM parameter /app/token could not be read in time (50 ms)');
    const signal = sent[0]?.options?.abortSignal as AbortSignal;
    expect(signal.aborted).toBe(true);
    expect((signal.reason as DeadlineExceeded).afterMs).toBe(50);
  });

  it.each([
    ['an empty Value', { Parameter: { Name: '/app/token', Value: '' } }],
    ['no Value', { Parameter: { Name: '/app/token' } }],
    ['no Parameter', {}],
  ])('refuses %s as empty, naming the parameter', async (_case, answer) => {
    const { ssm } = fakeSsm(() => answer);
    const error = await rejection(getParameter(ssm, '/app/token', soon()));
    expect(error.code).toBe('empty');
    expect(error.parameter).toBe('/app/token');
    expect(error.message).toBe('SSM parameter /app/token is empty');
  });

  it('maps SDK errors, naming the parameter asked for', async () => {
    const { ssm } = fakeSsm(() => {
      throw sdkError('KMSAccessDeniedException');
    });
    const error = await rejection(getParameter(ssm, '/app/token:4', soon()));
    expect(error.code).toBe('denied');
    expect(error.parameter).toBe('/app/token:4');
  });

  it('readSecureString answers the value only, with the same request and cap', async () => {
    const { ssm, sent } = fakeSsm(() => ({ Parameter: parameter }));
    const { deadline, runs } = spyDeadline();
    expect(await readSecureString(ssm, '/app/token', deadline, 300)).toBe(SECRET);
    expect(sent[0]?.input).toStrictEqual({ Name: '/app/token', WithDecryption: true });
    expect(runs).toEqual([{ what: 'SSM GetParameter', capMs: 300 }]);
  });

  it('readSecureString refuses an empty value', async () => {
    const { ssm } = fakeSsm(() => ({ Parameter: { Name: '/app/token', Value: '' } }));
    const error = await rejection(readSecureString(ssm, '/app/token', soon()));
    expect(error.code).toBe('empty');
  });
});

/** Every name a listing yields, page by page. */
async function pagesOf(listing: AsyncIterable<string[]>): Promise<string[][]> {
  const pages: string[][] = [];
  for await (const page of listing) pages.push(page);
  return pages;
}

describe('listParameterNames (fake client)', () => {
  const p = (name: string) => ({ Name: name, Type: 'SecureString' });
  const filters = [{ Key: 'Path', Option: 'Recursive', Values: ['/a'] }];

  /** Pages keyed by the NextToken they answer (the first page by ''). */
  const paged = (pages: Record<string, object>) => (input: Record<string, unknown>) => {
    const page = pages[String(input.NextToken ?? '')];
    if (!page) throw new Error(`no page for ${String(input.NextToken)}`);
    return page;
  };

  it('asks DescribeParameters for names under the path (recursive, 50 a page), never for a value', async () => {
    const { ssm, sent } = fakeSsm(paged({ '': { Parameters: [p('/a/1'), p('/a/b/2')] } }));
    const { deadline, runs } = spyDeadline();
    expect(await pagesOf(listParameterNames(ssm, '/a', deadline))).toStrictEqual([['/a/1', '/a/b/2']]);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.command).toBeInstanceOf(DescribeParametersCommand);
    // No NextToken key at all on the first call, and nothing that decrypts.
    expect(sent[0]?.input).toStrictEqual({ ParameterFilters: filters, MaxResults: 50 });
    expect(Object.keys(sent[0]?.options ?? {})).toEqual(['abortSignal']);
    expect(sent[0]?.options?.abortSignal).toBeInstanceOf(AbortSignal);
    expect(runs).toEqual([{ what: 'SSM DescribeParameters', capMs: undefined }]);
  });

  it('threads NextToken from page to page, each call under the deadline, and yields each page as it comes', async () => {
    const { ssm, sent } = fakeSsm(
      paged({
        '': { Parameters: [p('/a/1')], NextToken: 't1' },
        t1: { Parameters: [], NextToken: 't2' }, // an empty page is not the end
        t2: { NextToken: 't3' }, // nor is a page without Parameters
        t3: { Parameters: [p('/a/2'), { Type: 'String' }, p('/a/3')] },
      }),
    );
    const { deadline, runs } = spyDeadline();
    const listing = listParameterNames(ssm, '/a', deadline);
    const first = await listing.next();
    // The first page is handed out before the next one is asked for (a pipeline, not a collection).
    expect(first.value).toStrictEqual(['/a/1']);
    expect(sent).toHaveLength(1);
    expect(await pagesOf(listing)).toStrictEqual([['/a/2', '/a/3']]);
    expect(sent.map((s) => s.input)).toStrictEqual([
      { ParameterFilters: filters, MaxResults: 50 },
      { ParameterFilters: filters, MaxResults: 50, NextToken: 't1' },
      { ParameterFilters: filters, MaxResults: 50, NextToken: 't2' },
      { ParameterFilters: filters, MaxResults: 50, NextToken: 't3' },
    ]);
    expect(runs).toHaveLength(4);
    expect(new Set(sent.map((s) => s.options?.abortSignal)).size).toBe(4);
  });

  it('answers nothing for a path with nothing under it, and stops on an empty NextToken', async () => {
    const empty = fakeSsm(() => ({}));
    expect(await pagesOf(listParameterNames(empty.ssm, '/none', soon()))).toStrictEqual([]);
    expect(empty.sent).toHaveLength(1);
    const blankToken = fakeSsm(() => ({ Parameters: [], NextToken: '' }));
    expect(await pagesOf(listParameterNames(blankToken.ssm, '/none', soon()))).toStrictEqual([]);
    expect(blankToken.sent).toHaveLength(1);
  });

  it('a listing that fails halfway yields the pages before, then throws with the path as the name', async () => {
    const { ssm } = fakeSsm((input) => {
      if (input.NextToken === undefined) return { Parameters: [p('/a/1')], NextToken: 't1' };
      throw sdkError('AccessDeniedException');
    });
    const pages: string[][] = [];
    const error = await (async () => {
      for await (const page of listParameterNames(ssm, '/a', soon())) pages.push(page);
    })().catch((e: unknown) => e as ParameterError);
    expect(pages).toStrictEqual([['/a/1']]);
    expect(error).toBeInstanceOf(ParameterError);
    expect(error?.code).toBe('denied');
    expect(error?.parameter).toBe('/a');
    expect(error?.message).toContain('SSM parameter /a cannot be read (AccessDeniedException)');
  });

  it('hands a page cap to the deadline for every page', async () => {
    const { ssm } = fakeSsm(
      paged({ '': { Parameters: [p('/a/1')], NextToken: 't1' }, t1: { Parameters: [] } }),
    );
    const { deadline, runs } = spyDeadline();
    await pagesOf(listParameterNames(ssm, '/a', deadline, { pageCapMs: 1_234 }));
    expect(runs).toEqual([
      { what: 'SSM DescribeParameters', capMs: 1_234 },
      { what: 'SSM DescribeParameters', capMs: 1_234 },
    ]);
  });

  it('fails a listing that does not end: a page token repeated, or too many pages', async () => {
    const loop = fakeSsm(() => ({ Parameters: [p('/a/1')], NextToken: 'same' }));
    const repeated = await pagesOf(listParameterNames(loop.ssm, '/a', soon())).catch((e: unknown) => e);
    expect(repeated).toBeInstanceOf(ParameterError);
    expect(repeated).toMatchObject({
      code: 'unavailable',
      parameter: '/a',
      message: 'SSM listing of /a did not end (2 pages, a page token repeated): not used',
    });
    expect(loop.sent).toHaveLength(2);
    let n = 0;
    const endless = fakeSsm(() => ({ Parameters: [], NextToken: `t${++n}` }));
    const many = await pagesOf(listParameterNames(endless.ssm, '/a', soon(), { maxPages: 50 })).catch(
      (e: unknown) => e,
    );
    expect(many).toMatchObject({ message: 'SSM listing of /a did not end (50 pages): not used' });
    expect(endless.sent).toHaveLength(50);
    expect(MAX_LISTING_PAGES).toBe(10_000);
  });

  it('aborts a page at the deadline and answers timeout', async () => {
    const { ssm, sent } = fakeSsm(never);
    const started = Date.now();
    const error = await rejection(pagesOf(listParameterNames(ssm, '/a', deadlineAt(Date.now() + 60))));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.code).toBe('timeout');
    expect(error.parameter).toBe('/a');
    const signal = sent[0]?.options?.abortSignal as AbortSignal;
    expect(signal.aborted).toBe(true);
    expect((signal.reason as DeadlineExceeded).what).toBe('SSM DescribeParameters');
  });
});

describe('getParameters (fake client)', () => {
  it('reads up to 10 names at once, decrypted, and answers the ones found by name', async () => {
    const { ssm, sent } = fakeSsm(() => ({
      Parameters: [
        { Name: '/t/b', Value: 'vb' },
        { Name: '/t/a', Value: 'va' },
        { Name: '/not/asked', Value: 'x' },
      ],
      InvalidParameters: ['/t/c'],
    }));
    const { deadline, runs } = spyDeadline();
    const found = await getParameters(ssm, ['/t/a', '/t/b', '/t/c'], deadline, 777);
    expect([...found.keys()]).toEqual(['/t/b', '/t/a']);
    expect(found.get('/t/a')?.Value).toBe('va');
    expect(sent[0]?.command).toBeInstanceOf(GetParametersCommand);
    expect(sent[0]?.input).toStrictEqual({ Names: ['/t/a', '/t/b', '/t/c'], WithDecryption: true });
    expect(runs).toEqual([{ what: 'SSM GetParameters', capMs: 777 }]);
    expect(GET_PARAMETERS_BATCH).toBe(10);
  });

  it('sends nothing for no names, refuses more than 10, and names the parameters in its errors', async () => {
    const idle = fakeSsm(() => ({}));
    expect((await getParameters(idle.ssm, [], soon())).size).toBe(0);
    expect(idle.sent).toHaveLength(0);
    const names = Array.from({ length: 11 }, (_, i) => `/t/${i}`);
    await expect(getParameters(idle.ssm, names, soon())).rejects.toThrow('at most 10 names');
    const denied = fakeSsm(() => {
      throw sdkError('AccessDeniedException');
    });
    const error = await rejection(getParameters(denied.ssm, ['/t/a', '/t/b'], soon()));
    expect(error).toMatchObject({ code: 'denied', parameter: '/t/a (and 1 more)' });
    const one = await rejection(getParameters(denied.ssm, ['/t/a'], soon()));
    expect(one.parameter).toBe('/t/a');
  });
});

describe('SSM over the wire (stand-in)', () => {
  let standIn: AwsStandIn;
  let ssm: SSMClient;

  beforeAll(async () => {
    standIn = await startAwsStandIn();
    ssm = new SSMClient({
      region: 'sa-east-1',
      endpoint: standIn.url,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    ssm.destroy();
    await standIn.close();
  });
  beforeEach(() => {
    standIn.misbehave.clear();
    standIn.misbehaveParameters.clear();
    standIn.calls.length = 0;
  });

  it('reads the latest version, or the one asked for with name:version', async () => {
    standIn.put('/w/token', 'first-value', Date.now() - 60_000);
    standIn.put('/w/token', 'second-value');
    const latest = await getParameter(ssm, '/w/token', soon());
    expect(latest.Value).toBe('second-value');
    expect(latest.Version).toBe(2);
    expect(latest.LastModifiedDate).toBeInstanceOf(Date);
    expect(await readSecureString(ssm, '/w/token:1', soon())).toBe('first-value');
    expect(standIn.calls).toEqual(['AmazonSSM.GetParameter /w/token', 'AmazonSSM.GetParameter /w/token:1']);
  });

  it('maps the SDK errors for a missing parameter and a missing version to not-found', async () => {
    standIn.put('/w/one', 'only-value');
    const missing = await rejection(getParameter(ssm, '/w/missing', soon()));
    expect(missing.code).toBe('not-found');
    expect(missing.message).toContain(
      'create it: aws ssm put-parameter --type SecureString --name /w/missing',
    );
    const version = await rejection(getParameter(ssm, '/w/one:7', soon()));
    expect(version.code).toBe('not-found');
    expect(version.parameter).toBe('/w/one:7');
  });

  it('tears down a hanging read at the deadline', async () => {
    standIn.put('/w/hang', 'value');
    standIn.misbehaveParameters.set('/w/hang', 'hang');
    const started = Date.now();
    const error = await rejection(getParameter(ssm, '/w/hang', deadlineAt(Date.now() + 300)));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.code).toBe('timeout');
  });

  it('answers unavailable, never the value, when the connection is reset', async () => {
    standIn.put('/w/reset', SECRET);
    standIn.misbehaveParameters.set('/w/reset', 'reset');
    const error = await rejection(getParameter(ssm, '/w/reset', soon()));
    expect(error.code).toBe('unavailable');
    expect(error.message).toMatch(/^SSM parameter \/w\/reset could not be read \(.+\)$/);
    expect(error.message).not.toContain(SECRET);
  });

  it('lists every name under a path across pages, reading no value; GetParameters reads them back', async () => {
    const names = Array.from(
      { length: 23 },
      (_, i) => `/list/${i % 2 ? 'deep/' : ''}p${String(i).padStart(2, '0')}`,
    );
    for (const name of names) standIn.put(name, `value-of-${name}`);
    standIn.put('/listed-elsewhere/x', 'not-under-the-path');
    standIn.describePageSize = 10;
    const pages = await pagesOf(listParameterNames(ssm, '/list', soon()));
    standIn.describePageSize = 50;
    expect(pages.flat().sort()).toEqual([...names].sort());
    expect(standIn.calls).toEqual(Array(3).fill('AmazonSSM.DescribeParameters'));
    const found = await getParameters(ssm, [...names.slice(0, 9), '/list/gone'], soon());
    expect(found.size).toBe(9);
    expect([...found.values()].every((p) => p.Value === `value-of-${p.Name}`)).toBe(true);
  });

  it('cuts a trickling page at the deadline', async () => {
    standIn.misbehave.set('AmazonSSM.DescribeParameters', 'trickle');
    const started = Date.now();
    const error = await rejection(pagesOf(listParameterNames(ssm, '/list', deadlineAt(Date.now() + 400))));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.code).toBe('timeout');
    expect(error.parameter).toBe('/list');
  });
});
