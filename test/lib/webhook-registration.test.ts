import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { REGISTRATION_PROPERTIES } from '../../functions/register-webhook/properties.ts';
import { synth } from '../support/synth.ts';

const { template, report } = synth({ instanceId: 'INST1,INST2', clientTokenParameter: '/zapi/client-token' });

function policyStatementsOf(prefix: string, t = template) {
  const entry = Object.entries(t.findResources('AWS::IAM::Policy')).find(([id]) => id.startsWith(prefix));
  if (!entry) throw new Error(`no policy ${prefix}*`);
  return (entry[1] as { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } })
    .Properties.PolicyDocument.Statement;
}

const parameterArn = (name: string) => ({
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ssm:sa-east-1:123456789012:parameter${name}`]],
});

describe('WebhookRegistration', () => {
  it('creates one custom resource per instance with names only, a fresh nonce and a service timeout', () => {
    const resources = template.findResources('Custom::ZapiPresenceWebhook');
    const all = Object.values(resources) as Array<{
      Properties: Record<string, unknown>;
      DependsOn?: string[];
    }>;
    expect(all).toHaveLength(2);
    for (const [index, instanceId] of ['INST1', 'INST2'].entries()) {
      const properties = all[index]?.Properties ?? {};
      expect(properties).toEqual({
        ServiceToken: expect.anything(),
        ServiceTimeout: '300',
        [REGISTRATION_PROPERTIES.instanceId]: instanceId,
        [REGISTRATION_PROPERTIES.webhookUrl]: expect.objectContaining({ 'Fn::Join': expect.any(Array) }),
        [REGISTRATION_PROPERTIES.instanceTokenParameter]: `/zapi/${instanceId}/token`,
        [REGISTRATION_PROPERTIES.webhookSecretParameter]: '/zapi/webhook-secret',
        [REGISTRATION_PROPERTIES.clientTokenParameter]: '/zapi/client-token',
        [REGISTRATION_PROPERTIES.deployNonce]: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      const url = JSON.stringify(properties[REGISTRATION_PROPERTIES.webhookUrl]);
      expect(url).toContain(`/instances/${instanceId}/presence`);
      expect(url).toContain('ApiEndpoint');
      expect(url).not.toContain('secret');
      // Registered only after the stage and the receiver exist.
      expect(all[index]?.DependsOn?.some((id) => id.startsWith('PresenceDefaultStage'))).toBe(true);
    }
  });

  it('runs the handler on the shared Lambda defaults', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'Registers the chat-presence webhook URL with Z-API',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Timeout: 120,
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
      Environment: { Variables: { ZAPI_BASE_URL: 'https://api.z-api.io' } },
    });
  });

  it('lets the handler read exactly the parameters it needs, nothing else', () => {
    const statements = policyStatementsOf('WebhookRegistrationHandlerRole');
    const ssm = statements.filter((s) => String(s.Action).startsWith('ssm:'));
    expect(ssm).toEqual([
      {
        Action: 'ssm:GetParameter',
        Effect: 'Allow',
        Resource: [
          parameterArn('/zapi/webhook-secret'),
          parameterArn('/zapi/client-token'),
          parameterArn('/zapi/INST1/token'),
          parameterArn('/zapi/INST2/token'),
        ],
      },
    ]);
    const actions = statements.flatMap((s) => [s.Action].flat()).sort();
    expect(actions).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents', 'ssm:GetParameter']);
  });

  it('can be turned off', () => {
    const { template: t } = synth({ instanceId: 'A', registerWebhook: 'false' });
    t.resourceCountIs('Custom::ZapiPresenceWebhook', 0);
  });

  it('keeps cdk-nag clean, acknowledging only the provider framework and our handler', () => {
    for (const plugin of report.pluginReports) {
      expect(plugin.violations).toEqual([]);
      for (const s of plugin.suppressedViolations) {
        expect(s.acknowledgedAt).toMatch(
          /^ZapiPresence\/(Presence\/(Receiver|Api\/POST--instances--\{instanceId\}--presence)|WebhookRegistration\/(Handler|Provider\/framework-onEvent))$/,
        );
      }
    }
  });

  it('never puts a secret in the template', () => {
    const text = JSON.stringify(template.toJSON());
    expect(text).not.toMatch(/secret=|resolve:ssm-secure|NoEcho/);
  });
});
