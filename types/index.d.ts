// Public declarations of the SDK: what `requirePlugin('cardpay')` will return builds on these.
export * from '../src/core/index';
export type { HostBridge } from '../src/hosts/shared';
