/**
 * @jest-environment jsdom
 */
// Renders each step of the checkout from the real components (miniprogram-simulate, real platform)
// into standalone HTML with the component styles; scripts/screenshots.js shoots them.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSandboxPlatform, type SpawnedPlatform } from '../../packages/testing/src/platform';
import { OUT, snap } from './snap';
import { find, input, installWx, loadCheckout, mount, shimPluginGlobals, tap, text, typeDigits, waitFor, waitForScreen, type SimComponent } from '../../packages/testing/src/simulate';

const wx = installWx();
let platform: SpawnedPlatform;
let id: string;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  shimPluginGlobals();
  const config = join(mkdtempSync(join(tmpdir(), 'cardpay-shots-')), 'config.json');
  writeFileSync(config, JSON.stringify({ discounts: [{ from: 0, rateBps: 0 }, { from: 1000, rateBps: 200 }] }));
  platform = await spawnSandboxPlatform(['--config', config]);
  id = loadCheckout();
});
afterAll(() => platform.close());

it('renders every step of the checkout', async () => {
  const comp = mount(id, { platformUrl: platform.url, merchantId: 'mch_sandbox', amount: 5680, description: '拿铁 × 2, 可颂 × 1' });
  await waitForScreen(comp, 'entry');
  await waitFor(() => !comp.instance.data.view.busy, 'start-up');
  snap(comp, '1-entry');
  wx.scanner.push('6222021000000000009', '4242424242424242', '134567890123456789');
  tap(comp, 'cardpay-start');
  await waitForScreen(comp, 'enrol');
  typeDigits(comp, '204');
  await waitFor(() => (comp.dom.innerHTML.match(/dot--on/g) ?? []).length === 3, 'three dots');
  snap(comp, '2-enrolment');
  typeDigits(comp, '816');
  typeDigits(comp, '204816');
  await waitForScreen(comp, 'confirm');
  snap(comp, '3-confirmation');
  tap(comp, 'cardpay-confirm');
  await waitForScreen(comp, 'auth');
  // The card's first payment on this phone: its CVV with the password.
  input(comp, 'cardpay-cvv', '123');
  typeDigits(comp, '9999');
  await waitFor(() => (comp.dom.innerHTML.match(/dot--on/g) ?? []).length === 4, 'four dots');
  snap(comp, '4-password');
  typeDigits(comp, '99');
  await waitFor(() => text(comp, 'cardpay-error') !== '', 'the wrong-password message');
  typeDigits(comp, '204816');
  await waitForScreen(comp, 'result');
  // A second payment, to show the loyalty discount the first one earned.
  comp.detach();
  const again = mount(id, { platformUrl: platform.url, merchantId: 'mch_sandbox', amount: 5680 });
  await waitForScreen(again, 'entry');
  await waitFor(() => !again.instance.data.view.busy, 'start-up');
  wx.scanner.push('4242424242424242');
  tap(again, 'cardpay-start');
  await waitForScreen(again, 'confirm');
  tap(again, 'cardpay-confirm');
  await waitForScreen(again, 'auth');
  input(again, 'cardpay-cvv', '123');
  typeDigits(again, '204816');
  await waitForScreen(again, 'result');
  snap(again, '5-result');
  wx.scanner.push('134567890123456789');
  again.detach();
  const third = mount(id, { platformUrl: platform.url, merchantId: 'mch_sandbox', amount: 5680, locale: 'en_US' });
  await waitForScreen(third, 'entry');
  await waitFor(() => !third.instance.data.view.busy, 'start-up');
  tap(third, 'cardpay-start');
  await waitFor(() => text(third, 'cardpay-error') !== '', 'the error');
  snap(third, '6-error-en', 'en_US');
}, 60000);
