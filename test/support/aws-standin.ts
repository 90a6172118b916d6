/**
 * A stand-in for EventBridge (PutEvents) and SSM (GetParameter with versions, GetParameters, and
 * DescribeParameters with a Path filter and paging: names only, never values) speaking the AWS JSON 1.1 protocol on 127.0.0.1, for tests and benchmarks that exercise the
 * real SDK path through AWS_ENDPOINT_URL_*. Misbehaviours are scriptable per operation: never answer,
 * answer headers and then stall, trickle the body one byte at a time, or reset the connection.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PutEventsEntry {
  readonly EventBusName?: string;
  readonly Source?: string;
  readonly DetailType?: string;
  readonly Detail?: string;
}

/** How an operation misbehaves. */
export type Misbehaviour =
  | 'hang' // never answers
  | 'stall' // 200 headers and half a body, then nothing
  | 'trickle' // 200 headers, then one byte every `trickleEveryMs`, forever
  | 'reset'; // destroys the connection

export interface ParameterVersion {
  readonly value: string;
  readonly modifiedAt: number;
}

export interface AwsStandIn {
  readonly url: string;
  /** Entries EventBridge accepted, in order. */
  readonly events: PutEventsEntry[];
  /** Every X-Amz-Target received, in order (GetParameter calls as `AmazonSSM.GetParameter name`). */
  readonly calls: string[];
  /** Sets a parameter's value: a new version, modified now (or at `modifiedAt`). */
  put(name: string, value: string, modifiedAt?: number): void;
  delete(name: string): void;
  /** The versions of a parameter, oldest first. */
  versions(name: string): readonly ParameterVersion[];
  /** Next PutEvents entries answer with these entry error codes, one per entry. */
  failNextEntries(...errorCodes: string[]): void;
  /** Operations (X-Amz-Target, e.g. `AWSEvents.PutEvents`) that misbehave. */
  readonly misbehave: Map<string, Misbehaviour>;
  /** GetParameter for these names (e.g. `/s:1`) misbehaves this way. */
  readonly misbehaveParameters: Map<string, Misbehaviour>;
  /** Delay before every answer. */
  latencyMs: number;
  trickleEveryMs: number;
  /** DescribeParameters pages from this one on (0 = the first) answer AccessDeniedException. */
  describeFailsFromPage: number | undefined;
  /** Names per DescribeParameters page (at most what the request asks for). @default 50 */
  describePageSize: number;
  close(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function answer(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  });
  response.end(text);
}

/** Carries out a misbehaviour; the connection stays open until the client gives up (or the stand-in closes). */
export function misbehaveOn(
  response: ServerResponse,
  how: Misbehaviour,
  trickleEveryMs: number,
  timers: Set<ReturnType<typeof setInterval>>,
): void {
  if (how === 'hang') return;
  if (how === 'reset') {
    response.socket?.destroy();
    return;
  }
  response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': 100_000 });
  response.write('{"Entries":[');
  if (how === 'stall') return;
  const timer = setInterval(() => {
    if (response.destroyed || response.writableEnded) {
      clearInterval(timer);
      timers.delete(timer);
      return;
    }
    response.write(' ');
  }, trickleEveryMs);
  timers.add(timer);
  response.on('close', () => {
    clearInterval(timer);
    timers.delete(timer);
  });
}

export async function startAwsStandIn(parameters: Record<string, string> = {}): Promise<AwsStandIn> {
  const events: PutEventsEntry[] = [];
  const calls: string[] = [];
  const store = new Map<string, ParameterVersion[]>();
  const entryFailures: string[] = [];
  const misbehave = new Map<string, Misbehaviour>();
  const misbehaveParameters = new Map<string, Misbehaviour>();
  const timers = new Set<ReturnType<typeof setInterval>>();
  const state: {
    latencyMs: number;
    trickleEveryMs: number;
    describeFailsFromPage: number | undefined;
    describePageSize: number;
  } = { latencyMs: 0, trickleEveryMs: 200, describeFailsFromPage: undefined, describePageSize: 50 };
  const put = (name: string, value: string, modifiedAt = Date.now()) => {
    const history = store.get(name) ?? [];
    history.push({ value, modifiedAt });
    store.set(name, history);
  };
  for (const [name, value] of Object.entries(parameters)) put(name, value, Date.now() - 86_400_000);

  const parameterOf = (name: string, history: ParameterVersion[], version: number) => {
    const v = history[version - 1] as ParameterVersion;
    return {
      Name: name,
      Type: 'SecureString',
      Value: v.value,
      Version: version,
      LastModifiedDate: v.modifiedAt / 1000,
      ARN: `arn:aws:ssm:sa-east-1:123456789012:parameter${name}`,
    };
  };

  const server: Server = createServer(async (request, response) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    const body = JSON.parse((await readBody(request)) || '{}') as Record<string, unknown>;
    calls.push(
      target === 'AmazonSSM.GetParameter'
        ? `${target} ${String(body.Name)}`
        : target === 'AmazonSSM.GetParameters'
          ? `${target} ${(body.Names as string[]).join(',')}`
          : target,
    );
    if (state.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, state.latencyMs));
    const how =
      misbehave.get(target) ??
      (target === 'AmazonSSM.GetParameter' ? misbehaveParameters.get(String(body.Name)) : undefined);
    if (how) return misbehaveOn(response, how, state.trickleEveryMs, timers);

    if (target === 'AWSEvents.PutEvents') {
      const entries = (body.Entries as PutEventsEntry[] | undefined) ?? [];
      let failed = 0;
      const results = entries.map((entry) => {
        const code = entryFailures.shift();
        if (code) {
          failed++;
          return { ErrorCode: code, ErrorMessage: `stand-in: ${code}` };
        }
        events.push(entry);
        return { EventId: randomUUID() };
      });
      return answer(response, 200, { FailedEntryCount: failed, Entries: results });
    }
    if (target === 'AmazonSSM.GetParameter') {
      const [name, versionText] = String(body.Name).split(':') as [string, string | undefined];
      const history = store.get(name);
      if (!history) {
        return answer(response, 400, {
          __type: 'ParameterNotFound',
          message: `Parameter ${name} not found.`,
        });
      }
      const version = versionText === undefined ? history.length : Number(versionText);
      if (!(version >= 1 && version <= history.length)) {
        return answer(response, 400, { __type: 'ParameterVersionNotFound', message: 'no such version' });
      }
      return answer(response, 200, { Parameter: parameterOf(name, history, version) });
    }
    if (target === 'AmazonSSM.GetParameters') {
      const names = (body.Names as string[] | undefined) ?? [];
      if (names.length > 10) {
        return answer(response, 400, { __type: 'ValidationException', message: 'at most 10 names' });
      }
      const found = names.filter((name) => store.has(name));
      return answer(response, 200, {
        Parameters: found.map((name) => {
          const history = store.get(name) as ParameterVersion[];
          return parameterOf(name, history, history.length);
        }),
        InvalidParameters: names.filter((name) => !store.has(name)),
      });
    }
    if (target === 'AmazonSSM.DescribeParameters') {
      const filters =
        (body.ParameterFilters as Array<{ Key: string; Option?: string; Values: string[] }>) ?? [];
      const pathFilter = filters.find((f) => f.Key === 'Path');
      const path = String(pathFilter?.Values[0] ?? '/').replace(/\/+$/, '');
      const recursive = pathFilter?.Option === 'Recursive';
      const max = Math.min(Number(body.MaxResults ?? 50), 50, state.describePageSize);
      const start = Number(body.NextToken ?? 0);
      if (state.describeFailsFromPage !== undefined && start / max >= state.describeFailsFromPage) {
        return answer(response, 400, { __type: 'AccessDeniedException', message: 'stand-in: denied' });
      }
      const names = [...store.keys()]
        .filter(
          (name) =>
            name.startsWith(`${path}/`) && (recursive || name.slice(path.length + 1).indexOf('/') < 0),
        )
        .sort();
      const page = names.slice(start, start + max);
      const next = start + max < names.length ? String(start + max) : undefined;
      return answer(response, 200, {
        // Metadata only: DescribeParameters never answers a value.
        Parameters: page.map((name) => {
          const { Value: _value, ...metadata } = parameterOf(name, store.get(name) as ParameterVersion[], 1);
          return metadata;
        }),
        ...(next !== undefined && { NextToken: next }),
      });
    }
    return answer(response, 400, {
      __type: 'UnknownOperationException',
      message: `stand-in does not speak ${target}`,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    events,
    calls,
    put,
    delete: (name) => store.delete(name),
    versions: (name) => [...(store.get(name) ?? [])],
    failNextEntries: (...codes) => entryFailures.push(...codes),
    misbehave,
    misbehaveParameters,
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(value: number) {
      state.latencyMs = value;
    },
    get trickleEveryMs() {
      return state.trickleEveryMs;
    },
    set trickleEveryMs(value: number) {
      state.trickleEveryMs = value;
    },
    get describeFailsFromPage() {
      return state.describeFailsFromPage;
    },
    set describeFailsFromPage(value: number | undefined) {
      state.describeFailsFromPage = value;
    },
    get describePageSize() {
      return state.describePageSize;
    },
    set describePageSize(value: number) {
      state.describePageSize = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearInterval(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Environment that points the SDK at the stand-in, with dummy credentials (nothing leaves 127.0.0.1). */
export function standInEnvironment(url: string): Record<string, string> {
  return {
    AWS_REGION: 'sa-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDSTANDIN',
    AWS_SECRET_ACCESS_KEY: 'stand-in-secret-key',
    AWS_ENDPOINT_URL_EVENTBRIDGE: url,
    AWS_ENDPOINT_URL_SSM: url,
  };
}
