/**
 * Stands in for `@aws-sdk/credential-provider-node` in the Lambda bundles only (an esbuild alias set in
 * lib/presence-function.ts). Lambda gives a function its role's credentials in the environment, which is
 * the first thing the Node default chain tries; the rest of that chain (SSO, shared ini files,
 * credential_process, web identity, ECS and EC2 metadata) can never apply there and made up a quarter
 * of the bundle. Local runs and tests keep the full chain.
 */
export { fromEnv as defaultProvider } from '@aws-sdk/credential-provider-env';
