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
import { find, installWx, loadCheckout, mount, screenOf, shimPluginGlobals, tap, text, typeDigits, waitFor, waitForScreen, type SimComponent } from '../../packages/testing/src/simulate';

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

const dots = (comp: SimComponent) => (comp.dom.innerHTML.match(/keypad__dot"/g) ?? []).length;

it('renders every step of the checkout', async () => {
  const comp = mount(id, { platformUrl: platform.url, merchantId: 'mch_sandbox', amount: 5680, description: '拿铁 × 2，可颂 × 1' });
  await waitForScreen(comp, 'entry');
  await waitFor(() => !comp.instance.data.view.busy, 'start-up');
  snap(comp, '1-entry');
  wx.scanner.push('6222021000000000009');
  tap(comp, 'cardpay-start');
  await waitForScreen(comp, 'enrol');
  typeDigits(comp, '204');
  await waitFor(() => dots(comp) === 3, 'three dots');
  snap(comp, '2-enrolment');
  typeDigits(comp, '816');
  typeDigits(comp, '204816');
  await waitForScreen(comp, 'confirm');
  tap(comp, 'cardpay-confirm');
  await waitForScreen(comp, 'auth');
  // The card's first payment on this phone: its security code first, on the sheet's keypad.
  typeDigits(comp, '12');
  await waitFor(() => dots(comp) === 2, 'two dots');
  snap(comp, '4-security-code');
  typeDigits(comp, '3'); // the third digit moves on to the password
  await waitFor(() => !find(comp, 'cardpay-cvv'), 'the password step');
  typeDigits(comp, '204816');
  await waitForScreen(comp, 'result');
  comp.detach();

  // A second payment: the loyalty discount the first one earned, shown before paying.
  const again = mount(id, { platformUrl: platform.url, merchantId: 'mch_sandbox', amount: 5680, description: '拿铁 × 2，可颂 × 1' });
  await waitForScreen(again, 'entry');
  await waitFor(() => !again.instance.data.view.busy, 'start-up');
  wx.scanner.push('6222021000000000009');
  tap(again, 'cardpay-start');
  await waitForScreen(again, 'confirm');
  snap(again, '3-confirmation');
  tap(again, 'cardpay-confirm');
  await waitForScreen(again, 'auth');
  typeDigits(again, '9999');
  await waitFor(() => dots(again) === 4, 'four dots');
  snap(again, '5-password');
  typeDigits(again, '99');
  await waitFor(() => text(again, 'cardpay-error') !== '', 'the wrong-password message');
  // The forgotten-password path from the sheet: a card paid with here proves the cardholder.
  tap(again, 'cardpay-forgot');
  await waitForScreen(again, 'reset');
  snap(again, '8-reset');
  tap(again, 'cardpay-close');
  await waitForScreen(again, 'auth');
  typeDigits(again, '204816');
  await waitForScreen(again, 'result');
  snap(again, '6-result');
  again.detach();

  // Locked after five wrong passwords: 「忘记密码」 is the way on.
  const locked = mount(id, { platformUrl: platform.url, merchantId: 'mch_sandbox', amount: 5680 });
  await waitForScreen(locked, 'entry');
  await waitFor(() => !locked.instance.data.view.busy, 'start-up');
  wx.scanner.push('6222021000000000009');
  tap(locked, 'cardpay-start');
  await waitForScreen(locked, 'confirm');
  tap(locked, 'cardpay-confirm');
  await waitForScreen(locked, 'auth');
  for (let i = 0; i < 5 && screenOf(locked) === 'auth'; i++) {
    const before = text(locked, 'cardpay-error');
    typeDigits(locked, '907153');
    await waitFor(() => screenOf(locked) === 'result' || (!locked.instance.data.view.busy && text(locked, 'cardpay-error') !== before), 'the refusal');
  }
  await waitForScreen(locked, 'result');
  snap(locked, '7-locked');
  locked.detach();

  wx.scanner.push('134567890123456789');
  const third = mount(id, { platformUrl: platform.url, merchantId: 'mch_sandbox', amount: 5680, locale: 'en_US' });
  await waitForScreen(third, 'entry');
  await waitFor(() => !third.instance.data.view.busy, 'start-up');
  tap(third, 'cardpay-start');
  await waitFor(() => text(third, 'cardpay-error') !== '', 'the error');
  snap(third, '9-error-en', 'en_US');
}, 90000);
