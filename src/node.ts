// `cardpay/node`: the Node host (tests, tools, a merchant's back-office scripts) with its scripted
// scanner and sandbox biometric key.
export { createNodeHost, createSandboxBiometric, ScriptedScanner } from './hosts/node';
export type { NodeHost } from './hosts/node';
