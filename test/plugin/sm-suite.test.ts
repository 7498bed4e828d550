/**
 * @jest-environment jsdom
 */
import { credentialsKey } from '../../packages/sdk/src/core/enrolment';
import { spawnSandboxPlatform, type SpawnedPlatform } from '../../packages/testing/src/platform';
import {
  installWx,
  loadCheckout,
  mount,
  payAsNewShopper,
  recordEvents,
  shimPluginGlobals,
  tap,
  text,
  typeDigits,
  waitForScreen,
} from '../../packages/testing/src/simulate';

// PROTOCOL.md §3.1 in the built plugin: a host that configures the cardpay-sm-v1 suite gets a
// terminal that registers in it, derives its password key with PBKDF2-HMAC-SM3 and signs and
// proves with HMAC-SM3, against the real platform (which refuses anything else from it).

const wx = installWx();
let platform: SpawnedPlatform;
let checkoutId: string;

beforeAll(async () => {
  shimPluginGlobals();
  platform = await spawnSandboxPlatform();
  checkoutId = loadCheckout();
});
afterAll(() => platform?.close());

it('enrols in the SM suite the host configured and pays twice, the second time by password alone', async () => {
  requirePlugin('cardpay').configure({
    platformUrl: platform.url,
    merchantId: 'mch_sandbox',
    suite: 'cardpay-sm-v1',
  });
  const first = mount(checkoutId, { amount: 1999 });
  const events = recordEvents(first);
  wx.scanner.push('6222021000000000009');
  await payAsNewShopper(first);
  await waitForScreen(first, 'result');
  expect(text(first, 'cardpay-result')).toBe('支付成功');
  expect(events.filter((e) => e.name === 'success')).toHaveLength(1);
  const stored = JSON.parse(String(wx.storage.get(credentialsKey(platform.url))));
  expect(stored).toMatchObject({ suite: 'cardpay-sm-v1', iterations: 10000 });
  first.detach();

  const second = mount(checkoutId, { amount: 500 });
  wx.scanner.push('6222021000000000009');
  await waitForScreen(second, 'entry');
  tap(second, 'cardpay-start');
  await waitForScreen(second, 'confirm');
  tap(second, 'cardpay-confirm');
  await waitForScreen(second, 'auth');
  typeDigits(second, '204816');
  await waitForScreen(second, 'result');
  expect(text(second, 'cardpay-result')).toBe('支付成功');
});

it('refuses a suite it does not know when configured, naming the ones it does', () => {
  expect(() =>
    requirePlugin('cardpay').configure({
      platformUrl: platform.url,
      merchantId: 'mch_sandbox',
      suite: 'cardpay-sm-v2',
    }),
  ).toThrow(/suite must be cardpay-v1 or cardpay-sm-v1, got "cardpay-sm-v2"/);
});
