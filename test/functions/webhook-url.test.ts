/** `npm run webhook-url`: an instance's full webhook URL, for registering it by hand. */
import { describe, expect, it } from 'vitest';
import { webhookUrl } from '../../functions/local/webhook-url.ts';
import { deriveInstanceSecret } from '../../functions/shared/webhook-secret.ts';

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
    [['bad id'], {}, /^usage: npm run -s webhook-url/],
    [['INST1'], {}, /^no base URL: give --base-url or set WEBHOOK_BASE_URL/],
    [['INST1', '--base-url', 'ftp://x'], {}, /--base-url must be a URL like https:\/\/host/],
    [['INST1', '--base-url', BASE], { WEBHOOK_SECRET: 'short' }, /^WEBHOOK_SECRET holds 5 characters/],
  ])('explains what is wrong: %j', async (argv, env, message) => {
    await expect(webhookUrl(argv, env, async () => MASTER)).rejects.toThrow(message);
  });
});
