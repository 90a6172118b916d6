#!/usr/bin/env node
// Runs on any Node.js (CommonJS, no syntax newer than ES2015): one clear line instead of cryptic errors.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  process.stderr.write(
    `zapi-presence-eventbridge needs Node.js 20.19 or newer; this is ${process.version}. Install the version in .nvmrc (nvm install), then run the command again.\n`,
  );
  process.exit(1);
}
