// Public declarations: the SDK core, the host bridge, and the plugin's requirePlugin API.
export * from '../src/core/index';
export type { HostBridge } from '../src/hosts/shared';
export type { CardPayPlugin, CardPayTheme, CardPayCheckoutProps } from './plugin';
