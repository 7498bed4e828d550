// `cardpay-testing`: the kit merchants use to test their own pages in miniprogram-simulate, and the
// sandbox platform their tests talk to.
export {
  startSandboxPlatform,
  spawnSandboxPlatform,
  createMerchantOrder,
  type SandboxPlatform,
  type SpawnedPlatform,
} from './platform';
export {
  installWx,
  shimPluginGlobals,
  loadCheckout,
  loadWithPlugin,
  mount,
  find,
  text,
  tap,
  typeDigits,
  typeCvv,
  payAsNewShopper,
  input,
  screenOf,
  waitFor,
  waitForScreen,
  recordEvents,
  PLUGIN_ROOT,
  CHECKOUT_PATH,
  type SimComponent,
  type WxStandIn,
} from './simulate';
export { sandboxSoterBridge, type SandboxSoterOptions } from './soter';
export {
  startWeChatStandIn,
  type WeChatApp,
  type WeChatStandIn,
  type WeChatStandInOptions,
} from './wechat';
export { pluginSupport, offeredToPlugins, type PluginSupport } from './plugin-apis';
