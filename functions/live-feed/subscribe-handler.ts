/**
 * The live feed's `onSubscribe` handler: AppSync Events runs it (APPSYNC_JS) for every subscription to
 * the `presence` namespace, after checking the agent's token. It allows exactly `/presence/{instanceId}`
 * for an instance the token's groups name, or every instance for a member of `zapi-presence-all`
 * (functions/shared/access/agent-access.ts); anything else gets `util.unauthorized()`, which the client
 * receives as a `subscribe_error` of type `Unauthorized`.
 *
 * Bundled by lib/bundling.ts into one ESM file, `@aws-appsync/utils` left to the runtime; the groups claim
 * is written into the bundle at synth (handlers have no environment). Publishing needs IAM (the
 * namespace allows no other publisher), so no onPublish handler is needed: agents' tokens cannot publish.
 */
import { util } from '@aws-appsync/utils';
import { groupsFromClaim, subscribeDecision } from '../shared/access/agent-access.ts';
import { GROUPS_CLAIM_PLACEHOLDER } from './settings.ts';

/** Written at synth: `cognito:groups`, or the claim the OIDC issuer lists groups in. */
const GROUPS_CLAIM: string = GROUPS_CLAIM_PLACEHOLDER;

/** The parts of AppSync's context this handler reads. */
export interface SubscribeContext {
  readonly identity?: {
    readonly claims?: Record<string, unknown> | null;
    readonly groups?: readonly string[] | null;
  } | null;
  readonly info?: {
    readonly channel?: { readonly path?: string } | null;
    readonly channelNamespace?: { readonly name?: string } | null;
  } | null;
}

export function onSubscribe(ctx: SubscribeContext): void {
  const identity = ctx.identity;
  const claimed = identity?.claims?.[GROUPS_CLAIM];
  // A Cognito identity also lists its groups on its own (`groups`); an OIDC one only in its claims.
  const groups = groupsFromClaim(
    claimed === undefined && GROUPS_CLAIM === 'cognito:groups' ? identity?.groups : claimed,
  );
  const decision = subscribeDecision(ctx.info?.channelNamespace?.name, ctx.info?.channel?.path, groups);
  if (!decision.allowed) {
    console.log(`live feed subscription refused: ${decision.reason}`);
    util.unauthorized();
  }
}
