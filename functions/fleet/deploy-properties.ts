/**
 * The deploy-time registration custom resource's properties, shared by the construct and the onEvent
 * handler (names only, never values). Its own module, so lib/ does not load the handler.
 */
export const REGISTRATION_PROPERTIES = {
  /** Comma-separated instance ids that must register for the deploy to succeed (`-c instanceId=...`). */
  requiredInstanceIds: 'RequiredInstanceIds',
  /** Differs on every deploy, so CloudFormation sends an Update (and registration runs) each time. */
  deployNonce: 'DeployNonce',
  /** Marks the fleet resource; resources without it come from versions with one resource per instance. */
  fleet: 'Fleet',
} as const;

/** The custom resource's type and physical id. */
export const REGISTRATION_RESOURCE_TYPE = 'Custom::ZapiPresenceFleet';
export const REGISTRATION_PHYSICAL_ID = 'zapi-chat-presence-fleet';
