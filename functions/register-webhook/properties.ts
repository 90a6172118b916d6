/**
 * The registration custom resource's properties, shared by the construct (lib/webhook-registration.ts)
 * and the onEvent handler. Its own module, so lib/ does not load the handler (and its SDK client).
 */
/** Resource properties, as the construct sets them (names only, never values). */
export const REGISTRATION_PROPERTIES = {
  instanceId: 'InstanceId',
  webhookUrl: 'WebhookUrl',
  instanceTokenParameter: 'InstanceTokenParameter',
  webhookSecretParameter: 'WebhookSecretParameter',
  clientTokenParameter: 'ClientTokenParameter',
  deployNonce: 'DeployNonce',
} as const;
