/**
 * The live feed's infrastructure (lib/live-feed.ts), from its templates: an Event API that agents connect
 * and subscribe to with their Cognito or OIDC token and that only IAM publishes to; the namespace's
 * onSubscribe code with its claim; the publisher's grants (this namespace, the dead letters), retries and
 * on-failure destination; the two rules; the snapshot route behind a JWT authorizer of the same issuer;
 * the user pool; the alarm; and clear errors for what cannot work.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { UserPool } from 'aws-cdk-lib/aws-cognito';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALL_INSTANCES_GROUP } from '../../functions/live-feed/settings.ts';
import {
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPES,
  EVENT_SOURCE,
} from '../../functions/shared/contract/presence-contract.ts';
import { addNagPacks } from '../../lib/nag.ts';
import { ZapiPresence } from '../../lib/zapi-presence.ts';
import { buildApp, synth } from '../support/synth.ts';

const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
type Resource = { Properties: Record<string, unknown> };
const one = (template: Template, type: string): Record<string, unknown> => {
  const found = Object.values(template.findResources(type)) as Resource[];
  expect(found, type).toHaveLength(1);
  return (found[0] as Resource).Properties;
};

describe('the live feed (app, Cognito)', () => {
  let template: Template;
  let report: ReturnType<typeof synth>['report'];

  beforeAll(() => {
    ({ template, report } = synth({ instanceId: A, liveFeed: 'true' }));
  }, 120_000);

  it('has no unacknowledged cdk-nag finding', () => {
    for (const plugin of report.pluginReports) {
      expect(plugin.violations, plugin.pluginName).toEqual([]);
    }
  });

  it('lets agents connect and subscribe with their user pool token, and only IAM publish', () => {
    const api = one(template, 'AWS::AppSync::Api');
    expect(api.EventConfig).toEqual({
      AuthProviders: [
        { AuthType: 'AWS_IAM' },
        {
          AuthType: 'AMAZON_COGNITO_USER_POOLS',
          CognitoConfig: {
            AwsRegion: 'sa-east-1',
            UserPoolId: { Ref: expect.stringMatching(/^LiveFeedAgents/) },
            // This app client's tokens only (the snapshot authorizer's audience too).
            AppIdClientRegex: {
              'Fn::Join': ['', ['^', { Ref: expect.stringMatching(/^LiveFeedAgentsAgentClient/) }, '$']],
            },
          },
        },
      ],
      ConnectionAuthModes: [{ AuthType: 'AMAZON_COGNITO_USER_POOLS' }],
      DefaultPublishAuthModes: [{ AuthType: 'AWS_IAM' }],
      DefaultSubscribeAuthModes: [{ AuthType: 'AMAZON_COGNITO_USER_POOLS' }],
      LogConfig: { CloudWatchLogsRoleArn: expect.anything(), LogLevel: 'ERROR' },
    });
    const namespace = one(template, 'AWS::AppSync::ChannelNamespace');
    expect(namespace).toMatchObject({
      Name: 'presence',
      PublishAuthModes: [{ AuthType: 'AWS_IAM' }],
      SubscribeAuthModes: [{ AuthType: 'AMAZON_COGNITO_USER_POOLS' }],
    });
    expect(namespace.CodeHandlers).toContain('export {\n  onSubscribe\n};');
    expect(namespace.CodeHandlers).toContain('"cognito:groups"');
    // No API key anywhere: agents use their tokens, the publisher its role.
    template.resourceCountIs('AWS::AppSync::ApiKey', 0);
  });

  it('grants the publisher exactly: publish to this namespace, send to its dead letters', () => {
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^LiveFeedPublisherRole') }] },
    });
    const statements = Object.values(policies).flatMap(
      (p) =>
        (p as { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } }).Properties
          .PolicyDocument.Statement,
    );
    expect(statements.map((s) => s.Action)).toEqual([
      ['logs:CreateLogStream', 'logs:PutLogEvents'],
      'appsync:EventPublish',
      ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
    ]);
    expect(JSON.stringify(statements[1]?.Resource)).toMatch(/channelNamespace\/presence"\]\]\}$/);
    for (const statement of statements) expect(statement.Resource).not.toBe('*');
  });

  it('retries a failed publish twice within 10 minutes, then dead-letters it; alarms on the dead letters', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('^LiveFeedPublisher') },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 600,
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LiveFeedDeadLetters'), 'Arn'] } },
      },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LiveFeedDeadLetters'), 'QueueName'] },
        },
      ],
    });
    const alarm = Object.values(template.findResources('AWS::CloudWatch::Alarm')).find((a) =>
      JSON.stringify(a).includes('LiveFeedDeadLetters'),
    );
    expect(JSON.stringify(alarm)).toContain('LiveFeedDeadLetterQueueUrl');
    expect(JSON.stringify(alarm)).toContain('aws sqs receive-message');
  });

  it('feeds the publisher every derived event and the COMPOSING and RECORDING news, never the canary’s', () => {
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as Resource[];
    const patterns = rules
      .filter((r) => JSON.stringify(r.Properties.Targets).includes('LiveFeedPublisher'))
      .map((r) => r.Properties.EventPattern);
    expect(patterns).toEqual([
      {
        source: [DERIVED_EVENT_SOURCE],
        'detail-type': expect.arrayContaining(['Z-API Chat Activity Started', 'Z-API Chat Went Offline']),
      },
      { source: [EVENT_SOURCE], 'detail-type': [DETAIL_TYPES.COMPOSING, DETAIL_TYPES.RECORDING] },
    ]);
    for (const rule of rules.filter((r) =>
      JSON.stringify(r.Properties.Targets).includes('LiveFeedPublisher'),
    )) {
      expect(rule.Properties.Targets).toEqual([
        expect.objectContaining({
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/^LiveFeedDeadLetters/), 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 600 },
        }),
      ]);
    }
  });

  it('serves the snapshot behind a JWT authorizer of the same pool and client, with CORS for GET', () => {
    const authorizer = one(template, 'AWS::ApiGatewayV2::Authorizer');
    expect(authorizer).toMatchObject({
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: {
        Audience: [{ Ref: expect.stringMatching(/^LiveFeedAgentsAgentClient/) }],
        Issuer: {
          'Fn::Join': [
            '',
            [
              'https://cognito-idp.sa-east-1.amazonaws.com/',
              { Ref: expect.stringMatching(/^LiveFeedAgents/) },
            ],
          ],
        },
      },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'GET /instances/{instanceId}/presence',
      AuthorizationType: 'JWT',
    });
    // The IAM read route stays for servers.
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'GET /instances/{instanceId}/chats/{phone}/presence',
      AuthorizationType: 'AWS_IAM',
    });
    expect(one(template, 'AWS::ApiGatewayV2::Api').CorsConfiguration).toEqual({
      AllowHeaders: ['authorization'],
      AllowMethods: ['GET'],
      AllowOrigins: ['*'],
      MaxAge: 3600,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ AGENT_GROUPS_CLAIM: 'cognito:groups' }) },
    });
  });

  it('gives the snapshot route a throttle of its own, and keeps its 401s and 429s out of the flood alarms', () => {
    const stage = one(template, 'AWS::ApiGatewayV2::Stage');
    expect(stage.RouteSettings).toEqual({
      'GET /instances/{instanceId}/presence': { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
    });
    const filters = Object.values(template.findResources('AWS::Logs::MetricFilter')).map(
      (f) => (f as Resource).Properties.FilterPattern,
    );
    expect(filters).toHaveLength(2);
    for (const filter of filters)
      expect(filter).toContain('($.route != "GET /instances/{instanceId}/presence")');
  });

  it('creates the agents’ user pool: no self sign-up, a strong password, the all-instances group and one per instance', () => {
    expect(one(template, 'AWS::Cognito::UserPool')).toMatchObject({
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      Policies: { PasswordPolicy: expect.objectContaining({ MinimumLength: 12, RequireSymbols: true }) },
      MfaConfiguration: 'OPTIONAL',
    });
    const groups = Object.values(template.findResources('AWS::Cognito::UserPoolGroup')).map(
      (g) => (g as Resource).Properties.GroupName,
    );
    expect(groups.sort()).toEqual([A, ALL_INSTANCES_GROUP].sort());
    expect(one(template, 'AWS::Cognito::UserPoolClient')).toMatchObject({
      GenerateSecret: false,
      AccessTokenValidity: 60,
      IdTokenValidity: 60,
      TokenValidityUnits: expect.objectContaining({ AccessToken: 'minutes' }),
      PreventUserExistenceErrors: 'ENABLED',
    });
  });

  it('outputs what an agent page needs', () => {
    expect(
      Object.keys(template.findOutputs('*'))
        .filter((k) => k.startsWith('LiveFeed'))
        .sort(),
    ).toEqual(
      [
        'LiveFeedClientId',
        'LiveFeedDeadLetterQueueUrl',
        'LiveFeedHttpDomain',
        'LiveFeedIssuer',
        'LiveFeedPublisherLogGroup',
        'LiveFeedRealtimeUrl',
        'LiveFeedSnapshotUrl',
        'LiveFeedUserPoolId',
      ].sort(),
    );
  });
});

describe('the live feed with your own OIDC issuer', () => {
  it('authorizes agents with its tokens, reads groups from its claim, and creates no user pool', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Helpdesk', { env: { account: '123456789012', region: 'sa-east-1' } });
    new ZapiPresence(stack, 'Presence', {
      presenceStore: true,
      liveFeed: {
        oidc: {
          issuer: 'https://login.example.com.br/realms/helpdesk',
          clientId: 'helpdesk.web',
          groupsClaim: 'https://helpdesk.example.com/groups',
        },
        allowedOrigins: ['https://helpdesk.example.com.br'],
      },
    });
    addNagPacks(app);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Cognito::UserPool', 0);
    expect(one(template, 'AWS::AppSync::Api').EventConfig).toMatchObject({
      AuthProviders: [
        { AuthType: 'AWS_IAM' },
        {
          AuthType: 'OPENID_CONNECT',
          OpenIDConnectConfig: {
            Issuer: 'https://login.example.com.br/realms/helpdesk',
            ClientId: '^helpdesk\\.web$',
          },
        },
      ],
    });
    expect(one(template, 'AWS::AppSync::ChannelNamespace').CodeHandlers).toContain(
      '"https://helpdesk.example.com/groups"',
    );
    expect(one(template, 'AWS::ApiGatewayV2::Authorizer')).toMatchObject({
      JwtConfiguration: {
        Audience: ['helpdesk.web'],
        Issuer: 'https://login.example.com.br/realms/helpdesk',
      },
    });
    expect(one(template, 'AWS::ApiGatewayV2::Api').CorsConfiguration).toMatchObject({
      AllowOrigins: ['https://helpdesk.example.com.br'],
    });
    app.synth();
  });

  it('takes your user pool, with a client made in it', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Helpdesk', { env: { account: '123456789012', region: 'sa-east-1' } });
    const pool = UserPool.fromUserPoolId(stack, 'Pool', 'sa-east-1_AbC123');
    new ZapiPresence(stack, 'Presence', {
      presenceStore: true,
      liveFeed: { userPool: pool, tokenValidity: Duration.minutes(15) },
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Cognito::UserPool', 0);
    template.resourceCountIs('AWS::Cognito::UserPoolGroup', 0);
    expect(one(template, 'AWS::Cognito::UserPoolClient')).toMatchObject({
      UserPoolId: 'sa-east-1_AbC123',
      AccessTokenValidity: 15,
    });
  });
});

describe('the live feed with an existing user pool (app settings)', () => {
  it('takes the pool’s region from its id, for AppSync and the issuer, and makes a client in it with the token lifetime asked', () => {
    const template = Template.fromStack(
      buildApp({ liveFeed: 'true', liveFeedUserPoolId: 'us-east-2_AbC123' }, { nag: false }).stack,
    );
    expect(one(template, 'AWS::AppSync::Api').EventConfig).toMatchObject({
      AuthProviders: [{}, { CognitoConfig: { AwsRegion: 'us-east-2', UserPoolId: 'us-east-2_AbC123' } }],
    });
    expect(template.findOutputs('LiveFeedIssuer').LiveFeedIssuer?.Value).toBe(
      'https://cognito-idp.us-east-2.amazonaws.com/us-east-2_AbC123',
    );
    expect(one(template, 'AWS::ApiGatewayV2::Authorizer')).toMatchObject({
      JwtConfiguration: { Issuer: 'https://cognito-idp.us-east-2.amazonaws.com/us-east-2_AbC123' },
    });
    template.resourceCountIs('AWS::Cognito::UserPoolGroup', 0);
    const minutes = Template.fromStack(
      buildApp({ liveFeed: 'true', liveFeedTokenMinutes: '15' }, { nag: false }).stack,
    );
    expect(one(minutes, 'AWS::Cognito::UserPoolClient')).toMatchObject({
      AccessTokenValidity: 15,
      IdTokenValidity: 15,
    });
  });
});

describe('the live feed: what cannot work is refused, naming the prop', () => {
  const build = (props: ConstructorParameters<typeof ZapiPresence>[2]) => () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    new ZapiPresence(new Stack(app, 'S'), 'P', props);
  };
  it.each([
    [{ liveFeed: true }, /liveFeed: needs presenceStore: true .*add presenceStore: true/],
    [
      { presenceStore: true, liveFeed: { oidc: { issuer: 'http://login.example.com', clientId: 'x' } } },
      /liveFeed\.oidc\.issuer: "http:\/\/login.example.com" is not an HTTPS issuer URL/,
    ],
    [
      {
        presenceStore: true,
        liveFeed: { oidc: { issuer: 'https://login.example.com', clientId: 'x', groupsClaim: 'a b' } },
      },
      /liveFeed\.oidc\.groupsClaim: "a b" is not a claim name/,
    ],
    [
      { presenceStore: true, liveFeed: { allowedOrigins: ['https://a.example/path'] } },
      /liveFeed\.allowedOrigins: .* is not an origin/,
    ],
    [
      { presenceStore: true, liveFeed: { tokenValidity: Duration.minutes(2) } },
      /liveFeed\.tokenValidity: whole minutes from 5 to 1440/,
    ],
  ])('%j', (props, message) => {
    expect(build(props as ConstructorParameters<typeof ZapiPresence>[2])).toThrow(message);
  });
});
