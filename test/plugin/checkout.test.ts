/**
 * @jest-environment jsdom
 */
import { spawnSandboxPlatform, type SpawnedPlatform } from '../../src/testing/platform';
import { find, installWx, loadCheckout, mount, recordEvents, shimPluginGlobals, tap, text, typeDigits, waitForScreen } from '../../src/testing/simulate';

const PASSWORD = '204816';
let platform: SpawnedPlatform;
let checkoutId: string;
const wx = installWx();

beforeAll(async () => {
  shimPluginGlobals();
  platform = await spawnSandboxPlatform(['--payment-timeout-ms', '400', '--sandbox-slow-ms', '1500']);
  checkoutId = loadCheckout();
});
afterAll(() => platform.close());
beforeEach(() => wx.reset());

function open(props: Record<string, unknown> = {}) {
  const comp = mount(checkoutId, { platformUrl: platform.url, merchantId: 'mch_sandbox', amount: 1999, description: '2 coffees', ...props });
  return { comp, events: recordEvents(comp) };
}

async function enrolAndScan(comp: ReturnType<typeof open>['comp'], card: string) {
  wx.scanner.push(card);
  await waitForScreen(comp, 'entry');
  tap(comp, 'cardpay-start');
  await waitForScreen(comp, 'enrol');
  typeDigits(comp, PASSWORD);
  typeDigits(comp, PASSWORD);
  await waitForScreen(comp, 'confirm');
}

describe('the checkout component against the real platform', () => {
  it('enrols, scans, confirms and pays with the password, then reports success with the discount', async () => {
    const { comp, events } = open();
    await enrolAndScan(comp, '6222021000000000009');
    expect(text(comp, 'cardpay-amount')).toBe('¥19.99');
    expect(text(comp, 'cardpay-card')).toBe('银联 622202*********0009');
    tap(comp, 'cardpay-confirm');
    await waitForScreen(comp, 'auth');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'result');
    expect(text(comp, 'cardpay-result')).toBe('支付成功');
    const success = events.find((e) => e.name === 'success');
    expect(success?.detail.payment).toMatchObject({ amount: 1999, charged: 1999 });
    expect(events.filter((e) => e.name === 'statechange').map((e) => e.detail.state)).toEqual([
      'enrolling', 'scanning', 'awaiting_order', 'awaiting_confirmation', 'awaiting_authentication', 'succeeded',
    ]);
    expect(find(comp, 'cardpay-retry')).toBeNull();
  });
});
