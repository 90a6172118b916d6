import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { ZapiPresence } from '../../../lib/index.ts';
import { addNagPacks } from '../../../lib/nag.ts';

const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'sa-east-1' } });
const p = new ZapiPresence(stack, 'Presence', { subscriberAccountIds: ['210987654321'] });
const dlq = new Queue(stack, 'TypingDlq', { enforceSSL: true });
Validations.of(dlq).acknowledge({ id: 'AwsSolutions::AwsSolutions-SQS3', reason: 'dlq itself' });
Validations.of(dlq).acknowledge({ id: 'Serverless::Serverless-SQSRedrivePolicy', reason: 'dlq itself' });
const q = new Queue(stack, 'Typing', { enforceSSL: true, deadLetterQueue: { queue: dlq, maxReceiveCount: 5 } });
p.onStatus('Typing', ['COMPOSING'], { targets: [new SqsQueue(q)] });
addNagPacks(app);
const t = Template.fromStack(stack);
console.log(Object.entries(t.toJSON().Resources).map(([k, v]: [string, any]) => `${k} ${v.Type}`).join('\n'));
console.log(JSON.stringify(t.findResources('AWS::KMS::Key'), null, 1));
console.log(JSON.stringify(t.findResources('AWS::Events::EventBusPolicy'), null, 1));
try { app.synth(); } catch (e) { console.log(String(e).slice(0, 3000)); }
const rep = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8'));
for (const p of rep.pluginReports) for (const v of p.violations) console.log(p.pluginName, v.ruleName, v.violatingConstructs.map((c: any) => c.constructPath));
