// The authentication sheet, as WeChat Pay's: a header with a close ×, the amount and what will be
// paid, the card as the shopper knows it; then the card's security code on our keypad as a step
// of its own when it is needed, and the password keypad (or biometrics, where the host lent
// SOTER). The security code stays in this component's memory, never in render data, and goes
// out with the password or biometric factor in one event.
const cvvs = new WeakMap<object, string>();

Component({
  options: { styleIsolation: 'isolated' },
  properties: {
    t: { type: Object, value: {} },
    amountText: { type: String, value: '' },
    /** 「会员优惠 -¥1.13，实付 ¥55.67」, or ''. */
    previewText: { type: String, value: '' },
    /** The card as the shopper knows it. Default ''. */
    cardText: { type: String, value: '' },
    /** The methods to offer, in the platform's order (biometrics only where lent). Default []. */
    methods: { type: Array, value: [] as string[] },
    /** The last error, in words; cleared by the checkout. Default ''. */
    errorText: { type: String, value: '' },
    /** A note such as "one more method needed". Default ''. */
    hint: { type: String, value: '' },
    /** The card's first payment on this phone: its CVV comes first. Default false. */
    cvvMandatory: { type: Boolean, value: false },
    /** The security code is a step of its own before the password. Default false. */
    cvvStep: { type: Boolean, value: false },
    /** Digits of the security code: 3, or 4 on American Express. Default 3. */
    cvvLength: { type: Number, value: 3 },
    /** One of the methods (besides the CVV step) is enough: "or" between them. Default true. */
    alternatives: { type: Boolean, value: true },
    /** Who is paid, from the platform's confirmation. Default ''. */
    merchantName: { type: String, value: '' },
    busy: { type: Boolean, value: false },
  },
  data: { step: 'secret', cvvFilled: 0 },
  observers: {
    errorText(text: string) {
      // After a wrong answer the keypad starts empty again.
      if (text) this.selectComponent('#cardpay-keypad')?.clear?.();
    },
  },
  lifetimes: {
    attached() {
      this.setData({ step: this.data.cvvStep ? 'cvv' : 'secret' });
    },
  },
  methods: {
    onCvvChange(event: WechatMiniprogram.CustomEvent<{ value: string }>) {
      cvvs.set(this, event.detail.value);
      this.setData({ cvvFilled: event.detail.value.length });
    },
    onCvvComplete(event: WechatMiniprogram.CustomEvent<{ value: string }>) {
      cvvs.set(this, event.detail.value);
      this.onCvvSubmit();
    },
    onCvvSubmit() {
      if (this.data.busy || (cvvs.get(this) ?? '').length < 3) return;
      this.setData({ step: 'secret', cvvFilled: 0 });
    },
    onPassword(event: WechatMiniprogram.CustomEvent<{ value: string }>) {
      this.give({ method: 'password', password: event.detail.value });
    },
    onBiometric() {
      if (!this.data.busy) this.give({ method: 'biometric' });
    },
    /** Hands the checkout the factors: the security code given in its step, then this one. */
    give(factor: Record<string, unknown>) {
      const cvv = cvvs.get(this);
      const factors = this.data.cvvStep && cvv ? [{ method: 'cvv', cvv }, factor] : [factor];
      this.triggerEvent('factor', { factors });
    },
    onForgot() {
      if (!this.data.busy) this.triggerEvent('forgot', {});
    },
    /** The header's ×. */
    onClose() {
      this.triggerEvent('cancel', {});
    },
    /** The mask takes no scroll: the page underneath stays where it was. */
    noop() {},
  },
});

export {};
