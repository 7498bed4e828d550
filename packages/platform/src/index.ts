// `cardpay-platform`: the reference trading platform, to embed (`startPlatform`) or to run as the
// `cardpay-platform` command; and the sandbox payment platform it starts beside itself.
export * from './platform';
export { buildSandbox, SANDBOX_CARDS, type SandboxOptions } from './sandbox/payment-platform';
