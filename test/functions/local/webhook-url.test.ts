/** `npm run webhook-url`: an instance's full webhook URL, for registering it by hand. */
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { localStateFile } from '../../../functions/local/server.ts';
import { HELP, webhookUrl } from '../../../functions/local/webhook-url.ts';
import { deriveInstanceSecret } from '../../../functions/shared/secrets/webhook-secret.ts';
import { standInEnvironment, startAwsStandIn } from '../../support/aws-standin.ts';

const MASTER = 'url-master-0123456789abcdefghijklmnopqrs';
const BASE = 'https://abc123.execute-api.sa-east-1.amazonaws.com';

describe('webhook-url', () => {
  it('derives the URL from WEBHOOK_SECRET without asking SSM', async () => {
    const url = await webhookUrl(
      ['INST1', '--base-url', `${BASE}/`],
      { WEBHOOK_SECRET: MASTER },
      async () => {
        throw new Error('SSM must not be asked');
      },
    );
    expect(url).toBe(`${BASE}/instances/INST1/presence?secret=${deriveInstanceSecret(MASTER, 'INST1')}`);
  });

  it.each([
    [[], '/zapi/webhook-secret'],
    [['--stage', 'staging'], '/zapi-staging/webhook-secret'],
    [['--parameter', '/team/master'], '/team/master'],
  ])('reads the master from SSM: %j -> %s', async (extra, parameter) => {
    const asked: string[] = [];
    const url = await webhookUrl(['INST2', ...extra], { WEBHOOK_BASE_URL: BASE }, async (name) => {
      asked.push(name);
      return MASTER;
    });
    expect(asked).toEqual([parameter]);
    expect(url).toContain(`secret=${deriveInstanceSecret(MASTER, 'INST2')}`);
  });

  it.each([
    [['bad id'], {}, /^"bad id" is not a Z-API instance id[\s\S]*\nusage: npm run -s webhook-url/],
    [['INST1'], {}, /^no base URL: give --base-url or set WEBHOOK_BASE_URL/],
    [['INST1', '--base-url', 'ftp://x'], {}, /--base-url must be a URL like https:\/\/host/],
    [['INST1', '--base-url', BASE], { WEBHOOK_SECRET: 'short' }, /^WEBHOOK_SECRET holds 5 characters/],
    [['INST1', '--base-url', `${BASE}/prod`], {}, /the route is at its root, so no path\), got/],
    [
      ['INST1', '--base-url', BASE, '--stage', 'staging', '--parameter', '/x'],
      {},
      /^--parameter and --stage name different masters: give one\nusage:/,
    ],
    [['INST1', '--local', '--stage', 'staging'], {}, /^--stage and --local name different masters/],
    [['INST1', '--base-url', BASE, '--stage', 'Bad_Stage'], {}, /^--stage "Bad_Stage" is not a stage name/],
  ])('explains what is wrong: %j', async (argv, env, message) => {
    await expect(webhookUrl(argv, env, async () => MASTER)).rejects.toThrow(message);
  });
});

describe('webhook-url: help, mistakes, and the local receiver', () => {
  const ssmMustNotBeAsked = async (): Promise<string> => {
    throw new Error('SSM must not be asked');
  };

  it('prints its options for --help and -h', async () => {
    for (const flag of ['--help', '-h']) {
      const text = await webhookUrl([flag], {}, ssmMustNotBeAsked);
      expect(text).toBe(HELP);
      for (const option of ['--base-url', '--parameter', '--stage', '--local', '--help'])
        expect(text).toContain(option);
    }
  });

  it('names what is wrong: an unknown option, no instance, a bad instance id', async () => {
    await expect(webhookUrl(['INST1', '--base', BASE], {}, ssmMustNotBeAsked)).rejects.toThrow(
      /Unknown option '--base'[\s\S]*\nusage: npm run -s webhook-url -- <INSTANCE_ID>/,
    );
    await expect(webhookUrl([], {}, ssmMustNotBeAsked)).rejects.toThrow(/^no instance id given\nusage:/);
    await expect(webhookUrl(['bad/id'], {}, ssmMustNotBeAsked)).rejects.toThrow(
      /^"bad\/id" is not a Z-API instance id \(letters, digits, - and _\)\nusage:/,
    );
  });

  it('--local: the master `npm start` generated and its address, no SSM', async () => {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    const file = localStateFile(port);
    writeFileSync(file, JSON.stringify({ master: MASTER }), { mode: 0o600 });
    try {
      const url = await webhookUrl(['LOCAL', '--local'], { PORT: String(port) }, ssmMustNotBeAsked);
      expect(url).toBe(
        `http://127.0.0.1:${port}/instances/LOCAL/presence?secret=${deriveInstanceSecret(MASTER, 'LOCAL')}`,
      );
      // A deployed base URL in the environment is not the local receiver's.
      expect(
        await webhookUrl(
          ['LOCAL', '--local'],
          { PORT: String(port), WEBHOOK_BASE_URL: 'https://abc.example.com' },
          ssmMustNotBeAsked,
        ),
      ).toBe(url);
    } finally {
      rmSync(file, { force: true });
    }
    await expect(webhookUrl(['LOCAL', '--local'], { PORT: String(port) }, ssmMustNotBeAsked)).rejects.toThrow(
      `no master from \`npm start\` on port ${port}: start it first, or set WEBHOOK_SECRET`,
    );
  });

  it("prints the URL alone as a command, from SSM, without the AWS SDK's Node-22 notice", async () => {
    const standIn = await startAwsStandIn({ '/zapi/webhook-secret': MASTER });
    try {
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'functions/local/webhook-url.ts', 'INSTANCE1', '--base-url', BASE],
        {
          cwd: fileURLToPath(new URL('../../..', import.meta.url)),
          // As a user's shell has it: the notice is not switched off here (vitest's env does that).
          env: { ...env, ...standInEnvironment(standIn.url) },
          encoding: 'utf8',
        },
      );
      expect(stdout).toBe(
        `${BASE}/instances/INSTANCE1/presence?secret=${deriveInstanceSecret(MASTER, 'INSTANCE1')}\n`,
      );
      expect(stderr).toBe('');
    } finally {
      await standIn.close();
    }
  }, 30_000);
});
