// Host adapters. Import the one you need from its own module to keep bundles small:
// `src/hosts/wx` (native mini-programs), `src/hosts/taro` (Taro apps), `src/hosts/node` (Node).
export { createWxHost } from './wx';
export type { WxApi, WxHostOptions } from './wx';
export { createTaroHost } from './taro';
export type { TaroApi, TaroHostOptions } from './taro';
export { scanTypeOf, scanFailure, soterProvider } from './shared';
export type { HostBridge } from './shared';
