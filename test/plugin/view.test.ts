import type { CheckoutSnapshot } from '../../packages/sdk/src/core/checkout';
import { errorText, pickLocale } from '../../plugin/lib/i18n';
import { checkoutView } from '../../plugin/lib/view';
import { themeStyle, viewEnvironment } from '../../plugin/lib/sdk';

const base: CheckoutSnapshot = {
  state: 'awaiting_authentication',
  busy: false,
  enrolled: true,
  amount: 1999,
  currency: 'CNY',
  biometricModes: [],
};
const prompt = {
  challenge: 'ab'.repeat(32),
  methods: ['password', 'biometric', 'cvv'] as ('password' | 'biometric' | 'cvv')[],
  required: 1,
  attemptsLeft: 5,
  expiresAt: '2026-11-27T18:15:00.000Z',
};

describe('the checkout view', () => {
  it('offers the methods in the platform’s order, biometrics only where the host lent a sensor', () => {
    const methods = (p: typeof prompt, modes: CheckoutSnapshot['biometricModes'] = []) =>
      checkoutView({ ...base, authPrompt: p, biometricModes: modes }, 'zh_CN').methods;
    expect(methods(prompt)).toEqual(['password', 'cvv']);
    expect(methods(prompt, ['fingerPrint'])).toEqual(['password', 'biometric', 'cvv']);
    expect(methods({ ...prompt, methods: ['cvv', 'password'] }, ['fingerPrint'])).toEqual([
      'cvv',
      'password',
    ]);
  });

  it('says a payment is still being confirmed, never that it failed, once the wait runs out', () => {
    const processing = { ...base, state: 'processing' as const, stillProcessing: true };
    expect(checkoutView(processing, 'zh_CN')).toMatchObject({
      screen: 'processing',
      stillProcessing: true,
      errorText: '',
      resultKind: '',
    });
    expect(checkoutView({ ...processing, state: 'succeeded' }, 'zh_CN').stillProcessing).toBe(
      false,
    );
  });

  it('never holds undefined, which setData refuses', () => {
    for (const state of [
      'idle',
      'enrolling',
      'scanning',
      'awaiting_order',
      'processing',
      'succeeded',
      'failed',
      'expired',
    ] as const) {
      const view = checkoutView({ ...base, state, amount: undefined }, 'en_US');
      expect(Object.values(view).includes(undefined as never)).toBe(false);
    }
  });

  it('offers a retry after a decline or an expiry, not after a lockout', () => {
    const failed = (code: string) =>
      checkoutView(
        { ...base, state: 'failed', error: { code: code as never, message: '', retryable: false } },
        'zh_CN',
      ).retryable;
    expect(failed('payment_declined')).toBe(true);
    expect(failed('auth_locked')).toBe(false);
    expect(checkoutView({ ...base, state: 'expired' }, 'zh_CN').retryable).toBe(true);
  });

  it('shows what was paid first, the discount beside the price, the merchant and the card', () => {
    const payment = {
      paymentId: 'pay_1',
      orderId: 'ord_1',
      amount: 5680,
      discount: { rateBps: 200, amountOff: 113 },
      charged: 5567,
      currency: 'CNY',
      card: { brand: 'visa' as const, last4: '4242' },
    };
    const confirmation = {
      orderId: 'ord_1',
      amount: 5680,
      currency: 'CNY',
      card: { brand: 'visa' as const, last4: '4242', masked: '424242******4242' },
      merchant: { id: 'mch_sandbox', name: 'CardPay Sandbox Shop' },
    };
    expect(
      checkoutView({ ...base, state: 'succeeded', payment, confirmation }, 'en_US'),
    ).toMatchObject({
      paidText: '¥55.67',
      discountText: 'Loyalty discount -¥1.13',
      originalText: 'Price ¥56.80',
      merchantName: 'CardPay Sandbox Shop',
      paidCardText: 'Visa (4242)',
      resultText: 'Payment successful',
    });
  });
});

describe('strings', () => {
  it('falls back to zh_CN for any locale but en_US', () => {
    expect(pickLocale('en_US')).toBe('en_US');
    expect(pickLocale('fr_FR')).toBe('zh_CN');
    expect(pickLocale(undefined)).toBe('zh_CN');
  });

  it('has words for a code it does not know, in both languages', () => {
    expect(errorText('zh_CN', { code: 'brand_new' as never, message: '', retryable: false })).toBe(
      '支付失败，请稍后重试',
    );
    expect(
      errorText('en_US', { code: 'brand_new' as never, message: '', retryable: false }),
    ).toMatch(/payment failed/);
  });
});

describe('the theme', () => {
  it('becomes CSS variables, refusing values that are not colours', () => {
    expect(themeStyle({ primary: '#1677ff', radius: 8 })).toBe(
      '--cardpay-primary:#1677ff;--cardpay-radius:8rpx',
    );
    expect(themeStyle({ primary: 'red;background:url(x)' })).toBe('');
  });
});

describe('what the view takes from the base library', () => {
  const g = globalThis as { wx?: unknown };
  const withInfo = (info: unknown) => {
    g.wx = { getAppBaseInfo: () => info };
    try {
      return viewEnvironment();
    } finally {
      delete g.wx;
    }
  };

  it('renders through root-portal from base library 2.25.2, in place before it', () => {
    expect(withInfo({ SDKVersion: '2.25.2' }).portal).toBe(true);
    expect(withInfo({ SDKVersion: '2.32.3' }).portal).toBe(true);
    expect(withInfo({ SDKVersion: '3.0.0' }).portal).toBe(true);
    expect(withInfo({ SDKVersion: '2.25.1' }).portal).toBe(false);
    expect(withInfo({ SDKVersion: '2.9.10' }).portal).toBe(false);
    expect(withInfo(undefined).portal).toBe(false);
  });

  it('follows the shopper’s font size in WeChat, within reason', () => {
    expect(withInfo({ fontSizeScaleFactor: 1.25 }).scale).toBe(1.25);
    expect(withInfo({ fontSizeScaleFactor: 9 }).scale).toBe(1);
    expect(withInfo({}).scale).toBe(1);
    expect(themeStyle(undefined, 1.25)).toBe('--cardpay-scale:1.25');
  });
});
