/**
 * `npm run send -- <STATUS> [options]`: posts a Z-API-shaped chat-presence callback (the documented
 * examples) to the local server or any URL, and prints the answer. `npm run send -- --help` (HELP below)
 * lists the options. The secret is never printed.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { hostOf, redact } from '../fleet/zapi.ts';
import {
  CALLBACK_TYPE,
  PRESENCE_STATUSES,
  type PresenceStatus,
} from '../shared/contract/presence-contract.ts';
import { deriveInstanceSecret } from '../shared/secrets/webhook-secret.ts';
import { DEFAULT_INSTANCE_ID, DEFAULT_PORT, readLocalMaster } from './server.ts';

export interface SendResult {
  readonly status: number;
  readonly body: string;
}

/**
 * A callback shaped like Z-API's documented examples; with `participant`, a group member's presence as
 * group callbacks carry it (`isGroup`, `participantPhone`).
 */
export function sampleCallback(
  status: PresenceStatus,
  instanceId: string,
  phone = '5544999999999',
  lastSeen: number | null = null,
  participant?: string,
) {
  return {
    type: CALLBACK_TYPE,
    phone,
    status,
    lastSeen,
    instanceId,
    ...(participant !== undefined && { isGroup: true, participantPhone: participant }),
  };
}

/** The local server's own host names: its generated master may be used for them, never elsewhere. */
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const USAGE = `usage: npm run send -- <${PRESENCE_STATUSES.join('|')}> [--url URL] [--instance ID] [--secret S] [--phone P] [--participant P] [--last-seen N]`;

/** What `--help` prints. */
export const HELP = `${USAGE}

Posts a Z-API-shaped chat-presence callback and prints the answer. The secret is never printed.

  --url URL         base URL, or a full webhook URL (with ?secret=...)   default http://127.0.0.1:$PORT (${DEFAULT_PORT})
  --instance ID     instance id, in the URL and the body                 default $ZAPI_INSTANCE_ID, else ${DEFAULT_INSTANCE_ID}
  --secret S        the master secret; the instance's URL secret is derived from it
                                                                          default $WEBHOOK_SECRET, or the one \`npm start\` generated
                                                                          (that one only for a URL on 127.0.0.1 or localhost)
  --phone P         chat phone, group id or @lid id                      default 5544999999999
  --participant P   in a group chat (--phone ...-group): the member whose presence it is
  --last-seen N     lastSeen epoch number                                default null
  -h, --help        this text

examples:
  npm run send -- COMPOSING
  npm run send -- PAUSED --phone 120363019502650977-group --instance ID
  npm run send -- COMPOSING --phone 120363019502650977-group --participant 5511977776666
  npm run send -- AVAILABLE --url "$(npm run -s webhook-url -- ID --base-url "$WEBHOOK_BASE_URL")"   # deployed`;

function parseOptions(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        instance: { type: 'string' },
        secret: { type: 'string' },
        phone: { type: 'string' },
        participant: { type: 'string' },
        'last-seen': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    // node:util names the option it did not know; the usage line says which ones it does.
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
}

/** Resolves the target URL (without printing the secret) and posts the callback. */
export async function send(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  print: (line: string) => void,
): Promise<SendResult | undefined> {
  const { values, positionals } = parseOptions(argv);
  if (values.help) {
    print(HELP);
    return undefined;
  }
  const status = positionals[0]?.toUpperCase();
  if (!status) throw new Error(`no status given\n${USAGE}`);
  if (!(PRESENCE_STATUSES as readonly string[]).includes(status))
    throw new Error(`unknown status ${positionals[0]}\n${USAGE}`);
  const lastSeen = values['last-seen'] === undefined ? null : Number(values['last-seen']);
  if (lastSeen !== null && !Number.isFinite(lastSeen)) throw new Error('--last-seen must be a number');

  const port = env.PORT?.trim() ? Number(env.PORT) : DEFAULT_PORT;
  let url = new URL(values.url ?? `http://127.0.0.1:${port}`);
  if (url.username !== '' || url.password !== '')
    throw new Error(
      '--url must not carry a user name or password (user:password@): they would be sent and printed',
    );
  // A full webhook URL names its instance; otherwise --instance, $ZAPI_INSTANCE_ID or LOCAL.
  const inPath = /\/instances\/([^/]+)\/presence\/?$/.exec(url.pathname)?.[1];
  const instanceId =
    values.instance ??
    (inPath === undefined ? undefined : decodeURIComponent(inPath)) ??
    env.ZAPI_INSTANCE_ID?.split(',')[0]?.trim() ??
    DEFAULT_INSTANCE_ID;
  if (inPath === undefined) {
    url = new URL(
      `${url.pathname.replace(/\/+$/, '')}/instances/${encodeURIComponent(instanceId)}/presence${url.search}`,
      url,
    );
  }
  // A URL that already carries its secret is used as it is; otherwise the instance's secret is derived
  // from the master, exactly as the deployed receiver and the reconciler do.
  let secret = url.searchParams.get('secret') ?? undefined;
  if (secret === undefined) {
    // The master `npm start` generated goes only to the local server (the default URL, or one on loopback).
    const local = values.url === undefined || LOOPBACK.has(url.hostname);
    const master =
      values.secret ??
      env.WEBHOOK_SECRET ??
      (local ? readLocalMaster(url.port ? Number(url.port) : port) : undefined);
    if (master !== undefined) secret = deriveInstanceSecret(master, instanceId);
  }
  if (secret !== undefined) url.searchParams.set('secret', secret);

  const body = JSON.stringify(
    sampleCallback(status as PresenceStatus, instanceId, values.phone, lastSeen, values.participant),
  );
  const shown = `${url.origin}${url.pathname}${secret === undefined ? ' (no secret)' : '?secret=***'}`;
  print(`POST ${shown}`);
  print(`> ${body}`);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      // A redirect would carry the secret (in the URL) elsewhere: show it, do not follow it.
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
    });
  } catch (error) {
    // fetch's own messages can hold the whole URL, its secret included: name the host and the cause.
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
    const code = (cause as { code?: unknown } | undefined)?.code;
    const why =
      typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code)
        ? code
        : error instanceof Error && error.name === 'TimeoutError'
          ? 'no answer within 15 s'
          : // undici's own words ("bad port"), scrubbed all the same.
            redact(cause?.message ?? 'the request failed', [secret, values.secret, env.WEBHOOK_SECRET]).slice(
              0,
              120,
            );
    throw new Error(`POST to ${url.host} failed: ${why}`);
  }
  const text = await response.text();
  // Whatever the other side echoes back, the secret is not printed.
  // (Eight characters at least: a real secret has 32 or more, and masking a test value such as "wrong"
  // would garble the server's own words.)
  const shownText = redact(
    text,
    [secret, values.secret, env.WEBHOOK_SECRET].filter((x): x is string => x !== undefined && x.length >= 8),
  );
  const location = response.headers.get('location');
  print(
    `< ${response.status} ${shownText}${location ? ` (redirect not followed: ${hostOf(location)})` : ''}`,
  );
  return { status: response.status, body: text };
}

async function main(): Promise<void> {
  try {
    const result = await send(process.argv.slice(2), process.env, (line) =>
      process.stdout.write(`${line}\n`),
    );
    process.exit(result === undefined || (result.status >= 200 && result.status < 300) ? 0 : 1);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${message}\n`);
    if (message.includes('ECONNREFUSED'))
      process.stderr.write('is `npm start` running in another terminal?\n');
    process.exit(2);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
