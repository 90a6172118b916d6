/**
 * L3 construct (optional, `liveFeed`): presence on the agent's screen. An AppSync Events API whose
 * channel `/presence/{instanceId}` carries every derived event of that instance (and the COMPOSING and
 * RECORDING news that keep a "typing…" up), a snapshot route for a view to start from, and agents who
 * sign in with Cognito (a user pool this construct creates, or yours) or your own OIDC issuer.
 *
 *   bus ─rule: derived events─┐
 *   bus ─rule: COMPOSING,     ├─▶ publisher (Lambda, IAM-signed) ──▶ AppSync Events /presence/{instanceId}
 *        RECORDING ───────────┘     │ retries, then                        ▲ onSubscribe: the agent's groups
 *                                   ▼                                      │ name the instance (or all)
 *                             dead letters (alarmed)               agent's browser (functions/live-feed/client.ts)
 *   GET /instances/{instanceId}/presence (JWT, same rule) ──▶ the store's read function ──▶ table
 *
 * Nothing here runs while nobody publishes or connects: AppSync, Lambda, Cognito (per monthly active
 * user) and the routes are priced per use; the dead-letter alarm is the feed's only fixed cost.
 */
import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import { type CfnStage, HttpMethod, type HttpRoute } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import {
  AppSyncAuthorizationType,
  type AppSyncAuthProvider,
  AppSyncFieldLogLevel,
  type CfnApi,
  type ChannelNamespace,
  Code,
  EventApi,
} from 'aws-cdk-lib/aws-appsync';
import {
  AccountRecovery,
  CfnUserPoolGroup,
  FeaturePlan,
  type IUserPool,
  type IUserPoolClient,
  Mfa,
  UserPool,
} from 'aws-cdk-lib/aws-cognito';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  ALL_INSTANCES_GROUP,
  FEED_DEFAULTS,
  FEED_ENV,
  FEED_NAMESPACE,
  GROUPS_CLAIM_PATTERN,
} from '../functions/live-feed/settings.ts';
import { SNAPSHOT_ROUTE_KEY, STATE_ENV } from '../functions/presence-store/settings.ts';
import { CANARY_INSTANCE_ID, INSTANCE_ID_PATTERN } from '../functions/shared/contract/presence-contract.ts';
import { subscribeHandlerCode } from './appsync-code.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import { PresenceFunction } from './presence-function.ts';
import type { PresenceStore } from './presence-store.ts';
import { PresenceSubscription } from './presence-subscription.ts';
import type { PresenceWebhook } from './presence-webhook.ts';

/** Agents sign in with your own OpenID Connect issuer instead of Cognito. */
export interface LiveFeedOidc {
  /** The issuer (`iss` of its tokens), e.g. `https://login.example.com/realms/helpdesk`. HTTPS. */
  readonly issuer: string;
  /** The client id its tokens are issued to (`aud`, or `client_id` in an access token). */
  readonly clientId: string;
  /** The claim that lists an agent's groups (an array, or a string of names). @default 'groups' */
  readonly groupsClaim?: string;
}

export interface LiveFeedProps {
  readonly webhook: PresenceWebhook;
  /** The feed carries the store's derived events and serves its snapshot from the store's table. */
  readonly store: PresenceStore;
  /**
   * Agents sign in with this Cognito user pool (groups: the instance ids, or `zapi-presence-all`).
   * @default - a new user pool (unless `oidc`)
   */
  readonly userPool?: IUserPool;
  /** The app client agents sign in through, in `userPool`. @default - a new client (no secret) */
  readonly userPoolClient?: IUserPoolClient;
  /** Agents sign in with your OIDC issuer instead of Cognito. @default - Cognito */
  readonly oidc?: LiveFeedOidc;
  /**
   * Groups to create in the user pool this construct creates, one per instance (members see that
   * instance); `zapi-presence-all` is always created.
   * @default - none
   */
  readonly instanceIds?: readonly string[];
  /**
   * Lifetime of the ID and access tokens of the app client this construct creates: an agent removed from
   * a group keeps what it subscribed to, and may subscribe again, until its token expires.
   * @default Duration.minutes(60)
   */
  readonly tokenValidity?: Duration;
  readonly logRetention?: RetentionDays;
  readonly logEncryptionKey?: IKey;
}

/** The snapshot route (JWT-authorized). */
export const SNAPSHOT_ROUTE = '/instances/{instanceId}/presence';

/** Problems with these props, each naming the prop (empty when they are fine). */
export function liveFeedProblems(props: Omit<LiveFeedProps, 'webhook' | 'store'>): string[] {
  const problems: string[] = [];
  if (props.oidc !== undefined) {
    if (props.userPool !== undefined || props.userPoolClient !== undefined) {
      problems.push('oidc: agents sign in with an OIDC issuer or a Cognito user pool, not both');
    }
    if (!/^https:\/\/[^\s/?#]+(?:\/[^\s?#]*)?$/.test(props.oidc.issuer)) {
      problems.push(
        `oidc.issuer: "${props.oidc.issuer}" is not an HTTPS issuer URL, e.g. https://login.example.com/realms/helpdesk`,
      );
    }
    if (!/^[\x21-\x7e]{1,256}$/.test(props.oidc.clientId)) {
      problems.push(`oidc.clientId: "${props.oidc.clientId}" is not a client id`);
    }
    const claim = props.oidc.groupsClaim;
    if (claim !== undefined && !GROUPS_CLAIM_PATTERN.test(claim)) {
      problems.push(
        `oidc.groupsClaim: "${claim}" is not a claim name (letters, digits and _ : . / -), e.g. groups`,
      );
    }
  }
  if (props.userPoolClient !== undefined && props.userPool === undefined) {
    problems.push('userPoolClient: give its userPool too');
  }
  for (const id of props.instanceIds ?? []) {
    if (!INSTANCE_ID_PATTERN.test(id) || id === CANARY_INSTANCE_ID)
      problems.push(`instanceIds: "${id}" is not a Z-API instance id`);
  }
  if (
    props.instanceIds !== undefined &&
    props.instanceIds.length > 0 &&
    (props.userPool !== undefined || props.oidc !== undefined)
  ) {
    problems.push(
      'instanceIds: groups are created only in a user pool this construct creates; create them in yours',
    );
  }
  const minutes = props.tokenValidity?.toMinutes({ integral: false });
  if (minutes !== undefined) {
    if (props.userPoolClient !== undefined || props.oidc !== undefined) {
      problems.push('tokenValidity: only for the app client this construct creates');
    } else if (!Number.isInteger(minutes) || minutes < 5 || minutes > 1_440) {
      problems.push(`tokenValidity: whole minutes from 5 to 1440, got ${minutes}`);
    }
  }
  return problems;
}

export class LiveFeed extends Construct {
  readonly api: EventApi;
  readonly namespace: ChannelNamespace;
  /** Publishes each event of the rules to its instance's channel. */
  readonly publisher: PresenceFunction;
  /** Events the feed could not publish (after retries) or refused: alarmed. */
  readonly deadLetters: Queue;
  /** `wss://{realtime domain}/event/realtime`: where an agent's browser connects. */
  readonly realtimeUrl: string;
  /** The Event API's HTTP domain: the `host` an agent's connection names. */
  readonly httpDomain: string;
  /** The user pool agents sign in with (unless OIDC). */
  readonly userPool?: IUserPool;
  /** The app client agents sign in through (unless OIDC). */
  readonly userPoolClient?: IUserPoolClient;
  /** The issuer of the agents' tokens. */
  readonly issuer: string;
  /** The client id (audience) of the agents' tokens. */
  readonly clientId: string;
  /** Where the agents' tokens list their groups. */
  readonly groupsClaim: string;
  readonly snapshotRoute: HttpRoute;
  /** `https://{api}/instances/{instanceId}/presence`: replace `{instanceId}`. */
  readonly snapshotUrl: string;
  /** The two rules feeding the publisher. */
  readonly subscriptions: readonly PresenceSubscription[];

  constructor(scope: Construct, id: string, props: LiveFeedProps) {
    super(scope, id);
    const problems = liveFeedProblems(props);
    if (problems.length > 0) throw new Error(`LiveFeed: ${problems.join('; ')}`);
    const { webhook, store } = props;
    const stack = Stack.of(this);

    // --- who the agents are ---------------------------------------------------------------------
    let agentProvider: AppSyncAuthProvider;
    let poolRegion: string | undefined;
    if (props.oidc !== undefined) {
      this.issuer = props.oidc.issuer;
      this.clientId = props.oidc.clientId;
      this.groupsClaim = props.oidc.groupsClaim ?? 'groups';
      agentProvider = {
        authorizationType: AppSyncAuthorizationType.OIDC,
        // AppSync reads the client id as a regular expression: this one, exactly.
        openIdConnectConfig: { oidcProvider: this.issuer, clientId: `^${escapeRegExp(this.clientId)}$` },
      };
    } else {
      const pool = props.userPool ?? this.createUserPool(props.instanceIds ?? []);
      const client =
        props.userPoolClient ??
        pool.addClient('AgentClient', {
          generateSecret: false,
          authFlows: { userSrp: true, userPassword: true },
          disableOAuth: true,
          preventUserExistenceErrors: true,
          enableTokenRevocation: true,
          accessTokenValidity: props.tokenValidity ?? Duration.minutes(FEED_DEFAULTS.tokenValidityMinutes),
          idTokenValidity: props.tokenValidity ?? Duration.minutes(FEED_DEFAULTS.tokenValidityMinutes),
          refreshTokenValidity: Duration.days(30),
        });
      this.userPool = pool;
      this.userPoolClient = client;
      // The pool's own region: its id names it (`sa-east-1_...`), and a pool you pass in may live in
      // another region than the stack.
      poolRegion = Token.isUnresolved(pool.userPoolId)
        ? pool.env.region
        : (pool.userPoolId.split('_')[0] as string);
      this.issuer = `https://cognito-idp.${poolRegion}.amazonaws.com/${pool.userPoolId}`;
      this.clientId = client.userPoolClientId;
      this.groupsClaim = FEED_DEFAULTS.groupsClaim;
      agentProvider = {
        authorizationType: AppSyncAuthorizationType.USER_POOL,
        // This client's tokens only, as the snapshot route's authorizer (its audience): another app client
        // of a user pool you pass in cannot reach the feed.
        cognitoConfig: { userPool: pool, appIdClientRegex: `^${client.userPoolClientId}$` },
      };
    }
    const agents = agentProvider.authorizationType;

    // --- the Event API: agents connect and subscribe, only IAM publishes ---------------------------
    const logsRole = new Role(this, 'ApiLogsRole', {
      assumedBy: new ServicePrincipal('appsync.amazonaws.com'),
      description: 'AppSync Events writes the live feed API log (errors only)',
    });
    this.api = new EventApi(this, 'Api', {
      apiName: `${stack.stackName}-${id}`.slice(0, 50),
      authorizationConfig: {
        authProviders: [{ authorizationType: AppSyncAuthorizationType.IAM }, agentProvider],
        connectionAuthModeTypes: [agents],
        defaultPublishAuthModeTypes: [AppSyncAuthorizationType.IAM],
        defaultSubscribeAuthModeTypes: [agents],
      },
    });
    // Errors only (a refused subscription, a failing handler): no payloads in the log. Set on the L1: the
    // L2's logConfig adds a LogRetention custom resource (a Lambda with a wildcard policy) and an AWS
    // managed policy; here the role may write to the API's own log group only.
    if (poolRegion !== undefined && !Token.isUnresolved(poolRegion) && poolRegion !== stack.region) {
      (this.api.node.defaultChild as CfnApi).addPropertyOverride(
        'EventConfig.AuthProviders.1.CognitoConfig.AwsRegion',
        poolRegion,
      );
    }
    (this.api.node.defaultChild as CfnApi).addPropertyOverride('EventConfig.LogConfig', {
      CloudWatchLogsRoleArn: logsRole.roleArn,
      LogLevel: AppSyncFieldLogLevel.ERROR,
    });
    // The log group AppSync writes to, made here with its retention (and key), so no LogRetention
    // custom resource is needed.
    const apiLogs = new LogGroup(this, 'ApiLogs', {
      logGroupName: `/aws/appsync/apis/${this.api.apiId}`,
      retention: props.logRetention ?? RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.DESTROY,
      ...(props.logEncryptionKey !== undefined && { encryptionKey: props.logEncryptionKey }),
    });
    apiLogs.grantWrite(logsRole);
    this.namespace = this.api.addChannelNamespace('Presence', {
      channelNamespaceName: FEED_NAMESPACE,
      code: Code.fromInline(subscribeHandlerCode(this.groupsClaim)),
      authorizationConfig: {
        publishAuthModeTypes: [AppSyncAuthorizationType.IAM],
        subscribeAuthModeTypes: [agents],
      },
    });
    this.httpDomain = this.api.httpDns;
    this.realtimeUrl = `wss://${this.api.realtimeDns}/event/realtime`;

    // --- from the bus to the feed ------------------------------------------------------------------
    this.deadLetters = deadLetterQueue(this, 'DeadLetters', 'the live feed publisher');
    this.publisher = new PresenceFunction(this, 'Publisher', {
      function: 'feedPublisher',
      description: "Z-API chat presence: publishes each derived event to its instance's live-feed channel",
      memorySize: FEED_DEFAULTS.memoryMb,
      timeout: Duration.seconds(FEED_DEFAULTS.timeoutSeconds),
      ...(props.logRetention !== undefined && { logRetentionDays: props.logRetention }),
      ...(props.logEncryptionKey !== undefined && { logEncryptionKey: props.logEncryptionKey }),
      environment: {
        [FEED_ENV.httpDomain]: this.httpDomain,
        [FEED_ENV.deadLettersUrl]: this.deadLetters.queueUrl,
        [FEED_ENV.metricsNamespace]: webhook.metricsNamespace,
      },
    });
    // Publish to this namespace only; refused events straight to the dead letters.
    this.namespace.grantPublish(this.publisher);
    this.deadLetters.grantSendMessages(this.publisher);
    // A failed invocation is retried by Lambda (about 1 and 2 minutes later), then dead-lettered.
    this.publisher.configureAsyncInvoke({
      retryAttempts: FEED_DEFAULTS.retryAttempts,
      maxEventAge: Duration.minutes(FEED_DEFAULTS.maxEventAgeMinutes),
      onFailure: new SqsDestination(this.deadLetters),
    });
    Validations.of(this.publisher).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'Invoked asynchronously by EventBridge: its on-failure destination (after 2 retries) is the feed dead-letter queue, alarmed (LiveFeedDeadLetters).',
    });
    Validations.of(this.publisher).acknowledge({
      id: 'Serverless::Serverless-LambdaTracing',
      reason: 'One short signed POST per event; failures are logged with their code and dead-lettered.',
    });

    const target = new LambdaFunction(this.publisher, {
      deadLetterQueue: this.deadLetters,
      retryAttempts: 8,
      maxEventAge: Duration.minutes(FEED_DEFAULTS.maxEventAgeMinutes),
    });
    this.subscriptions = [
      new PresenceSubscription(this, 'Derived', {
        eventBus: webhook.eventBus,
        statuses: [],
        derivedEvents: [],
        deadLetterQueue: this.deadLetters,
        description: 'Z-API chat state: every derived event to the live feed',
        targets: [target],
      }),
      new PresenceSubscription(this, 'ActivityNews', {
        eventBus: webhook.eventBus,
        statuses: ['COMPOSING', 'RECORDING'],
        deadLetterQueue: this.deadLetters,
        description: 'Z-API chat presence: COMPOSING and RECORDING to the live feed (an activity goes on)',
        targets: [target],
      }),
    ];

    // --- the snapshot: the same agents, the same rule ----------------------------------------------
    store.readFunction.addEnvironment(STATE_ENV.groupsClaim, this.groupsClaim);
    const [route] = webhook.httpApi.addRoutes({
      path: SNAPSHOT_ROUTE,
      methods: [HttpMethod.GET],
      integration: new HttpLambdaIntegration('Snapshot', store.readFunction),
      authorizer: new HttpJwtAuthorizer('Agents', this.issuer, { jwtAudience: [this.clientId] }),
    });
    if (!route) throw new Error('LiveFeed: the snapshot route was not created');
    this.snapshotRoute = route;
    // A throttle of its own: agents' views (a reconnect storm, say) can never use the budget of the
    // webhook route Z-API's callbacks come through.
    (webhook.stage.node.defaultChild as CfnStage).addPropertyOverride(
      `RouteSettings.${SNAPSHOT_ROUTE_KEY.replace(/\./g, '\\.')}`,
      {
        ThrottlingRateLimit: FEED_DEFAULTS.snapshotRateLimit,
        ThrottlingBurstLimit: FEED_DEFAULTS.snapshotBurstLimit,
      },
    );
    this.snapshotUrl = `${webhook.baseUrl}/instances/{instanceId}/presence`;
  }

  private createUserPool(instanceIds: readonly string[]): UserPool {
    const pool = new UserPool(this, 'Agents', {
      userPoolName: `${Stack.of(this).stackName}-agents`,
      // Agents are added by an administrator (docs/live-feed.md), never by themselves.
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      signInCaseSensitive: false,
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      mfa: Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: AccountRecovery.EMAIL_ONLY,
      featurePlan: FeaturePlan.ESSENTIALS,
      deletionProtection: false,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(pool).acknowledge({
      id: 'AwsSolutions::AwsSolutions-COG2',
      reason:
        "MFA is optional (TOTP) so a team can sign agents in from the CLI as docs/live-feed.md shows; pass your own userPool with MFA required to enforce it. An agent's token only reads presence.",
    });
    Validations.of(pool).acknowledge({
      id: 'AwsSolutions::AwsSolutions-COG8',
      reason:
        'The Plus plan (threat protection) is billed per monthly active user; agents are created by an administrator and only read presence. Pass your own userPool on Plus to have it.',
    });
    for (const group of [ALL_INSTANCES_GROUP, ...new Set(instanceIds)]) {
      new CfnUserPoolGroup(this, `Group${group === ALL_INSTANCES_GROUP ? 'All' : group}`, {
        userPoolId: pool.userPoolId,
        groupName: group,
        description:
          group === ALL_INSTANCES_GROUP
            ? 'Members see the live presence of every Z-API instance'
            : `Members see the live presence of Z-API instance ${group}`,
      });
    }
    return pool;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
