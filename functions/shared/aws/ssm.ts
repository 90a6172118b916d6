/**
 * SSM Parameter Store reads with a deadline on every call, and SDK errors turned into messages an
 * operator can act on. No message ever carries a parameter's value.
 */
import {
  DescribeParametersCommand,
  type DescribeParametersCommandOutput,
  GetParameterCommand,
  GetParametersCommand,
  type Parameter,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { type Deadline, DeadlineExceeded } from './deadline.ts';
import { knownName } from './error-name.ts';

export type SsmPort = Pick<SSMClient, 'send'>;

export type ParameterErrorCode = 'not-found' | 'denied' | 'empty' | 'invalid' | 'timeout' | 'unavailable';

/** A parameter could not be read; the message names it and says what to do, never its value. */
export class ParameterError extends Error {
  constructor(
    message: string,
    readonly code: ParameterErrorCode,
    readonly parameter: string,
  ) {
    super(message);
    this.name = 'ParameterError';
  }
}

/** The command that creates a SecureString parameter (the value left for the operator to fill in). */
export function putParameterCommand(name: string, value = '...'): string {
  return `aws ssm put-parameter --type SecureString --name ${name} --value ${value}`;
}

/** Turns an SDK error into a {@link ParameterError} naming the parameter and what to check. */
export function parameterError(error: unknown, name: string): ParameterError {
  if (error instanceof ParameterError) return error;
  if (error instanceof DeadlineExceeded) {
    return new ParameterError(
      `SSM parameter ${name} could not be read in time (${error.afterMs} ms)`,
      'timeout',
      name,
    );
  }
  const kind = error instanceof Error ? error.name : 'UnknownError';
  // Shown only when known: the SDK takes a service error's name from the answer.
  const shown = knownName(kind);
  if (kind === 'ParameterNotFound' || kind === 'ParameterVersionNotFound') {
    return new ParameterError(
      `SSM parameter ${name} does not exist; create it: ${putParameterCommand(name)}`,
      'not-found',
      name,
    );
  }
  if (kind === 'AccessDeniedException' || kind.startsWith('KMS') || kind === 'InvalidKeyId') {
    return new ParameterError(
      `SSM parameter ${name} cannot be read (${shown}); if it is encrypted with a customer-managed KMS key, allow this function's role kms:Decrypt on it`,
      'denied',
      name,
    );
  }
  return new ParameterError(`SSM parameter ${name} could not be read (${shown})`, 'unavailable', name);
}

/** GetParameter WithDecryption, cut off at the deadline (or `capMs`). `name` may carry `:version`. */
export async function getParameter(
  ssm: SsmPort,
  name: string,
  deadline: Deadline,
  capMs?: number,
): Promise<Parameter> {
  try {
    const { Parameter: parameter } = await deadline.run(
      'SSM GetParameter',
      (abortSignal) =>
        ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal }),
      capMs,
    );
    if (!parameter?.Value) throw new ParameterError(`SSM parameter ${name} is empty`, 'empty', name);
    return parameter;
  } catch (error) {
    throw parameterError(error, name);
  }
}

/** The decrypted value of a SecureString parameter. */
export async function readSecureString(
  ssm: SsmPort,
  name: string,
  deadline: Deadline,
  capMs?: number,
): Promise<string> {
  return (await getParameter(ssm, name, deadline, capMs)).Value as string;
}

/**
 * The most pages a listing reads (SSM may answer fewer parameters a page than asked for): far more than
 * any fleet needs, and a bound all the same.
 */
export const MAX_LISTING_PAGES = 10_000;

/** GetParameters reads at most this many names per call (SSM's limit). */
export const GET_PARAMETERS_BATCH = 10;

/**
 * The names (never the values) of every parameter under `path`, recursively, page by page: SSM
 * DescribeParameters with a `Path` filter, 50 names a page. Nothing is decrypted and no value is read,
 * so listing needs no read permission on the parameters themselves. Each page call carries the deadline
 * (and `pageCapMs`). A listing that does not end (more than {@link MAX_LISTING_PAGES} pages, or a page
 * token seen before) fails instead of running for ever.
 */
export async function* listParameterNames(
  ssm: SsmPort,
  path: string,
  deadline: Deadline,
  options: { readonly pageCapMs?: number; readonly maxPages?: number } = {},
): AsyncGenerator<string[], void, undefined> {
  const seen = new Set<string>();
  const maxPages = options.maxPages ?? MAX_LISTING_PAGES;
  let nextToken: string | undefined;
  for (let pages = 0; ; pages++) {
    if (pages >= maxPages || (nextToken !== undefined && seen.has(nextToken))) {
      throw new ParameterError(
        `SSM listing of ${path} did not end (${pages} pages${pages >= maxPages ? '' : ', a page token repeated'}): not used`,
        'unavailable',
        path,
      );
    }
    if (nextToken !== undefined) seen.add(nextToken);
    let page: DescribeParametersCommandOutput;
    try {
      page = await deadline.run(
        'SSM DescribeParameters',
        (abortSignal) =>
          ssm.send(
            new DescribeParametersCommand({
              ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: [path] }],
              MaxResults: 50,
              ...(nextToken !== undefined && { NextToken: nextToken }),
            }),
            { abortSignal },
          ),
        options.pageCapMs,
      );
    } catch (error) {
      throw parameterError(error, path);
    }
    const names = (page.Parameters ?? [])
      .map((parameter) => parameter.Name)
      .filter((name): name is string => typeof name === 'string' && name !== '');
    if (names.length > 0) yield names;
    nextToken = page.NextToken || undefined;
    if (nextToken === undefined) return;
  }
}

/**
 * GetParameters WithDecryption for at most {@link GET_PARAMETERS_BATCH} names, cut off at the deadline
 * (or `capMs`): the parameters found, by name. Names SSM does not know (deleted since they were listed)
 * are simply absent. Errors name the first parameter asked for.
 */
export async function getParameters(
  ssm: SsmPort,
  names: readonly string[],
  deadline: Deadline,
  capMs?: number,
): Promise<Map<string, Parameter>> {
  if (names.length > GET_PARAMETERS_BATCH) {
    throw new Error(`getParameters reads at most ${GET_PARAMETERS_BATCH} names at once`);
  }
  const found = new Map<string, Parameter>();
  if (names.length === 0) return found;
  try {
    const answer = await deadline.run(
      'SSM GetParameters',
      (abortSignal) =>
        ssm.send(new GetParametersCommand({ Names: [...names], WithDecryption: true }), { abortSignal }),
      capMs,
    );
    for (const parameter of answer.Parameters ?? []) {
      if (parameter.Name !== undefined && names.includes(parameter.Name))
        found.set(parameter.Name, parameter);
    }
  } catch (error) {
    throw parameterError(
      error,
      names.length === 1 ? (names[0] as string) : `${names[0]} (and ${names.length - 1} more)`,
    );
  }
  return found;
}
