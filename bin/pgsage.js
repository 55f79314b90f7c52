#!/usr/bin/env node
// pgsage pins the AWS SDK it ships with: the SDK's notice that its releases from 2027 on need
// Node 22 is not for pgsage's users to act on, so it is kept out of their terminal.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await import('../dist/src/cli/index.js');
