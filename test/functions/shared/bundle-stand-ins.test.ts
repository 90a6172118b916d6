/** The modules esbuild puts in place of SDK parts in the Lambda bundles (lib/presence-function.ts). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultProvider } from '../../../functions/shared/bundle/lambda-credentials.ts';
import * as noEventStreams from '../../../functions/shared/bundle/no-event-streams.ts';

describe('lambda-credentials', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('reads the role credentials Lambda puts in the environment, once', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'ASIAEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret-example');
    vi.stubEnv('AWS_SESSION_TOKEN', 'token-example');
    const provider = defaultProvider();
    expect(await provider()).toMatchObject({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret-example',
      sessionToken: 'token-example',
    });
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'CHANGED');
    expect((await provider()).accessKeyId).toBe('ASIAEXAMPLE');
  });

  it('says what to change when Lambda offers a container-credentials endpoint instead', () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', 'http://127.0.0.1:9001/2021-04-23/credentials');
    expect(() => defaultProvider()).toThrow(
      /reads credentials from the environment only.*remove the credential-provider alias/,
    );
  });
});

describe('no-event-streams', () => {
  it('fails loudly if an event-stream operation is ever used', () => {
    expect(() => (noEventStreams.EventStreamSerde as () => never)()).toThrow(/event streams are not bundled/);
    expect(() => (noEventStreams.eventStreamSerdeProvider as () => never)()).toThrow(
      /event streams are not bundled/,
    );
  });
});
