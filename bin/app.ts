#!/usr/bin/env node
/** Builds the App: context -> config -> stack (a `ZapiPresence`); registers the policy validators. */
import { App } from 'aws-cdk-lib';
import { ConfigError, loadConfig, stackName } from '../lib/config.ts';
import { addPolicyValidation } from '../lib/nag.ts';
import { PresenceStack } from '../lib/presence-stack.ts';

const app = new App();
try {
  const config = loadConfig((key) => app.node.tryGetContext(key), Object.keys(app.node.getAllContext()));
  new PresenceStack(app, stackName(config), {
    config,
    description: 'Z-API chat-presence webhooks -> Amazon EventBridge',
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
} catch (error) {
  // A configuration problem: one clear message, no stack trace.
  const message = error instanceof Error ? error.message : String(error);
  if (
    !(error instanceof ConfigError) &&
    !/^(ZapiPresence|PresenceWebhook|WebhookFleet|PresenceMonitoring|LiveFeed): /.test(message)
  )
    throw error;
  console.error(message);
  process.exit(1);
}
addPolicyValidation(app);
