/**
 * Registration core: make Z-API call this deployment's webhook URL (create/update), and let go of it on
 * delete. Dependencies (SSM, the Z-API client, the logger) are passed in.
 *
 * Secrets (instance token, webhook secret, client token) are read from SSM here, used, and never
 * returned, logged or left in an error message.
 */
import { MIN_SECRET_LENGTH } from '../presence-webhook/secret.ts';
import { redact, type ZapiCredentials } from './zapi.ts';

export interface RegistrationProps {
  readonly instanceId: string;
  /** `https://…/instances/{instanceId}/presence`, without the secret. */
  readonly webhookUrl: string;
  readonly instanceTokenParameter: string;
  readonly webhookSecretParameter: string;
  readonly clientTokenParameter?: string;
}

/** What registration needs from a Z-API client (see ZapiClient). */
export interface ZapiPort {
  updateChatPresenceWebhook(webhookUrl: string): Promise<void>;
  presenceChatCallbackUrl(): Promise<string | undefined>;
}

export interface RegistrationDeps {
  /** Reads a SecureString; throws {@link RegistrationError} with an actionable message. */
  readParameter(name: string): Promise<string>;
  zapi(credentials: ZapiCredentials, extraSecrets: readonly string[]): ZapiPort;
  readonly log: Pick<Console, 'info' | 'warn'>;
}

/** A registration failure whose message is safe to show in CloudFormation. */
export class RegistrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistrationError';
  }
}

/** The URL Z-API is given: the webhook URL plus the secret. */
export function registeredUrl(webhookUrl: string, secret: string): string {
  return `${webhookUrl}?secret=${encodeURIComponent(secret)}`;
}

function assertHttps(webhookUrl: string): void {
  let url: URL;
  try {
    url = new URL(webhookUrl);
  } catch {
    throw new RegistrationError(`webhook URL "${webhookUrl}" is not a URL`);
  }
  if (url.protocol !== 'https:') {
    throw new RegistrationError(`refusing to register "${webhookUrl}": Z-API only calls HTTPS webhooks`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new RegistrationError(`webhook URL "${webhookUrl}" must not carry a query string or fragment`);
  }
}

async function credentialsFor(props: RegistrationProps, deps: RegistrationDeps): Promise<ZapiCredentials> {
  const token = await deps.readParameter(props.instanceTokenParameter);
  const clientToken = props.clientTokenParameter
    ? await deps.readParameter(props.clientTokenParameter)
    : undefined;
  return { instanceId: props.instanceId, token, ...(clientToken !== undefined && { clientToken }) };
}

/** Create/Update: PUT the URL, then confirm with GET me that Z-API calls exactly it. */
export async function register(props: RegistrationProps, deps: RegistrationDeps): Promise<void> {
  assertHttps(props.webhookUrl);
  const known: string[] = [];
  try {
    const secret = await deps.readParameter(props.webhookSecretParameter);
    known.push(secret);
    if (secret.length < MIN_SECRET_LENGTH) {
      throw new RegistrationError(
        `SSM parameter ${props.webhookSecretParameter} holds a webhook secret shorter than ${MIN_SECRET_LENGTH} characters; the receiver refuses it. Store a longer one (e.g. openssl rand -hex 32)`,
      );
    }
    const credentials = await credentialsFor(props, deps);
    known.push(credentials.token, ...(credentials.clientToken ? [credentials.clientToken] : []));
    const zapi = deps.zapi(credentials, [secret]);
    const target = registeredUrl(props.webhookUrl, secret);

    await zapi.updateChatPresenceWebhook(target);
    const current = await zapi.presenceChatCallbackUrl();
    if (current !== target) {
      const shown = current === undefined ? 'none' : `"${redact(withoutQuery(current), known)}"`;
      throw new RegistrationError(
        `Z-API accepted the update but its instance data (GET me) shows chat-presence webhook ${shown} instead of "${props.webhookUrl}?secret=***"; check the instance in the Z-API panel`,
      );
    }
    deps.log.info({ msg: 'webhook registered', instanceId: props.instanceId, webhookUrl: props.webhookUrl });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new RegistrationError(redact(message, known));
  }
}

/**
 * Delete: never fails. If Z-API still calls this deployment's URL, ask it to clear the webhook (an empty
 * value; Z-API's docs do not say whether it accepts one) and log what happened.
 */
export async function deregister(props: RegistrationProps, deps: RegistrationDeps): Promise<void> {
  const known: string[] = [];
  try {
    const credentials = await credentialsFor(props, deps);
    known.push(credentials.token, ...(credentials.clientToken ? [credentials.clientToken] : []));
    const zapi = deps.zapi(credentials, []);
    const current = await zapi.presenceChatCallbackUrl();
    if (current === undefined || !isOurs(current, props.webhookUrl)) {
      deps.log.info({
        msg: 'webhook left alone: Z-API does not call this deployment',
        instanceId: props.instanceId,
      });
      return;
    }
    try {
      await zapi.updateChatPresenceWebhook('');
      deps.log.info({ msg: 'webhook cleared', instanceId: props.instanceId });
    } catch (error) {
      deps.log.warn({
        msg: 'Z-API still calls the deleted endpoint and did not clear it; clear the chat-presence webhook in the Z-API panel',
        instanceId: props.instanceId,
        error: redact(error instanceof Error ? error.message : String(error), known),
      });
    }
  } catch (error) {
    deps.log.warn({
      msg: 'could not check the webhook on delete; the stack deletion goes on',
      instanceId: props.instanceId,
      error: redact(error instanceof Error ? error.message : String(error), known),
    });
  }
}

/** A URL as it may be shown: never its query string or fragment (another deployment's secret may be there). */
export function withoutQuery(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}${parsed.search || parsed.hash ? '?***' : ''}`;
  } catch {
    return '(not a URL)';
  }
}

function isOurs(current: string, webhookUrl: string): boolean {
  return current === webhookUrl || current.startsWith(`${webhookUrl}?`);
}
