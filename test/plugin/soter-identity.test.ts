/**
 * @jest-environment jsdom
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSandboxPlatform, type SpawnedPlatform } from '../../packages/testing/src/platform';
import { sandboxSoterBridge } from '../../packages/testing/src/soter';
import {
  installWx,
  loadCheckout,
  mount,
  recordEvents,
  shimPluginGlobals,
  tap,
  text,
  typeCvv,
  typeDigits,
  waitForScreen,
} from '../../packages/testing/src/simulate';
import { startWeChatStandIn, type WeChatStandIn } from '../../packages/testing/src/wechat';

// PROTOCOL.md §2.1 in the plugin: a host that lends its `wx.login` and SOTER. The plugin reads the
// host's AppID, registers with the shopper's identity (the host's and the plugin's login codes)
// and pays by fingerprint, each signature checked by "WeChat" (the kit's stand-in) under that
// app's own token.

const SHOP = { appId: 'wx00000000000000a1', secret: 'secret-of-shop-a' };
const PLUGIN = { appId: 'wx000000000000c0de', secret: 'secret-of-the-plugin' };
const wx = installWx();
let wechat: WeChatStandIn;
let platform: SpawnedPlatform;
let checkoutId: string;

beforeAll(async () => {
  shimPluginGlobals();
  wechat = await startWeChatStandIn({ apps: [SHOP], plugin: PLUGIN });
  const config = join(mkdtempSync(join(tmpdir(), 'cardpay-identity-')), 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      wechat: { apps: [SHOP], pluginAppId: PLUGIN.appId, pluginSecret: PLUGIN.secret },
    }),
  );
  platform = await spawnSandboxPlatform(['--config', config, '--wechat-api-url', wechat.url]);
  checkoutId = loadCheckout();
});
afterAll(async () => {
  requirePlugin('cardpay').setHostBridge(undefined);
  await platform?.close();
  await wechat?.close();
});

it('registers with the shopper’s identity in the host app and pays by fingerprint, verified under that app’s token', async () => {
  wx.signInAs(wechat, SHOP.appId, 'alice');
  requirePlugin('cardpay').setHostBridge(
    sandboxSoterBridge({ wechat: { standIn: wechat, appId: SHOP.appId, shopper: 'alice' } }),
  );
  const comp = mount(checkoutId, {
    platformUrl: platform.url,
    merchantId: 'mch_sandbox',
    amount: 1999,
  });
  const events = recordEvents(comp);
  wx.scanner.push('4242424242424242');
  await waitForScreen(comp, 'entry');
  tap(comp, 'cardpay-start');
  await waitForScreen(comp, 'enrol');
  typeDigits(comp, '204816');
  typeDigits(comp, '204816');
  await waitForScreen(comp, 'confirm');
  // The shopper was identified at registration: the host's code and the plugin's.
  expect(wechat.calls.map((c) => c.api)).toEqual(
    expect.arrayContaining(['jscode2session', 'getpluginopenpid']),
  );
  tap(comp, 'cardpay-confirm');
  await waitForScreen(comp, 'auth');
  await typeCvv(comp, '123'); // the card's first payment on this phone
  const verifiedBefore = wechat.calls.filter((c) => c.api === 'verify_signature').length;
  tap(comp, 'cardpay-biometric');
  await waitForScreen(comp, 'result');
  expect(text(comp, 'cardpay-result')).toBe('支付成功');
  const verified = wechat.calls.filter((c) => c.api === 'verify_signature');
  expect(verified.length).toBe(verifiedBefore + 1);
  expect(verified[verified.length - 1].appId).toBe(SHOP.appId);
  expect(events.some((e) => e.name === 'success')).toBe(true);
});
