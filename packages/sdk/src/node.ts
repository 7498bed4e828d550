// `cardpay/node`: for Node: the host (tests, tools) with its scripted scanner and sandbox
// biometric key, and `verifyWebhook` for a merchant's server.
export { createNodeHost, createSandboxBiometric, ScriptedScanner } from './hosts/node';
export type { NodeHost } from './hosts/node';
export { verifyWebhook, signWebhook } from './webhooks';
export type { WebhookEvent } from './webhooks';
