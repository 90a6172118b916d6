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
import { deadlineAt } from '../shared/aws/deadline.ts';
import { INSTANCE_ID_PATTERN } from '../shared/contract/presence-contract.ts';
import { masterSecretReader } from '../shared/secrets/master-secret.ts';
import { instanceWebhookUrl, masterSecretDefect } from '../shared/secrets/webhook-secret.ts';
import { STAGE_PATTERN, stageParameter } from '../shared/stage.ts';
import { DEFAULT_PORT, readLocalMaster } from './server.ts';

export const DEFAULT_SECRET_PARAMETER = '/zapi/webhook-secret';

const USAGE =
  'usage: npm run -s webhook-url -- <INSTANCE_ID> [--base-url URL] [--parameter NAME | --stage NAME | --local]\n' +
  '  base URL: the stack output WebhookBaseUrl, e.g.\n' +
  '  aws cloudformation describe-stacks --stack-name ZapiPresence --query "Stacks[0].Outputs[?OutputKey==\'WebhookBaseUrl\'].OutputValue" --output text';

/** What `--help` prints. */
export const HELP = `${USAGE}

Prints an instance's full webhook URL, its secret included (treat it like one).

  --base-url URL     the deployed stack's WebhookBaseUrl       default $WEBHOOK_BASE_URL
  --parameter NAME   the master secret's SSM parameter         default ${DEFAULT_SECRET_PARAMETER}
  --stage NAME       a stage's master, /zapi-NAME/webhook-secret
  --local            \`npm start\`'s receiver: http://127.0.0.1:$PORT and the master it generated
  -h, --help         this text
The master is $WEBHOOK_SECRET when set; otherwise it is read from SSM with your AWS credentials.`;

function parseOptions(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'base-url': { type: 'string' },
      parameter: { type: 'string' },
      stage: { type: 'string' },
      local: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** The instance's full webhook URL, or the help text for `--help`. */
export async function webhookUrl(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  readMaster: (parameter: string) => Promise<string> = readMasterFromSsm,
): Promise<string> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return HELP;
  const instanceId = positionals[0];
  if (instanceId === undefined) throw new Error(`no instance id given\n${USAGE}`);
  if (!INSTANCE_ID_PATTERN.test(instanceId))
    throw new Error(`"${instanceId}" is not a Z-API instance id (letters, digits, - and _)\n${USAGE}`);
  const sources = (['parameter', 'stage', 'local'] as const).filter((o) => values[o] !== undefined);
  if (sources.length > 1)
    throw new Error(`--${sources.join(' and --')} name different masters: give one\n${USAGE}`);
  if (values.stage !== undefined && !STAGE_PATTERN.test(values.stage))
    throw new Error(
      `--stage "${values.stage}" is not a stage name (a letter, then up to 30 letters, digits and -)`,
    );
  const port = env.PORT?.trim() ? Number(env.PORT) : DEFAULT_PORT;
  const local = values.local === true;
  // --local is the local receiver: a deployed base URL in the environment does not apply to it.
  const base = (values['base-url'] ?? (local ? `http://127.0.0.1:${port}` : env.WEBHOOK_BASE_URL))?.trim();
  if (!base) throw new Error(`no base URL: give --base-url or set WEBHOOK_BASE_URL\n${USAGE}`);
  if (!/^https?:\/\/[^/?#\s]+\/?$/.test(base))
    throw new Error(
      `--base-url must be a URL like https://host (the stack's WebhookBaseUrl: the route is at its root, so no path), got "${base}"`,
    );
  let master = env.WEBHOOK_SECRET ?? (local ? readLocalMaster(port) : undefined);
  if (master === undefined && local) {
    throw new Error(`no master from \`npm start\` on port ${port}: start it first, or set WEBHOOK_SECRET`);
  }
  if (master === undefined) {
    // A stage keeps its master under /zapi-{stage}/ (docs/settings.md).
    const parameter = values.parameter ?? stageParameter(DEFAULT_SECRET_PARAMETER, values.stage);
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
  // The AWS SDK's notice that its releases after January 2027 need Node.js 22 would print on every call
  // on Node 20 (this command supports 20.19+): off the way the SDK documents, unless the caller set it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  try {
    process.stdout.write(`${await webhookUrl(process.argv.slice(2), process.env)}\n`);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
