// Public declarations: the SDK core, the host bridge, and the plugin's requirePlugin API.
export * from '../packages/sdk/src/core/index';
export type { HostBridge } from '../packages/sdk/src/hosts/shared';
export type { CardPayPlugin, CardPayTheme, CardPayCheckoutProps } from './plugin';
