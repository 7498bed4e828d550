/**
 * @jest-environment jsdom
 */
// The demo shop with the bridge its app.js lends (the host's login and SOTER), against a platform
// that checks identities and signatures with "WeChat": the kit's stand-in. A shopper signed in to
// the demo app enrols, and pays by fingerprint.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSandboxPlatform, type SpawnedPlatform } from '../../packages/testing/src/platform';
import {
  installWx,
  loadWithPlugin,
  mount,
  shimPluginGlobals,
  tap,
  text,
  typeCvv,
  typeDigits,
  waitFor,
  waitForScreen,
} from '../../packages/testing/src/simulate';
import { startWeChatStandIn, type WeChatStandIn } from '../../packages/testing/src/wechat';

const DEMO_APP = { appId: 'wx0000000000000de1', secret: 'the-demo-app-secret' };
const wx = installWx();
let wechat: WeChatStandIn;
let platform: SpawnedPlatform;
let cartId: string;

beforeAll(async () => {
  shimPluginGlobals();
  wechat = await startWeChatStandIn({ apps: [DEMO_APP] });
  const config = join(mkdtempSync(join(tmpdir(), 'cardpay-demo-soter-')), 'config.json');
  writeFileSync(config, JSON.stringify({ wechat: { apps: [DEMO_APP] } }));
  platform = await spawnSandboxPlatform(['--config', config, '--wechat-api-url', wechat.url]);
  // The demo's own app.js, as built: it lends the bridge (then points at this platform).
  const app = readFileSync(join(__dirname, '../../dist/demo/app.js'), 'utf8');
  new Function('requirePlugin', 'wx', 'App', app)(
    requirePlugin,
    (globalThis as { wx?: unknown }).wx,
    () => undefined,
  );
  requirePlugin('cardpay').configure({ platformUrl: platform.url, merchantId: 'mch_sandbox' });
  cartId = loadWithPlugin(join(__dirname, '../../dist/demo/pages/cart/index'));
});
afterAll(async () => {
  requirePlugin('cardpay').setHostBridge(undefined);
  await platform?.close();
  await wechat?.close();
});

it('pays by fingerprint in the demo, the shopper known to WeChat by the login the demo lends', async () => {
  wx.signInAs(wechat, DEMO_APP.appId, 'alice');
  const page = mount(cartId);
  wx.scanner.push('6222021000000000009');
  await waitForScreen(page, 'entry');
  tap(page, 'cardpay-start');
  await waitForScreen(page, 'enrol');
  typeDigits(page, '204816');
  typeDigits(page, '204816');
  await waitForScreen(page, 'confirm');
  tap(page, 'cardpay-confirm');
  await waitForScreen(page, 'auth');
  await typeCvv(page, '123');
  tap(page, 'cardpay-biometric');
  await waitFor(() => text(page, 'demo-outcome') !== '', 'the outcome');
  expect(text(page, 'demo-outcome')).toMatch(/^已支付 ¥19\.99（pay_\w+）$/);
  expect(wechat.calls.filter((c) => c.api === 'verify_signature').map((c) => c.appId)).toEqual([
    DEMO_APP.appId,
  ]);
});
