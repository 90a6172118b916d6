/**
 * A stand-in for EventBridge (PutEvents) and SSM (GetParameter) speaking the AWS JSON 1.1 protocol on
 * 127.0.0.1, for tests and benchmarks that exercise the real SDK path through AWS_ENDPOINT_URL_*.
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

export interface AwsStandIn {
  readonly url: string;
  /** Entries EventBridge accepted, in order. */
  readonly events: PutEventsEntry[];
  /** Every X-Amz-Target received, in order. */
  readonly calls: string[];
  /** SSM parameters by name. */
  readonly parameters: Map<string, string>;
  /** Next PutEvents entries answer with these entry error codes, one per call. */
  failNextEntries(...errorCodes: string[]): void;
  /** Requests for these X-Amz-Targets are never answered (a hung dependency). */
  readonly hang: Set<string>;
  /** Requests for these X-Amz-Targets get 200 headers and half a body, then nothing. */
  readonly stallAfterHeaders: Set<string>;
  /** GetParameter for these names (e.g. `/s:1`) is never answered. */
  readonly hangParameters: Set<string>;
  /** These parameters report version 2, modified just now (a fresh rotation); `name:1` is the old value. */
  readonly rotated: Set<string>;
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

export async function startAwsStandIn(parameters: Record<string, string> = {}): Promise<AwsStandIn> {
  const events: PutEventsEntry[] = [];
  const calls: string[] = [];
  const params = new Map(Object.entries(parameters));
  const entryFailures: string[] = [];
  const hang = new Set<string>();
  const stallAfterHeaders = new Set<string>();
  const hangParameters = new Set<string>();
  const rotated = new Set<string>();

  const server: Server = createServer(async (request, response) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    calls.push(target);
    if (hang.has(target)) return;
    const body = JSON.parse((await readBody(request)) || '{}') as Record<string, unknown>;
    if (stallAfterHeaders.has(target)) {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': 1000 });
      response.write('{"Entries":[');
      return;
    }
    if (target === 'AmazonSSM.GetParameter' && hangParameters.has(String(body.Name))) return;
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
      answer(response, 200, { FailedEntryCount: failed, Entries: results });
    } else if (target === 'AmazonSSM.GetParameter') {
      const name = String(body.Name);
      const value = params.get(name);
      if (value === undefined) {
        answer(response, 400, { __type: 'ParameterNotFound', message: `Parameter ${name} not found.` });
      } else {
        const fresh = rotated.has(name);
        answer(response, 200, {
          Parameter: {
            Name: name,
            Type: 'SecureString',
            Value: value,
            Version: fresh ? 2 : 1,
            ...(fresh && { LastModifiedDate: Date.now() / 1000 }),
          },
        });
      }
    } else {
      answer(response, 400, {
        __type: 'UnknownOperationException',
        message: `stand-in does not speak ${target}`,
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    events,
    calls,
    parameters: params,
    failNextEntries: (...codes) => entryFailures.push(...codes),
    hang,
    stallAfterHeaders,
    hangParameters,
    rotated,
    close: () =>
      new Promise<void>((resolve) => {
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
