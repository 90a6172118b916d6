/**
 * Stands in for `@aws-sdk/credential-provider-node` in the Lambda bundles only (an esbuild alias set in
 * lib/presence-function.ts). Lambda gives a function its role's credentials in the environment, which is
 * the first thing the Node default chain tries; the rest of that chain (SSO, shared ini files,
 * credential_process, web identity, container and EC2 metadata) can never apply to a Node.js Lambda and
 * made up a quarter of the bundle. Local runs and tests keep the full chain.
 *
 * Should Lambda ever hand credentials over through the container-credentials endpoint instead (as it
 * does for SnapStart in other runtimes), this fails with a message that says so, rather than with a
 * bare "could not load credentials".
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { memoize } from '@smithy/core/config';

type Credentials = Awaited<ReturnType<ReturnType<typeof fromEnv>>>;

export const defaultProvider = (init: Parameters<typeof fromEnv>[0] = {}) => {
  if (
    !process.env.AWS_ACCESS_KEY_ID &&
    (process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI || process.env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)
  ) {
    throw new Error(
      'this Lambda bundle reads credentials from the environment only, but Lambda provided a container-credentials endpoint: remove the credential-provider alias in lib/presence-function.ts',
    );
  }
  // Environment credentials do not change during a sandbox's life: read them once.
  return memoize(
    fromEnv(init),
    (credentials: Credentials) =>
      credentials.expiration !== undefined && credentials.expiration.getTime() < Date.now(),
  );
};
