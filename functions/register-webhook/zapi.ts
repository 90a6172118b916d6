/**
 * The two Z-API calls registration needs, with per-attempt timeouts, bounded retries with jittered
 * backoff, errors an operator can act on, and redaction: the instance token is part of Z-API's URL path
 * and the webhook secret is part of the registered URL, so both are scrubbed from every message.
 *
 * @see ../../../shared/zapi-docs/webhooks-on-chat-presence.en.md (PUT update-webhook-chat-presence)
 * @see ../../../shared/zapi-docs/instance-me.en.md (GET me: never log its answer, it holds the token)
 */

export const DEFAULT_ZAPI_BASE_URL = 'https://api.z-api.io';

export interface ZapiCredentials {
  readonly instanceId: string;
  /** Instance token (goes in the URL path). */
  readonly token: string;
  /** Account security token, sent as the `Client-Token` header when the account requires one. */
  readonly clientToken?: string;
}

export interface ZapiClientOptions {
  /** @default https://api.z-api.io */
  readonly baseUrl?: string;
  /** Timeout of one HTTP attempt. @default 5_000 */
  readonly attemptTimeoutMs?: number;
  /** Attempts per call, the first included. @default 4 */
  readonly maxAttempts?: number;
  /** First backoff; doubled each retry, with jitter. @default 500 */
  readonly backoffBaseMs?: number;
  /** No attempt starts after this instant (epoch ms); keeps the total inside the Lambda timeout. */
  readonly deadline?: number;
  /** Values scrubbed from every error message, besides the credentials. */
  readonly redact?: readonly string[];
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** A Z-API call that failed; its message is safe to show (no token, no secret). */
export class ZapiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly zapiMessage?: string,
  ) {
    super(message);
    this.name = 'ZapiError';
  }
}

/** Replaces every occurrence of each secret (and its URL-encoded form) with `***`. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  const values = secrets
    .filter((s): s is string => typeof s === 'string' && s.length >= 4)
    .flatMap((s) => [s, encodeURIComponent(s)])
    .sort((a, b) => b.length - a.length);
  for (const value of values) out = out.split(value).join('***');
  return out;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Answer {
  readonly status: number;
  readonly text: string;
}

export class ZapiClient {
  private readonly baseUrl: string;
  private readonly attemptTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly secrets: readonly (string | undefined)[];

  constructor(
    private readonly credentials: ZapiCredentials,
    private readonly options: ZapiClientOptions = {},
  ) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_ZAPI_BASE_URL).replace(/\/+$/, '');
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 5_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.sleep = options.sleep ?? defaultSleep;
    this.now = options.now ?? Date.now;
    this.secrets = [credentials.token, credentials.clientToken, ...(options.redact ?? [])];
  }

  /** Scrubs the token, the client token and any extra secret from a text. */
  scrub(text: string): string {
    return redact(text, this.secrets);
  }

  /** PUT update-webhook-chat-presence; resolves only when Z-API answers 2xx with `{"value": true}`. */
  async updateChatPresenceWebhook(webhookUrl: string): Promise<void> {
    const what = 'PUT update-webhook-chat-presence';
    const answer = await this.call(
      'PUT',
      'update-webhook-chat-presence',
      what,
      JSON.stringify({ value: webhookUrl }),
    );
    const body = this.parse(answer, what);
    if (body?.value !== true) {
      throw new ZapiError(
        `Z-API answered ${answer.status} to ${what} without accepting the URL (${this.snippet(answer.text)}); ` +
          'check that the instance id and token belong together and that the instance is active',
        answer.status,
      );
    }
  }

  /** GET me: the URL Z-API currently calls for chat presence (the rest of the answer, token included, is dropped). */
  async presenceChatCallbackUrl(): Promise<string | undefined> {
    const what = 'GET me';
    const answer = await this.call('GET', 'me', what);
    const body = this.parse(answer, what);
    const url = body?.presenceChatCallbackUrl;
    return typeof url === 'string' && url !== '' ? url : undefined;
  }

  private parse(answer: Answer, what: string): Record<string, unknown> | undefined {
    try {
      const value = JSON.parse(answer.text) as unknown;
      return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
    } catch {
      throw new ZapiError(
        `Z-API answered ${answer.status} to ${what} with a body that is not JSON (${this.snippet(answer.text)})`,
        answer.status,
      );
    }
  }

  private snippet(text: string): string {
    const clean = this.scrub(text).replace(/\s+/g, ' ').trim();
    return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean || 'empty body';
  }

  private async call(method: 'GET' | 'PUT', operation: string, what: string, body?: string): Promise<Answer> {
    const { instanceId, token, clientToken } = this.credentials;
    const url = `${this.baseUrl}/instances/${encodeURIComponent(instanceId)}/token/${encodeURIComponent(token)}/${operation}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (clientToken) headers['client-token'] = clientToken;

    let lastProblem = 'no attempt was made';
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      if (this.options.deadline !== undefined && this.now() + this.attemptTimeoutMs > this.options.deadline) {
        lastProblem += ' (stopped retrying: out of time)';
        break;
      }
      let answer: Answer;
      try {
        const response = await this.fetch(url, {
          method,
          headers,
          ...(body !== undefined && { body }),
          signal: AbortSignal.timeout(this.attemptTimeoutMs),
        });
        answer = { status: response.status, text: await response.text() };
      } catch (error) {
        lastProblem = describeNetworkError(error, this.attemptTimeoutMs);
        if (attempt < this.maxAttempts) await this.backoff(attempt);
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) return answer;
      const zapiMessage = zapiErrorMessage(answer.text);
      if (answer.status >= 500 || answer.status === 429) {
        lastProblem = `HTTP ${answer.status}${zapiMessage ? ` "${this.scrub(zapiMessage)}"` : ''}`;
        if (attempt < this.maxAttempts) await this.backoff(attempt);
        continue;
      }
      // Any other 4xx will not get better by asking again.
      throw new ZapiError(
        `Z-API answered ${answer.status} to ${what}${zapiMessage ? `: "${this.scrub(zapiMessage)}"` : ` (${this.snippet(answer.text)})`}; ${advice(answer.status, zapiMessage)}`,
        answer.status,
        zapiMessage === undefined ? undefined : this.scrub(zapiMessage),
      );
    }
    throw new ZapiError(
      `Z-API did not answer ${what} successfully after ${this.maxAttempts} attempt(s): ${lastProblem}`,
    );
  }

  private async backoff(attempt: number): Promise<void> {
    const ms = Math.round(this.backoffBaseMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
    await this.sleep(ms);
  }
}

function zapiErrorMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const message = body.error ?? body.message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}

function advice(status: number, zapiMessage: string | undefined): string {
  if (zapiMessage === 'null not allowed') {
    return 'the account requires its security token: store it as an SSM SecureString and deploy with -c clientTokenParameter=NAME';
  }
  if (status === 401 || status === 403) {
    return 'check the instance token in SSM and, if the account uses one, the Client-Token (security token)';
  }
  if (status === 404) return 'check the instance id and its token (they must belong to the same instance)';
  if (status === 405 || status === 415)
    return 'the Z-API host does not accept this request; check ZAPI_BASE_URL';
  return 'check the instance in the Z-API panel';
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no answer within ${timeoutMs} ms`;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const code = (cause as { code?: string } | undefined)?.code;
  return `network error${code ? ` (${code})` : ''}`;
}
