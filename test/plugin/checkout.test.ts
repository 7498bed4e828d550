/**
 * @jest-environment jsdom
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createMerchantOrder,
  spawnSandboxPlatform,
  type SpawnedPlatform,
} from '../../packages/testing/src/platform';
import { sandboxSoterBridge } from '../../packages/testing/src/soter';
import {
  find,
  input,
  installWx,
  loadCheckout,
  mount,
  recordEvents,
  screenOf,
  shimPluginGlobals,
  tap,
  text,
  typeCvv,
  typeDigits,
  waitFor,
  waitForScreen,
  type SimComponent,
} from '../../packages/testing/src/simulate';

const PASSWORD = '204816';
let platform: SpawnedPlatform;
let checkoutId: string;
const wx = installWx();

beforeAll(async () => {
  shimPluginGlobals();
  // The reconciler looks every 4 s, so a slow payment stays `processing` for seconds even on a
  // loaded machine: the in-progress test needs that window (with 1 s it failed once under load).
  const config = join(mkdtempSync(join(tmpdir(), 'cardpay-plugin-')), 'config.json');
  writeFileSync(config, JSON.stringify({ reconcile: { everyMs: 4000 } }));
  platform = await spawnSandboxPlatform([
    '--payment-timeout-ms',
    '400',
    '--sandbox-slow-ms',
    '1500',
    '--config',
    config,
  ]);
  checkoutId = loadCheckout();
});
afterAll(() => platform.close());
beforeEach(() => wx.reset());

function open(props: Record<string, unknown> = {}) {
  const comp = mount(checkoutId, {
    platformUrl: platform.url,
    merchantId: 'mch_sandbox',
    amount: 1999,
    description: '2 coffees',
    ...props,
  });
  return { comp, events: recordEvents(comp) };
}

async function enrol(comp: SimComponent) {
  await waitForScreen(comp, 'entry');
  tap(comp, 'cardpay-start');
  await waitForScreen(comp, 'enrol');
  typeDigits(comp, PASSWORD);
  typeDigits(comp, PASSWORD);
}

async function toConfirmation(comp: SimComponent, card: string) {
  wx.scanner.push(card);
  await enrol(comp);
  await waitForScreen(comp, 'confirm');
}

/** Up to the authentication sheet; the card is new on this phone, so its CVV is typed too. */
async function toPassword(comp: SimComponent, card: string, cvv = '123') {
  await toConfirmation(comp, card);
  tap(comp, 'cardpay-confirm');
  await waitForScreen(comp, 'auth');
  await typeCvv(comp, cvv);
}

const states = (events: { name: string; detail: any }[]) =>
  events.filter((e) => e.name === 'statechange').map((e) => e.detail.state);
const fails = (events: { name: string; detail: any }[]) =>
  events.filter((e) => e.name === 'fail').map((e) => e.detail.error.code);

describe('the checkout component against the real platform', () => {
  it('enrols, scans, confirms and pays with the password, one setData per state change', async () => {
    const { comp, events } = open();
    const calls: Record<string, unknown>[] = [];
    const setData = comp.instance.setData.bind(comp.instance);
    comp.instance.setData = (data) => {
      calls.push(data);
      setData(data);
    };
    await toPassword(comp, '6222021000000000009');
    expect(text(comp, 'cardpay-amount')).toBe('¥19.99');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'result');
    expect(text(comp, 'cardpay-result')).toBe('支付成功');
    expect(events.find((e) => e.name === 'success')?.detail.payment).toMatchObject({
      amount: 1999,
      charged: 1999,
    });
    expect(states(events)).toEqual([
      'enrolling',
      'scanning',
      'awaiting_order',
      'awaiting_confirmation',
      'awaiting_authentication',
      'succeeded',
    ]);
    expect(find(comp, 'cardpay-retry')).toBeNull();
    // Each state change is one setData; the others show a request in flight or the enrolment step.
    const viewStates = calls.filter((c) => c.view).map((c) => (c.view as { state: string }).state);
    const transitions = viewStates.filter((s, i) => s !== viewStates[i - 1]);
    expect(transitions.slice(1)).toEqual(states(events));
    // start, 6 state changes, 3 requests in flight (enrol, confirm, pay), 1 enrolment step.
    expect(calls).toHaveLength(11);
  });

  it('names the merchant, marks the enrolment steps, and leads the result with what was paid', async () => {
    const { comp, events } = open();
    wx.scanner.push('4242424242424242');
    await waitForScreen(comp, 'entry');
    tap(comp, 'cardpay-start');
    await waitForScreen(comp, 'enrol');
    expect(text(comp, 'cardpay-enrol-step')).toBe('第1步，共2步');
    expect(comp.dom.textContent).toContain('不是银行卡取款密码');
    typeDigits(comp, PASSWORD);
    await waitFor(() => text(comp, 'cardpay-enrol-step') === '第2步，共2步：确认', 'step 2');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'confirm');
    expect(text(comp, 'cardpay-merchant')).toBe('CardPay Sandbox Shop');
    tap(comp, 'cardpay-confirm');
    await waitForScreen(comp, 'auth');
    // The CVV goes with the password; the fingerprint is not lent here: no "or" to show.
    expect(text(comp, 'cardpay-merchant')).toBe('CardPay Sandbox Shop');
    await typeCvv(comp, '123');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'result');
    expect(text(comp, 'cardpay-amount')).toBe('¥19.99');
    expect(text(comp, 'cardpay-merchant')).toBe('CardPay Sandbox Shop');
    // The same words for the card as on the sheets.
    expect(text(comp, 'cardpay-card')).toBe('沙箱银行信用卡(4242)');
    tap(comp, 'cardpay-done');
    await waitFor(() => events.some((e) => e.name === 'done'), 'the done event');
    expect(events.find((e) => e.name === 'done')?.detail.payment).toMatchObject({ charged: 1999 });
  });

  it('shows the card as the shopper knows it on the confirmation sheet', async () => {
    const { comp } = open();
    await toConfirmation(comp, '4242 4242 4242 4242');
    // The card as the shopper knows it: bank, type and last four (the sandbox's own bank here).
    expect(text(comp, 'cardpay-card')).toBe('沙箱银行信用卡(4242)');
  });

  it.each([['6200000000000005'], ['5555555555554444'], ['6222021000000000025']])(
    'pays with sandbox card %s',
    async (card) => {
      const { comp } = open();
      await toPassword(comp, card);
      typeDigits(comp, PASSWORD);
      await waitForScreen(comp, 'result');
      expect(text(comp, 'cardpay-result')).toBe('支付成功');
    },
  );

  it('shows progress for the slow card until the platform settles it', async () => {
    const { comp, events } = open();
    await toPassword(comp, '6222021000000000017');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'processing');
    await waitForScreen(comp, 'result', 15000);
    expect(states(events).slice(-2)).toEqual(['processing', 'succeeded']);
  });

  it.each([
    ['4000000000000002', '银行拒绝了此次交易，请换一张卡'],
    ['4000000000009995', '余额不足，请换一张卡'],
  ])('explains the decline of %s and offers a retry', async (card, words) => {
    const { comp, events } = open();
    await toPassword(comp, card);
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'result');
    expect(text(comp, 'cardpay-result')).toBe('支付失败');
    expect(text(comp, 'cardpay-error')).toBe(words);
    expect(fails(events)).toEqual(['payment_declined']);
    tap(comp, 'cardpay-retry');
    await waitForScreen(comp, 'entry');
  });

  it('says how many attempts are left after a wrong password, then pays with the right one', async () => {
    const { comp } = open();
    await toPassword(comp, '4242424242424242');
    typeDigits(comp, '999999');
    await waitFor(() => text(comp, 'cardpay-error') !== '', 'the error');
    expect(text(comp, 'cardpay-error')).toBe('支付密码错误，还可尝试4次');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'result');
    expect(text(comp, 'cardpay-result')).toBe('支付成功');
  });

  it('explains the lockout after the fifth wrong password', async () => {
    const { comp, events } = open();
    await toPassword(comp, '4242424242424242');
    for (let i = 0; i < 5; i++) {
      const before = fails(events).length;
      typeDigits(comp, '999999');
      await waitFor(() => fails(events).length > before, `failure ${i + 1}`);
    }
    await waitForScreen(comp, 'result');
    expect(text(comp, 'cardpay-error')).toBe('密码错误次数过多，已锁定15分钟。可点“忘记密码”重置');
    expect(text(comp, 'cardpay-forgot')).toBe('忘记密码');
    expect(find(comp, 'cardpay-retry')).toBeNull();
  });

  it('ends the session and returns to the entry when the shopper closes the password sheet', async () => {
    const { comp, events } = open();
    await toPassword(comp, '4242424242424242');
    tap(comp, 'cardpay-close');
    await waitForScreen(comp, 'entry');
    expect(events.at(-1)?.name).toBe('cancel');
    expect(
      wx.requests.filter((r) => r.method === 'POST' && r.url.endsWith('/cancel')),
    ).toHaveLength(1);
  });

  it('offers no close on a payment made, so a paid order is never reported cancelled', async () => {
    const { comp, events } = open();
    await toPassword(comp, '4242424242424242');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'result');
    expect(find(comp, 'cardpay-close')).toBeNull();
    expect(events.map((e) => e.name)).not.toContain('cancel');
  });

  it('returns quietly to the entry when the scanner is closed', async () => {
    const { comp, events } = open();
    wx.scanner.pushCancel();
    await enrol(comp);
    await waitFor(() => fails(events).includes('scan_cancelled'), 'scan_cancelled');
    expect(screenOf(comp)).toBe('entry');
    expect(find(comp, 'cardpay-error')).toBeNull();
  });

  it.each([
    ['134567890123456789', '这是微信支付付款码，不是银行卡'],
    ['281234567890123456', '这是支付宝付款码，不是银行卡'],
    [
      '00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING6304A13A',
      '这是商家收款码，不是银行卡',
    ],
    ['https://shop.example.com/item/42', '这是一个网址，不是银行卡'],
  ])('says what a scanned code is when it is not a card: %s', async (code, words) => {
    const { comp } = open();
    wx.scanner.push(code);
    await enrol(comp);
    await waitFor(() => text(comp, 'cardpay-error') !== '', 'the error');
    expect(text(comp, 'cardpay-error')).toBe(words);
    expect(wx.requests.some((r) => r.url.endsWith('/order'))).toBe(false);
  });

  it('takes a typed card number when there is nothing to scan', async () => {
    const { comp } = open();
    wx.scanner.pushCancel();
    await enrol(comp);
    await waitForScreen(comp, 'entry');
    await waitFor(() => !comp.instance.data.view.busy, 'idle');
    tap(comp, 'cardpay-manual');
    await waitFor(() => find(comp, 'cardpay-manual-input') !== null, 'the input');
    input(comp, 'cardpay-manual-input', '5555555555554444');
    tap(comp, 'cardpay-manual-submit');
    await waitForScreen(comp, 'confirm');
    expect(text(comp, 'cardpay-card')).toBe('沙箱银行信用卡(4444)');
  });

  it('ends with a cancel event when the confirmation is rejected', async () => {
    const { comp, events } = open();
    await toConfirmation(comp, '4242424242424242');
    tap(comp, 'cardpay-reject');
    await waitFor(() => events.some((e) => e.name === 'cancel'), 'cancel');
    expect(screenOf(comp)).toBe('entry');
  });

  it('refuses an answer altered in flight', async () => {
    const { comp, events } = open();
    await toConfirmation(comp, '4242424242424242');
    wx.tamperNextResponse((body) =>
      Buffer.from(body.toString('utf8').replace('"state"', '"state" ')),
    );
    tap(comp, 'cardpay-confirm');
    await waitFor(() => fails(events).includes('response_unverified'), 'response_unverified');
    expect(screenOf(comp)).toBe('confirm');
  });

  it('refuses a weak password at enrolment, with a reason', async () => {
    const { comp } = open();
    await waitForScreen(comp, 'entry');
    tap(comp, 'cardpay-start');
    await waitForScreen(comp, 'enrol');
    typeDigits(comp, '123456');
    await waitFor(() => text(comp, 'cardpay-error') !== '', 'the reason');
    expect(text(comp, 'cardpay-error')).toBe('密码太简单（重复、连续或常见数字），请换一个');
    expect(wx.requests).toHaveLength(0);
  });

  it('asks for the CVV on its own keypad before the password on a card’s first payment, and explains a wrong one', async () => {
    const { comp } = open();
    await toConfirmation(comp, '4242424242424242');
    tap(comp, 'cardpay-confirm');
    await waitForScreen(comp, 'auth');
    const sheet = find(comp, 'cardpay-auth-sheet')!;
    expect(sheet.dom.textContent).toContain('首次在此手机使用这张卡');
    expect(sheet.dom.textContent).toContain('请输入卡背面的安全码');
    // No system keyboard: the code is typed on the sheet's keypad, three boxes for this card.
    expect(sheet.dom.innerHTML).not.toMatch(/<input/);
    expect(find(comp, 'cardpay-keypad')).toBeNull();
    await typeCvv(comp, '999');
    expect(find(comp, 'cardpay-cvv')).toBeNull();
    expect(find(comp, 'cardpay-keypad')).not.toBeNull();
    expect(text(comp, 'cardpay-forgot')).toBe('忘记密码');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'result');
    expect(text(comp, 'cardpay-error')).toBe('安全码错误');
  });

  it('asks for the CVV first, then the password, and only the password once the card is bound', async () => {
    const first = open();
    await toConfirmation(first.comp, '5555555555554444');
    tap(first.comp, 'cardpay-confirm');
    await waitForScreen(first.comp, 'auth');
    await typeCvv(first.comp, '123');
    typeDigits(first.comp, PASSWORD);
    await waitForScreen(first.comp, 'result');
    expect(text(first.comp, 'cardpay-result')).toBe('支付成功');
    first.comp.detach();

    // The same phone, the same card: bound now, so the password alone pays.
    const again = open();
    wx.scanner.push('5555555555554444');
    await waitForScreen(again.comp, 'entry');
    tap(again.comp, 'cardpay-start');
    await waitForScreen(again.comp, 'confirm');
    tap(again.comp, 'cardpay-confirm');
    await waitForScreen(again.comp, 'auth');
    expect(again.comp.instance.data.view.cvvMandatory).toBe(false);
    expect(find(again.comp, 'cardpay-auth-sheet')!.dom.textContent).not.toContain('首次');
    typeDigits(again.comp, PASSWORD);
    await waitForScreen(again.comp, 'result');
    expect(text(again.comp, 'cardpay-result')).toBe('支付成功');
  });

  describe('a merchant order paid from another phone', () => {
    const merchantOrder = async () =>
      (
        await createMerchantOrder(platform, {
          merchantOrderId: `cart-${Date.now()}-${Math.floor(Math.random() * 1e6)}`,
          amount: 1999,
        })
      ).orderRef;

    /** This phone at the password sheet for the order; then another phone pays it with `card`. */
    async function payElsewhereFirst(card: string, until: string) {
      const orderRef = await merchantOrder();
      const here = open({ orderRef, amount: 0 });
      await toPassword(here.comp, '4242424242424242');
      wx.reset(); // another phone: its own terminal
      const there = open({ orderRef, amount: 0 });
      await toPassword(there.comp, card);
      typeDigits(there.comp, PASSWORD);
      await waitForScreen(there.comp, until);
      return here;
    }

    it('says the order is already paid, emitting fail and never success', async () => {
      const { comp, events } = await payElsewhereFirst('6200000000000005', 'result');
      typeDigits(comp, PASSWORD);
      await waitForScreen(comp, 'result');
      expect(text(comp, 'cardpay-error')).toBe('该订单已支付，本次未扣款');
      expect(fails(events)).toEqual(['order_already_paid']);
      expect(events.map((e) => e.name)).not.toContain('success');
      expect(find(comp, 'cardpay-retry')).toBeNull();
    });

    it('says a payment for the order is being confirmed, and lets the shopper check again', async () => {
      const { comp, events } = await payElsewhereFirst('6222021000000000017', 'processing');
      typeDigits(comp, PASSWORD);
      await waitFor(() => fails(events).includes('order_payment_in_progress'), 'the answer');
      expect(screenOf(comp)).toBe('auth');
      expect(text(comp, 'cardpay-error')).toBe('该订单有一笔支付正在确认，请稍后再验证');
      // Once the other phone's payment is settled, checking again says the order is paid.
      await new Promise((r) => setTimeout(r, 5000));
      typeDigits(comp, PASSWORD);
      await waitForScreen(comp, 'result');
      expect(fails(events)).toEqual(['order_payment_in_progress', 'order_already_paid']);
      expect(events.map((e) => e.name)).not.toContain('success');
    });
  });

  it('speaks English when asked to', async () => {
    const { comp } = open({ locale: 'en_US' });
    await toConfirmation(comp, '6222021000000000009');
    expect(text(comp, 'cardpay-confirm')).toBe('Pay now');
    expect(text(comp, 'cardpay-card')).toBe('ICBC debit (0009)');
  });

  it('shows the result of a payment that completed while it was detached', async () => {
    const { comp } = open();
    await toPassword(comp, '6222021000000000017');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'processing');
    comp.detach();
    await new Promise((r) => setTimeout(r, 5000));
    const again = open();
    await waitForScreen(again.comp, 'result');
    expect(text(again.comp, 'cardpay-result')).toBe('支付成功');
    expect(again.events.map((e) => e.name)).toContain('success');
  });

  it('asks for the CVV step and then the password above the merchant’s two-factor threshold, on a bound card too', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cardpay-2fa-')), 'config.json');
    const apiKeySha256 = createHash('sha256').update('strict-key').digest('hex');
    writeFileSync(
      file,
      JSON.stringify({
        merchants: [
          {
            id: 'mch_strict',
            apiKeySha256,
            openAmounts: true,
            auth: { methods: ['cvv', 'password'], twoFactorsFrom: 1000 },
          },
        ],
      }),
    );
    const strict = await spawnSandboxPlatform(['--config', file]);
    try {
      const comp = mount(checkoutId, {
        platformUrl: strict.url,
        merchantId: 'mch_strict',
        amount: 1999,
      });
      await toConfirmation(comp, '4242424242424242');
      tap(comp, 'cardpay-confirm');
      await waitForScreen(comp, 'auth');
      // The CVV step first, then the password: never a "one more method" surprise.
      expect(find(comp, 'cardpay-keypad')).toBeNull();
      await typeCvv(comp, '123');
      expect(comp.instance.data.hint).toBe('');
      typeDigits(comp, PASSWORD);
      await waitForScreen(comp, 'result');
      expect(text(comp, 'cardpay-result')).toBe('支付成功');
      // The card is now bound to this phone: the next payment above the threshold needs both
      // methods again, and the sheet says so rather than offering them as alternatives.
      comp.detach();
      const again = mount(checkoutId, {
        platformUrl: strict.url,
        merchantId: 'mch_strict',
        amount: 2999,
      });
      wx.scanner.push('4242424242424242');
      await waitForScreen(again, 'entry');
      tap(again, 'cardpay-start');
      await waitForScreen(again, 'confirm');
      tap(again, 'cardpay-confirm');
      await waitForScreen(again, 'auth');
      expect(again.instance.data.view.cvvMandatory).toBe(false);
      expect(find(again, 'cardpay-cvv')).not.toBeNull();
      await typeCvv(again, '123');
      expect(again.dom.innerHTML).not.toMatch(/cardpay-or"/);
      typeDigits(again, PASSWORD);
      await waitForScreen(again, 'result');
      expect(text(again, 'cardpay-result')).toBe('支付成功');
    } finally {
      await strict.close();
    }
  });

  it('resets a forgotten password from the password sheet with the session’s card, then pays with the new one', async () => {
    const first = open();
    await toPassword(first.comp, '6222021000000000009');
    typeDigits(first.comp, PASSWORD);
    await waitForScreen(first.comp, 'result');
    first.comp.detach();

    const { comp, events } = open();
    wx.scanner.push('6222021000000000009');
    await waitForScreen(comp, 'entry');
    tap(comp, 'cardpay-start');
    await waitForScreen(comp, 'confirm');
    expect(text(comp, 'cardpay-card')).toBe('中国工商银行储蓄卡(0009)');
    tap(comp, 'cardpay-confirm');
    await waitForScreen(comp, 'auth');
    tap(comp, 'cardpay-forgot');
    await waitForScreen(comp, 'reset');
    expect(text(comp, 'cardpay-reset-card')).toBe('中国工商银行储蓄卡(0009)');
    tap(comp, 'cardpay-reset-card');
    await waitFor(() => !!find(comp, 'cardpay-cvv'), 'the CVV step');
    await typeCvv(comp, '123');
    typeDigits(comp, '730194');
    await waitFor(() => text(comp, 'cardpay-enrol-step') === '第2步，共2步：确认', 'step 2');
    typeDigits(comp, '730194');
    // Back on the password sheet of the same payment, told the reset worked.
    await waitForScreen(comp, 'auth');
    expect(comp.instance.data.view.noticeText).toBe('支付密码已重置');
    typeDigits(comp, PASSWORD);
    await waitFor(() => text(comp, 'cardpay-error') !== '', 'the old password refused');
    expect(text(comp, 'cardpay-error')).toMatch(/^支付密码错误/);
    typeDigits(comp, '730194');
    await waitForScreen(comp, 'result');
    expect(text(comp, 'cardpay-result')).toBe('支付成功');
    expect(states(events)).toContain('resetting');
  });

  it('offers the reset on the locked screen, and a wrong CVV there says so and stays on the code', async () => {
    const { comp } = open();
    await toPassword(comp, '5555555555554444');
    typeDigits(comp, PASSWORD);
    await waitForScreen(comp, 'result');
    comp.detach();
    const again = open();
    for (let i = 0; i < 5; i++) {
      wx.scanner.push('5555555555554444');
      await waitFor(() => ['entry', 'result'].includes(screenOf(again.comp) ?? ''), 'a start');
      tap(again.comp, screenOf(again.comp) === 'result' ? 'cardpay-retry' : 'cardpay-start');
      if (screenOf(again.comp) !== 'confirm') await waitForScreen(again.comp, 'confirm');
      tap(again.comp, 'cardpay-confirm');
      await waitForScreen(again.comp, 'auth');
      typeDigits(again.comp, '907153');
      await waitFor(
        () => text(again.comp, 'cardpay-error') !== '' || screenOf(again.comp) === 'result',
        'the refusal',
      );
      if (screenOf(again.comp) === 'result') break;
      tap(again.comp, 'cardpay-close');
      await waitForScreen(again.comp, 'entry');
    }
    await waitForScreen(again.comp, 'result');
    tap(again.comp, 'cardpay-forgot');
    await waitForScreen(again.comp, 'reset');
    tap(again.comp, 'cardpay-reset-card');
    await waitFor(() => !!find(again.comp, 'cardpay-cvv'), 'the CVV step');
    await typeCvv(again.comp, '999');
    typeDigits(again.comp, '730194');
    typeDigits(again.comp, '730194');
    await waitFor(() => text(again.comp, 'cardpay-error') !== '', 'the refusal');
    expect(text(again.comp, 'cardpay-error')).toBe('安全码错误，请核对卡背面的数字');
    expect(find(again.comp, 'cardpay-cvv')).not.toBeNull();
  });

  it('follows a new cart total until the shopper starts, and a new locale at any time', async () => {
    const { comp } = open();
    await waitForScreen(comp, 'entry');
    comp.setData({ amount: 2500 });
    await waitFor(() => text(comp, 'cardpay-amount') === '¥25.00', 'the new total');
    comp.setData({ locale: 'en_US' });
    await waitFor(() => text(comp, 'cardpay-start') === 'Pay by card', 'English');
    await toConfirmation(comp, '4242424242424242');
    expect(text(comp, 'cardpay-amount')).toBe('¥25.00');
  });

  describe('with SOTER lent by the host', () => {
    const lend = (bridge: ReturnType<typeof sandboxSoterBridge> | undefined) =>
      requirePlugin('cardpay').setHostBridge(bridge);
    afterEach(() => lend(undefined));

    it('pays with a fingerprint after a cancelled first try, the password still at hand', async () => {
      const soter = sandboxSoterBridge({ outcomes: ['cancel'] });
      lend(soter);
      const { comp, events } = open();
      await toPassword(comp, '4242424242424242');
      expect(find(comp, 'cardpay-keypad')).not.toBeNull();
      // The CVV goes with either; the password and the fingerprint are alternatives: one "or".
      expect(comp.dom.innerHTML.match(/cardpay-or"/g)).toHaveLength(1);
      expect(comp.dom.textContent).toMatch(/请输入支付密码[\s\S]*或[\s\S]*使用指纹或面容支付/);
      tap(comp, 'cardpay-biometric');
      await waitFor(() => text(comp, 'cardpay-error') !== '', 'the cancel');
      expect(text(comp, 'cardpay-error')).toBe('已取消生物识别，可改用支付密码');
      tap(comp, 'cardpay-biometric');
      await waitForScreen(comp, 'result');
      expect(text(comp, 'cardpay-result')).toBe('支付成功');
      expect(soter.calls.map((c) => c.modes)).toEqual([['fingerPrint'], ['fingerPrint']]);
      expect(soter.calls[1].challenge).toMatch(/^[0-9a-f]{64}$/);
      expect(events.find((e) => e.name === 'success')?.detail.payment).toMatchObject({
        amount: 1999,
      });
    });

    it('counts a signature the platform refuses as a failed attempt, in words about biometrics', async () => {
      lend(sandboxSoterBridge({ outcomes: ['mismatch'] }));
      const { comp, events } = open();
      await toPassword(comp, '4242424242424242');
      tap(comp, 'cardpay-biometric');
      await waitFor(() => text(comp, 'cardpay-error') !== '', 'the refusal');
      expect(text(comp, 'cardpay-error')).toBe('生物识别未通过，还可尝试4次');
      expect(fails(events)).toEqual(['auth_failed']);
      typeDigits(comp, PASSWORD);
      await waitForScreen(comp, 'result');
      expect(text(comp, 'cardpay-result')).toBe('支付成功');
    });

    it('offers no biometric button on a device with nothing enrolled', async () => {
      lend(sandboxSoterBridge({ modes: [] }));
      const { comp } = open();
      await toPassword(comp, '4242424242424242');
      expect(find(comp, 'cardpay-biometric')).toBeNull();
    });
  });

  it('says plainly when the host forgot to configure it', async () => {
    const { comp, events } = open({ platformUrl: '', merchantId: '' });
    await waitFor(() => fails(events).length > 0, 'fail');
    expect(fails(events)).toEqual(['config_invalid']);
    expect(text(comp, 'cardpay-error')).toBe('支付组件配置有误，请联系商家');
  });
});
