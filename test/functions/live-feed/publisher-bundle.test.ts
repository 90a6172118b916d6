/**
 * The shipped publisher bundle (built as a synth and `npm pack` build it: lib/bundling.ts), run in a fresh
 * Node process as Lambda runs it, against the AppSync stand-in that checks its SigV4 signature: it
 * publishes a derived event byte-exact, and fails the invocation (for Lambda to retry, then dead-letter)
 * when AppSync keeps refusing, before its deadline.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
} from '../../../functions/shared/contract/presence-contract.ts';
import { buildBundle } from '../../../lib/bundling.ts';
import {
  type AppSyncStandIn,
  STANDIN_CREDENTIALS,
  startAppSyncStandIn,
} from '../../support/appsync-standin.ts';
import { invokeBundle } from '../../support/invoke.ts';

const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const HOSTILE = `"q" \\ \n </script> 😀 \u2028`;

describe('the shipped publisher bundle', () => {
  let appsync: AppSyncStandIn;
  let bundle: string;
  const env = () => ({
    AWS_REGION: 'sa-east-1',
    AWS_ACCESS_KEY_ID: STANDIN_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: STANDIN_CREDENTIALS.secretAccessKey,
    FEED_HTTP_DOMAIN: appsync.url,
    FEED_DEAD_LETTERS_URL: 'https://sqs.sa-east-1.amazonaws.com/123456789012/unused',
  });
  const event = {
    version: '0',
    id: 'bundle-event-1',
    source: DERIVED_EVENT_SOURCE,
    'detail-type': DERIVED_DETAIL_TYPES.activityStarted,
    account: '123456789012',
    time: '2026-12-07T12:00:00Z',
    region: 'sa-east-1',
    resources: [],
    detail: {
      instanceId: A,
      phone: HOSTILE,
      activity: 'typing',
      at: '2026-12-07T12:00:00.000Z',
      sequence: 42,
      current: { online: true, activity: 'typing' },
    },
  };

  beforeAll(async () => {
    const directory = mkdtempSync(join(tmpdir(), 'feed-publisher-'));
    buildBundle('feedPublisher', directory);
    bundle = join(directory, 'index.mjs');
    appsync = await startAppSyncStandIn();
  }, 60_000);
  afterAll(() => appsync?.close());

  it('publishes a derived event, signed with the function’s credentials, byte-exact on its channel', async () => {
    const { results } = await invokeBundle(bundle, [event], env());
    expect(results).toEqual([{ outcome: 'published', requests: 1 }]);
    expect(appsync.requests).toEqual([{ channel: `/presence/${A}`, events: 1, status: 200, signed: true }]);
    const message = JSON.parse(appsync.accepted[0]?.body as string);
    expect(message).toEqual({
      kind: 'derived',
      id: 'bundle-event-1',
      type: event['detail-type'],
      detail: event.detail,
    });
  });

  it('fails the invocation when AppSync keeps refusing, before its deadline, logging codes and no chat', async () => {
    appsync.always = { kind: 'status', status: 503 };
    const started = Date.now();
    const { results, stdout } = await invokeBundle(bundle, [event], env(), 3_000);
    appsync.always = undefined;
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(results).toEqual([
      { error: expect.stringMatching(/not published to the live feed \(http-503\)/) },
    ]);
    expect(stdout).toContain('"msg":"live feed publish failed"');
    expect(stdout).not.toContain(HOSTILE.slice(0, 5));
  });
});
