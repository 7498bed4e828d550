/**
 * @jest-environment jsdom
 */
// The demo shop's cart page, tested the way a merchant tests theirs: with the CardPay kit.
import { join } from 'node:path';
import { spawnSandboxPlatform, type SpawnedPlatform } from '../../packages/testing/src/platform';
import {
  installWx,
  loadWithPlugin,
  mount,
  payAsNewShopper,
  shimPluginGlobals,
  text,
  waitFor,
} from '../../packages/testing/src/simulate';

const wx = installWx();
let platform: SpawnedPlatform;
let cartId: string;

beforeAll(async () => {
  shimPluginGlobals();
  platform = await spawnSandboxPlatform();
  requirePlugin('cardpay').configure({ platformUrl: platform.url, merchantId: 'mch_sandbox' });
  // The built demo page, as WeChat DevTools opens it.
  cartId = loadWithPlugin(join(__dirname, '../../dist/demo/pages/cart/index'));
});
afterAll(() => platform.close());

it('pays the cart total by card and shows the outcome on the page', async () => {
  const page = mount(cartId);
  expect(text(page, 'demo-total')).toBe('合计 ¥19.99');
  wx.scanner.push('6222021000000000009');
  // The card's first payment on this phone: enrolment, then its CVV with the password.
  expect(await payAsNewShopper(page)).toEqual({ confirmedAmount: '¥19.99' });
  await waitFor(() => text(page, 'demo-outcome') !== '', 'the outcome');
  expect(text(page, 'demo-outcome')).toMatch(/^已支付 ¥19\.99（pay_\w+）$/);
});

it('exposes the plugin API to the host: configure refuses plain http to another host', () => {
  const cardpay = requirePlugin('cardpay');
  expect(cardpay.version).toMatch(/^\d+\.\d+\.\d+$/);
  expect(() =>
    cardpay.configure({ platformUrl: 'http://pay.example.com', merchantId: 'mch_sandbox' }),
  ).toThrow(/https/);
  expect(() => cardpay.createCheckout({ amount: 1 })).not.toThrow();
});
