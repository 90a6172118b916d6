/**
 * `npm run webhook-url -- <INSTANCE_ID> [--base-url URL] [--parameter NAME]`: prints an instance's full
 * webhook URL, secret included, for registering it by hand in the Z-API panel or testing with curl.
 *
 *   npm run -s webhook-url -- 3C01A2B3C4D5E6F7 --base-url https://abc123.execute-api.sa-east-1.amazonaws.com
 *
 * The master secret comes from $WEBHOOK_SECRET when set, else from the SSM parameter (default
 * /zapi/webhook-secret) with your AWS credentials. The base URL comes from --base-url or
 * $WEBHOOK_BASE_URL (the stack output WebhookBaseUrl). The URL is the only thing printed to stdout; it
 * holds the instance's secret, so treat it like one.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SSMClient } from '@aws-sdk/client-ssm';
import { deadlineAt } from '../shared/deadline.ts';
import { masterSecretReader } from '../shared/master-secret.ts';
import { INSTANCE_ID_PATTERN } from '../shared/presence-contract.ts';
import { instanceWebhookUrl, masterSecretDefect } from '../shared/webhook-secret.ts';

export const DEFAULT_SECRET_PARAMETER = '/zapi/webhook-secret';

const USAGE =
  'usage: npm run -s webhook-url -- <INSTANCE_ID> [--base-url URL] [--parameter NAME | --stage NAME]\n' +
  '  base URL: the stack output WebhookBaseUrl, e.g.\n' +
  '  aws cloudformation describe-stacks --stack-name ZapiPresence --query "Stacks[0].Outputs[?OutputKey==\'WebhookBaseUrl\'].OutputValue" --output text';

export async function webhookUrl(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  readMaster: (parameter: string) => Promise<string> = readMasterFromSsm,
): Promise<string> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { 'base-url': { type: 'string' }, parameter: { type: 'string' }, stage: { type: 'string' } },
  });
  const instanceId = positionals[0];
  if (instanceId === undefined || !INSTANCE_ID_PATTERN.test(instanceId)) throw new Error(USAGE);
  const base = (values['base-url'] ?? env.WEBHOOK_BASE_URL)?.trim();
  if (!base) throw new Error(`no base URL: give --base-url or set WEBHOOK_BASE_URL\n${USAGE}`);
  if (!/^https?:\/\/[^/?#\s]+\/?$/.test(base))
    throw new Error(`--base-url must be a URL like https://host, got "${base}"`);
  let master = env.WEBHOOK_SECRET;
  if (master === undefined) {
    // A stage keeps its master under /zapi-{stage}/ (docs/settings.md).
    const parameter =
      values.parameter ??
      (values.stage === undefined ? DEFAULT_SECRET_PARAMETER : `/zapi-${values.stage}/webhook-secret`);
    master = await readMaster(parameter);
  } else {
    const defect = masterSecretDefect(master);
    if (defect !== undefined) throw new Error(`WEBHOOK_SECRET ${defect}`);
  }
  return instanceWebhookUrl(base, instanceId, master);
}

async function readMasterFromSsm(parameter: string): Promise<string> {
  if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION && !process.env.AWS_PROFILE) {
    throw new Error(
      `no AWS region to read ${parameter} from SSM: set AWS_REGION (and credentials, or AWS_PROFILE), or give the master itself in WEBHOOK_SECRET`,
    );
  }
  const read = masterSecretReader({ ssm: new SSMClient({}), parameterName: parameter, graceMs: 0 });
  try {
    return (await read(deadlineAt(Date.now() + 15_000))).current;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/CredentialsProviderError|ExpiredToken|UnrecognizedClient/.test(message)) {
      throw new Error(
        `${message}: no usable AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or give the master itself in WEBHOOK_SECRET`,
      );
    }
    throw error;
  }
}

async function main(): Promise<void> {
  try {
    process.stdout.write(`${await webhookUrl(process.argv.slice(2), process.env)}\n`);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
