/**
 * The two Z-API calls the fleet needs (GET me, PUT update-webhook-chat-presence), each cut off at the
 * caller's deadline, with per-attempt timeouts and bounded retries (5xx, 429, timeouts and network
 * errors) with jittered backoff.
 *
 * No answer body ever reaches an error, a log or a CloudFormation Reason: an error says which call, the
 * HTTP status and a short code from an allow-list, and what to check. GET me's answer also carries the
 * instance token: only the fields listed in {@link InstanceState} are kept.
 *
 * @see ../../../../shared/zapi-docs/webhooks-on-chat-presence.en.md (PUT update-webhook-chat-presence)
 * @see ../../../../shared/zapi-docs/instance-me.en.md (GET me)
 */
import { type Deadline, DeadlineExceeded } from '../shared/aws/deadline.ts';
import { AdaptiveRateLimiter, RateLimitTimeout, retryAfterMs } from './rate-limit.ts';
import { FLEET_DEFAULTS } from './settings.ts';

export const DEFAULT_ZAPI_BASE_URL = 'https://api.z-api.io';

export interface ZapiCredentials {
  readonly instanceId: string;
  /** Instance token (goes in the URL path). */
  readonly token: string;
  /** Account security token, sent as the `Client-Token` header when the account requires one. */
  readonly clientToken?: string;
}

/** What GET me says about an instance, and nothing else (its answer also holds the token). */
export interface InstanceState {
  /** The chat-presence webhook URL Z-API calls; undefined when none is set. */
  readonly presenceChatCallbackUrl: string | undefined;
  readonly connected: boolean | undefined;
  /** When the instance expires (epoch ms), if Z-API said. */
  readonly dueAt: number | undefined;
  readonly paymentStatus: string | undefined;
}

export interface ZapiClientOptions {
  /** @default https://api.z-api.io */
  readonly baseUrl?: string;
  /** Timeout of one HTTP attempt (the deadline still bounds the whole call). @default 5_000 */
  readonly attemptTimeoutMs?: number;
  /** Attempts per call, the first included. @default 4 */
  readonly maxAttempts?: number;
  /** First backoff; doubled each retry, with jitter. @default 500 */
  readonly backoffBaseMs?: number;
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  /**
   * The run's request rate, shared by every client of the run (see ./rate-limit.ts): every attempt
   * waits for a slot, and a 429 slows them all.
   * @default - a limiter of this client's own at FLEET_DEFAULTS.zapiRequestsPerSecond
   */
  readonly limiter?: ZapiRateLimiter;
}

/** What a client needs from the run's rate limiter. */
export type ZapiRateLimiter = Pick<AdaptiveRateLimiter, 'acquire' | 'answered' | 'rateLimited' | 'stats'>;

/**
 * Why a call failed, from a fixed list (never text from the answer):
 * - `client-token-required`: the account requires its Client-Token (Z-API's `null not allowed`)
 * - `unauthorized`: 401/403; `not-found`: 404; `rejected`: any other 4xx
 * - `rate-limited`: 429; `server-error`: 5xx; `timeout`; `network`
 * - `not-json`: a 2xx whose body is not JSON; `not-accepted`: the PUT's answer was not `{"value": true}`
 * - `out-of-time`: no answer before the run's deadline because of the rate limit (a `Retry-After` or
 *   the run's pacing reaching past it): nothing was learnt, the next run asks again
 */
export type ZapiErrorCode =
  | 'client-token-required'
  | 'unauthorized'
  | 'not-found'
  | 'rejected'
  | 'rate-limited'
  | 'server-error'
  | 'timeout'
  | 'network'
  | 'not-json'
  | 'not-accepted'
  | 'out-of-time';

/** A Z-API call that failed; its message is safe to show anywhere. */
export class ZapiError extends Error {
  constructor(
    message: string,
    readonly code: ZapiErrorCode,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ZapiError';
  }
}

/** Z-API error strings recognised in a 4xx answer, each mapped to a code. Nothing else is read. */
const KNOWN_ERRORS: ReadonlyMap<string, ZapiErrorCode> = new Map([
  ['null not allowed', 'client-token-required'],
]);

/** Largest answer read; the rest is dropped (GET me answers are well under 4 KB). */
const MAX_ANSWER_BYTES = 256 * 1024;

/** Z-API instance tokens and Client-Tokens are letters and digits; anything else could change a request. */
export const ZAPI_TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * Every form a secret can take in text someone else produced: raw, percent-encoded (only where needed,
 * or every byte; upper and lower case hex), JSON-escaped (`\/`, `\"`, `\uXXXX`), percent-decoded,
 * upper- and lower-cased, and as base64, base64url and hex of its bytes.
 */
export function secretForms(secret: string): string[] {
  const encoded = encodeURIComponent(secret);
  const bytes = Buffer.from(secret, 'utf8');
  const hex = bytes.toString('hex');
  const everyByte = hex.replace(/../g, (pair) => `%${pair}`);
  const forms = new Set([
    secret,
    encoded,
    encoded.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    everyByte,
    everyByte.toUpperCase(),
    hex,
    hex.toUpperCase(),
    bytes.toString('base64'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
  ]);
  const json = JSON.stringify(secret).slice(1, -1);
  forms.add(json);
  forms.add(json.replaceAll('/', '\\/'));
  forms.add(
    secret.replace(/[^\x20-\x7e]|["\\/]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  );
  try {
    forms.add(decodeURIComponent(secret));
  } catch {
    // not percent-encoded text
  }
  // Hosts are lower-cased, and some systems upper-case what they echo.
  forms.add(secret.toLowerCase());
  forms.add(secret.toUpperCase());
  return [...forms];
}

/** Replaces every form of each secret (see {@link secretForms}) with `***`. Defence in depth. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  const values = secrets
    .filter((s): s is string => typeof s === 'string' && s.length >= 4)
    .flatMap(secretForms)
    .filter((s) => s.length >= 4)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const value of values) out = out.split(value).join('***');
  return out;
}

/** A URL as it may be shown: its host only (its path may carry a token, its query a secret). */
/**
 * A URL as it may be shown: its host only (its path may carry a token, its query a secret), and within
 * the host any label long enough to be a key (some webhook services put theirs in a subdomain) masked.
 */
export function hostOf(url: string): string {
  try {
    const host = new URL(url).host;
    if (!host) return '(no host)';
    return host
      .split('.')
      .map((label) => (label.length >= 16 ? '***' : label))
      .join('.');
  } catch {
    return '(not a URL)';
  }
}

/** Z-API's `paymentStatus` is a word: anything else (or longer) is not shown. */
const PAYMENT_STATUS = /^[A-Za-z][A-Za-z_ -]{0,23}$/;

interface Answer {
  readonly status: number;
  readonly text: string;
  /** The `Retry-After` header of a 429. */
  readonly retryAfter?: string | null;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class ZapiClient {
  private readonly baseUrl: string;
  private readonly attemptTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly limiter: ZapiRateLimiter;

  constructor(
    private readonly credentials: ZapiCredentials,
    options: ZapiClientOptions = {},
  ) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_ZAPI_BASE_URL).replace(/\/+$/, '');
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 5_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    this.limiter =
      options.limiter ?? new AdaptiveRateLimiter({ requestsPerSecond: FLEET_DEFAULTS.zapiRequestsPerSecond });
  }

  /** GET me: the instance's webhook URL and health (the rest of the answer, token included, is dropped). */
  async me(deadline: Deadline): Promise<InstanceState> {
    const what = 'GET me';
    const body = this.json(await this.call('GET', 'me', what, deadline), what);
    const url = body.presenceChatCallbackUrl;
    const connected = body.connected;
    const payment = body.paymentStatus;
    return {
      // As Z-API holds it: a blank value is none, anything else is kept untrimmed (a no-break space after
      // the secret is part of what Z-API's client requests; see ./url.ts).
      presenceChatCallbackUrl: typeof url === 'string' && url.trim() !== '' ? url : undefined,
      connected: typeof connected === 'boolean' ? connected : undefined,
      dueAt: epochMs(body.due),
      paymentStatus:
        typeof payment !== 'string' || payment === ''
          ? undefined
          : PAYMENT_STATUS.test(payment)
            ? payment
            : '(unrecognized)',
    };
  }

  /** PUT update-webhook-chat-presence; resolves only when Z-API answers 2xx with `{"value": true}`. */
  async updateChatPresenceWebhook(webhookUrl: string, deadline: Deadline): Promise<void> {
    const what = 'PUT update-webhook-chat-presence';
    const answer = await this.call(
      'PUT',
      'update-webhook-chat-presence',
      what,
      deadline,
      JSON.stringify({ value: webhookUrl }),
    );
    if (this.json(answer, what).value !== true) {
      throw new ZapiError(
        `Z-API answered ${answer.status} to ${what} without accepting the URL (not-accepted); check that the instance id and token belong together and that the instance is active`,
        'not-accepted',
        answer.status,
      );
    }
  }

  private json(answer: Answer, what: string): Record<string, unknown> {
    try {
      const value = JSON.parse(answer.text) as unknown;
      if (typeof value === 'object' && value !== null && !Array.isArray(value))
        return value as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new ZapiError(
      `Z-API answered ${answer.status} to ${what} with a body that is not a JSON object (not-json); check the Z-API base URL`,
      'not-json',
      answer.status,
    );
  }

  private async call(
    method: 'GET' | 'PUT',
    operation: string,
    what: string,
    deadline: Deadline,
    body?: string,
  ): Promise<Answer> {
    const { instanceId, token, clientToken } = this.credentials;
    const url = `${this.baseUrl}/instances/${encodeURIComponent(instanceId)}/token/${encodeURIComponent(token)}/${operation}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (clientToken) headers['client-token'] = clientToken;

    let last: ZapiError | undefined;
    // Attempts that failed for a reason other than a 429: at most maxAttempts. A 429 is retried after its
    // wait until the deadline (the limiter refuses a slot past it).
    let failures = 0;
    // 429s in a row for this call that show Z-API refusing this instance: the first, then each one after
    // Z-API answered another request (since this call's previous 429). At MAX_429_IN_A_ROW the call
    // gives up, failed. A 429 while Z-API answers nobody (a storm; or nobody else asked, which looks the
    // same) says nothing about the instance: it keeps its turn until the deadline (then out-of-time,
    // notChecked, never failed).
    let refusals = 0;
    let answeredAtLast429 = 0;
    // How long the 429 this call just had makes it wait (see AdaptiveRateLimiter.rateLimited).
    let wait = 0;
    for (;;) {
      if (last !== undefined && last.code !== 'rate-limited') {
        if (failures >= this.maxAttempts) break;
        const pause = Math.round(this.backoffBaseMs * 2 ** (failures - 1) * (0.5 + this.random()));
        // A retry that could not finish before the deadline is not started.
        if (deadline.remainingMs() < pause + Math.min(this.attemptTimeoutMs, 1_000)) break;
        await this.sleep(pause);
      }
      try {
        await this.limiter.acquire(deadline, 0, wait);
        wait = 0;
      } catch (error) {
        if (!(error instanceof RateLimitTimeout)) throw error;
        // A call that already failed for its own reason keeps that reason (it is no rate-limit case).
        if (last !== undefined && last.code !== 'rate-limited') throw last;
        throw new ZapiError(
          `Z-API ${what}: not answered before the run's deadline (${last?.code === 'rate-limited' ? 'Z-API kept answering 429' : 'waiting for the rate limit'}) (out-of-time); the next run asks again`,
          'out-of-time',
          last?.status,
        );
      }
      let answer: Answer;
      try {
        answer = await deadline.run(
          `Z-API ${what}`,
          async (signal) => {
            const response = await this.fetch(url, {
              method,
              headers,
              ...(body !== undefined && { body }),
              // Never follow a redirect: it would carry the Client-Token (and the URL with its secret)
              // to another origin.
              redirect: 'error',
              signal,
            });
            return {
              status: response.status,
              text: await readCapped(response),
              retryAfter: response.headers.get('retry-after'),
            };
          },
          this.attemptTimeoutMs,
        );
      } catch (error) {
        last = networkError(error, what);
        failures++;
        continue;
      }
      if (answer.status === 429) {
        wait = this.limiter.rateLimited(retryAfterMs(answer.retryAfter, Date.now()));
        last = new ZapiError(
          `Z-API answered 429 to ${what} (rate-limited); ${advice('rate-limited')}`,
          'rate-limited',
          429,
        );
        const { answered } = this.limiter.stats;
        if (refusals === 0 || answered > answeredAtLast429) refusals++;
        answeredAtLast429 = answered;
        if (refusals >= MAX_429_IN_A_ROW) throw last;
        continue;
      }
      refusals = 0;
      // A failing server says nothing about the rate; any other answer lets the rate grow.
      if (answer.status < 500) this.limiter.answered();
      if (answer.status >= 200 && answer.status < 300) return answer;
      const code = errorCode(answer);
      last = new ZapiError(
        `Z-API answered ${answer.status} to ${what} (${code}); ${advice(code)}`,
        code,
        answer.status,
      );
      failures++;
      // Any other 4xx will not get better by asking again.
      if (code !== 'server-error') throw last;
    }
    throw last ?? new ZapiError(`Z-API ${what}: no time left to try (timeout)`, 'timeout');
  }
}

/**
 * 429s in a row after which one call gives up (its instance failed, `rate-limited`): Z-API's account-wide
 * limit spreads its 429s over many instances (a few per thousand requests once the run adapted, each
 * instance in turn), so five in a row for one instance, with Z-API answering other requests between
 * them, is that instance refused, not the account busy. 429s with no answer to anyone between them (a
 * storm, or a fleet of one) count once: the call keeps its turn until the deadline.
 */
export const MAX_429_IN_A_ROW = 5;

/** Reads at most MAX_ANSWER_BYTES of a response body. */
async function readCapped(response: Response): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    size += chunk.byteLength;
    if (size >= MAX_ANSWER_BYTES) break;
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}

/** Z-API's `due`: seconds or milliseconds since the epoch. */
function epochMs(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return undefined;
  return value < 1e12 ? value * 1_000 : value;
}

function errorCode(answer: Answer): ZapiErrorCode {
  if (answer.status === 429) return 'rate-limited';
  if (answer.status >= 500) return 'server-error';
  try {
    const body = JSON.parse(answer.text) as { error?: unknown };
    const known = typeof body?.error === 'string' ? KNOWN_ERRORS.get(body.error) : undefined;
    if (known !== undefined) return known;
  } catch {
    // not JSON: the status decides
  }
  if (answer.status === 401 || answer.status === 403) return 'unauthorized';
  if (answer.status === 404) return 'not-found';
  return 'rejected';
}

function advice(code: ZapiErrorCode): string {
  switch (code) {
    case 'client-token-required':
      return 'the account requires its security token: store it as an SSM SecureString and set clientTokenParameter';
    case 'unauthorized':
      return 'check the instance token in SSM and, if the account uses one, the Client-Token (security token)';
    case 'not-found':
      return 'check the instance id and its token (they must belong to the same instance)';
    case 'rate-limited':
      return 'Z-API limits the request rate; the run slows down and retries';
    case 'server-error':
      return 'Z-API is failing or busy; the next sweep tries again';
    default:
      return 'check the instance in the Z-API panel and the Z-API base URL';
  }
}

function networkError(error: unknown, what: string): ZapiError {
  if (error instanceof DeadlineExceeded || (error instanceof Error && error.name === 'AbortError')) {
    return new ZapiError(`Z-API did not answer ${what} in time (timeout)`, 'timeout');
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const code = (cause as { code?: unknown } | undefined)?.code;
  const shown = typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code) ? ` ${code}` : '';
  return new ZapiError(`Z-API could not be reached for ${what} (network${shown})`, 'network');
}
