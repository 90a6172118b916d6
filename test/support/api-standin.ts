/**
 * A stand-in for API Gateway's HTTP API in front of a shipped receiver bundle: a child Node process (a
 * cold module with its own environment, as Lambda runs it) serves HTTP on 127.0.0.1, turns each request
 * into a payload-v2 event for `POST /instances/{instanceId}/presence` and answers what the handler
 * returns. Any other route is answered 404, as API Gateway does. Scriptable: `throttle` answers every
 * request 429 before the receiver runs (the stage throttle), `hang` never answers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';

export type ApiMode = 'normal' | 'throttle' | 'hang';

export interface ApiStandIn {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  readonly url: string;
  /** Switches how the next requests are answered. */
  setMode(mode: ApiMode): Promise<void>;
  /** What the receiver process printed (its log lines). */
  output(): string;
  close(): Promise<void>;
}

const SCRIPT = `
import { createServer } from 'node:http';
const { handler } = await import(process.env.__BUNDLE);
let mode = 'normal';
const ROUTE = /^\\/instances\\/([^/]+)\\/presence$/;
const server = createServer(async (request, response) => {
  const url = new URL(request.url, 'http://127.0.0.1');
  if (url.pathname === '/__mode') { mode = url.searchParams.get('to'); response.end('ok'); return; }
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  if (mode === 'hang') return;
  if (mode === 'throttle') {
    response.writeHead(429, { 'content-type': 'application/json' });
    response.end('{"message":"Too Many Requests"}');
    return;
  }
  const match = ROUTE.exec(url.pathname);
  if (request.method !== 'POST' || !match) {
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end('{"message":"Not Found"}');
    return;
  }
  const deadline = Date.now() + 10_000;
  const result = await handler(
    {
      version: '2.0',
      routeKey: 'POST /instances/{instanceId}/presence',
      rawPath: url.pathname,
      pathParameters: { instanceId: decodeURIComponent(match[1]) },
      queryStringParameters: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), String(v)])),
      requestContext: { requestId: 'api-standin' },
      body: Buffer.concat(chunks).toString('utf8'),
      isBase64Encoded: false,
    },
    { awsRequestId: 'api-standin', getRemainingTimeInMillis: () => deadline - Date.now() },
  );
  response.writeHead(result.statusCode, result.headers ?? {});
  response.end(result.body ?? '');
});
server.listen(0, '127.0.0.1', () => process.stdout.write('__PORT__' + server.address().port + '\\n'));
`;

/** Starts the stand-in around `bundleFile` with the receiver's environment `env`. */
export function startApiStandIn(bundleFile: string, env: Record<string, string>): Promise<ApiStandIn> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], {
      env: {
        PATH: process.env.PATH ?? '',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...env,
        __BUNDLE: pathToFileURL(bundleFile).href,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`the API stand-in did not start: ${out}`));
    }, 15_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const port = /__PORT__(\d+)/.exec(out)?.[1];
      if (port && !started) {
        started = true;
        clearTimeout(timer);
        const url = `http://127.0.0.1:${port}`;
        resolve({
          url,
          async setMode(mode) {
            await fetch(`${url}/__mode?to=${mode}`);
          },
          output: () => out,
          close: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill();
            }),
        });
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`the API stand-in exited ${code}: ${out}`));
      }
    });
  });
}
