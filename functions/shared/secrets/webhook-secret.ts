/**
 * The webhook URL secrets: part of the public contract.
 *
 * One master secret lives in SSM. Instance I is registered with
 *
 *   https://{api}/instances/{I}/presence?secret={base64url(HMAC-SHA256(key = master, message = I))}
 *
 * UTF-8 on both sides, base64url without padding (43 characters). A leaked URL opens one instance only;
 * the receiver derives the expected value from the instance in the path, so it needs no instance list.
 *
 * The master is restricted to an alphabet that survives every encoding unchanged (letters, digits, `-`
 * and `_`), so redaction and comparison never depend on how a value was escaped.
 */
import { createHmac } from 'node:crypto';

/** Shortest master accepted. */
export const MIN_MASTER_LENGTH = 32;
/** Longest master accepted (SSM standard parameters hold 4 KB; nobody needs more). */
export const MAX_MASTER_LENGTH = 512;
const MASTER_ALPHABET = /^[A-Za-z0-9_-]+$/;

/** A command that prints a good master secret. */
export const MASTER_SECRET_COMMAND = 'openssl rand -hex 32';

/** The secret in instance `instanceId`'s webhook URL. */
export function deriveInstanceSecret(master: string, instanceId: string): string {
  // Stryker disable next-line StringLiteral: equivalent, Node reads an empty encoding as UTF-8 too.
  return createHmac('sha256', Buffer.from(master, 'utf8')).update(instanceId, 'utf8').digest('base64url');
}

/** The full URL Z-API is given for an instance: `{base}/instances/{id}/presence?secret=...`. */
export function instanceWebhookUrl(baseUrl: string, instanceId: string, master: string): string {
  return `${instanceWebhookPath(baseUrl, instanceId)}?secret=${deriveInstanceSecret(master, instanceId)}`;
}

/** The URL without its secret (safe to show). */
export function instanceWebhookPath(baseUrl: string, instanceId: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/instances/${instanceId}/presence`;
}

/** What is wrong with a value as a master secret ("is empty", ...); undefined when it is fine. Never the value. */
export function masterSecretDefect(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return 'is empty';
  if (value.length < MIN_MASTER_LENGTH || value.length > MAX_MASTER_LENGTH) {
    return `holds ${value.length} characters; a master secret has ${MIN_MASTER_LENGTH} to ${MAX_MASTER_LENGTH}`;
  }
  if (!MASTER_ALPHABET.test(value)) return 'holds characters other than letters, digits, - and _';
  return undefined;
}

/**
 * Why a value read from SSM cannot be the master secret, naming the parameter and the command that
 * stores a good one; undefined when it is fine. The message never contains the value.
 */
export function masterSecretProblem(value: string | undefined, parameterName: string): string | undefined {
  const defect = masterSecretDefect(value);
  if (defect === undefined) return undefined;
  return `SSM parameter ${parameterName} ${defect}; store a good one: aws ssm put-parameter --overwrite --type SecureString --name ${parameterName} --value "$(${MASTER_SECRET_COMMAND})"`;
}
