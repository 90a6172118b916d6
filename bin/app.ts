#!/usr/bin/env node
/** Builds the App: context -> config -> stack, with the cdk-nag packs. Nothing else. */
import { App } from 'aws-cdk-lib';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { addNagPacks } from '../lib/nag.ts';
import { PresenceStack } from '../lib/presence-stack.ts';

const app = new App();
try {
  const config = loadConfig((key) => app.node.tryGetContext(key));
  new PresenceStack(app, 'ZapiPresence', {
    config,
    description: 'Z-API chat-presence webhooks -> Amazon EventBridge',
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
addNagPacks(app);
