// The authentication sheet: the methods the platform offered, in its order: our password
// keypad, biometrics (only where the host lent SOTER), the card's CVV.
Component({
  options: { styleIsolation: 'apply-shared' },
  properties: {
    t: { type: Object, value: {} },
    amountText: { type: String, value: '' },
    /** The methods to offer, in the platform's order (biometrics only where lent). Default []. */
    methods: { type: Array, value: [] as string[] },
    /** The last error, in words; cleared by the checkout. Default ''. */
    errorText: { type: String, value: '' },
    /** A note such as "one more method needed". Default ''. */
    hint: { type: String, value: '' },
    /** The card's first payment on this phone: the CVV goes with the password. Default false. */
    cvvMandatory: { type: Boolean, value: false },
    /** One of the methods (besides a mandatory CVV) is enough: "or" between them. Default true. */
    alternatives: { type: Boolean, value: true },
    /** Who is paid, from the platform's confirmation. Default ''. */
    merchantName: { type: String, value: '' },
    busy: { type: Boolean, value: false },
  },
  data: { cvv: '' },
  observers: {
    errorText(text: string) {
      // After a wrong answer the keypad starts empty again.
      if (text) this.selectComponent('#cardpay-keypad')?.clear?.();
    },
  },
  methods: {
    onPassword(event: WechatMiniprogram.CustomEvent<{ value: string }>) {
      this.give({ method: 'password', password: event.detail.value });
    },
    onBiometric() {
      if (!this.data.busy) this.give({ method: 'biometric' });
    },
    /**
     * Hands the checkout a factor. A mandatory CVV typed in its field goes with the password or
     * biometrics in the same event, so the shopper need not tap its own button; it stays typed
     * after a wrong password, for the next try.
     */
    give(factor: Record<string, unknown>) {
      const cvv = this.data.cvv;
      const factors =
        this.data.cvvMandatory && cvv.length >= 3 ? [{ method: 'cvv', cvv }, factor] : [factor];
      this.triggerEvent('factor', { factors });
    },
    onCvvInput(event: WechatMiniprogram.Input) {
      this.setData({ cvv: String(event.detail.value).replace(/\D/g, '').slice(0, 4) });
    },
    onCvvSubmit() {
      if (this.data.busy) return;
      const cvv = this.data.cvv;
      if (!this.data.cvvMandatory) this.setData({ cvv: '' });
      this.triggerEvent('factor', { factors: [{ method: 'cvv', cvv }] });
    },
    onCancel() {
      this.triggerEvent('cancel', {});
    },
  },
});

export {};
