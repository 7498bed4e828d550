// The plugin's public component: the card-number input port a shopper taps on the checkout page.
// It renders the SDK's checkout state machine: every state change arrives as one snapshot and
// becomes one setData; taps become method calls on the machine.
// The shared bundle by a plain require, and types by import types: with no ES import or export
// in the file, esbuild emits the require as it is, without its shim or interop helpers.
import sdk = require('../../lib/sdk');

type AuthInput = import('../../../packages/sdk/src/core/checkout').AuthInput;
type Checkout = import('../../../packages/sdk/src/core/checkout').Checkout;
type CardInput = import('../../../packages/sdk/src/core/protocol').CardInput;
type Locale = import('../../lib/sdk').Locale;

const {
  Checkout: CheckoutMachine,
  checkoutView,
  currentConfig,
  errorText,
  passwordWeakness,
  pickLocale,
  pluginHost,
  stringsFor,
  themeStyle,
  viewEnvironment,
  CardPayError,
} = sdk;

interface Local {
  checkout?: Checkout;
  locale: Locale;
  firstPassword?: string;
  factors: AuthInput[];
  manual: string;
  /** A password reset's card (undefined: this session's) and security code, in memory only. */
  resetCard?: CardInput;
  resetCvv?: string;
}

const locals = new WeakMap<object, Local>();

Component({
  properties: {
    /** A merchant order (PROTOCOL.md §7); its amount wins. Default ''. */
    orderRef: { type: String, value: '' },
    /** Minor units, for open amounts. Default 0 (none). */
    amount: { type: Number, value: 0 },
    /** ISO 4217. Default 'CNY'. */
    currency: { type: String, value: 'CNY' },
    /** Shown on the confirmation sheet. Default ''. */
    description: { type: String, value: '' },
    /** Overrides configure() for this instance. Default ''. */
    platformUrl: { type: String, value: '' },
    /** Overrides configure() for this instance. Default ''. */
    merchantId: { type: String, value: '' },
    /** 'zh_CN' (default) or 'en_US'. */
    locale: { type: String, value: '' },
    /** Who provides the payment service, as WeChat's financial category asks to show. Default 'CardPay'. */
    serviceProvider: { type: String, value: 'CardPay' },
  },
  data: {
    t: stringsFor('zh_CN'),
    view: null as ReturnType<typeof checkoutView> | null,
    themeStyle: '',
    enrolStep: 'first',
    hint: '',
    manualOpen: false,
    /** WeChat Pay's pattern: 「当前服务由 CardPay 提供」. */
    serviceText: '',
    /** Sheets render through root-portal (base library 2.25.2), above anything of the host page. */
    portal: false,
    resetStep: 'card',
    resetCvvLength: 3,
    resetCvvFilled: 0,
    resetCardText: '',
  },
  observers: {
    // The order can change after the component is shown (the cart changed): follow it while the
    // shopper has not started; once a session carries an order, its amount is what was confirmed.
    'orderRef, amount, currency, description, platformUrl, merchantId'() {
      const local = locals.get(this);
      if (!local) return; // not attached yet: boot() reads the properties
      const snap = local.checkout?.snapshot;
      if (
        !snap ||
        ((snap.state === 'idle' || snap.state === 'cancelled') && !snap.busy && !snap.confirmation)
      ) {
        local.checkout?.destroy();
        this.boot();
      }
    },
    locale(value: string) {
      const local = locals.get(this);
      if (!local) return;
      local.locale = pickLocale(value || currentConfig()?.locale);
      const snapshot = local.checkout?.snapshot;
      const patch: Record<string, unknown> = {
        t: stringsFor(local.locale),
        serviceText: serviceText(local.locale, this.data.serviceProvider),
      };
      if (snapshot) patch.view = checkoutView(snapshot, local.locale);
      this.setData(patch);
    },
  },
  lifetimes: {
    attached() {
      this.boot();
    },
    detached() {
      locals.get(this)?.checkout?.destroy();
      locals.delete(this);
    },
  },
  methods: {
    boot() {
      const config = currentConfig();
      const locale = pickLocale(this.data.locale || config?.locale);
      const local: Local = { locale, factors: [], manual: '' };
      locals.set(this, local);
      let checkout: Checkout;
      try {
        checkout = new CheckoutMachine({
          host: pluginHost(),
          platformUrl: this.data.platformUrl || config?.platformUrl || '',
          merchantId: this.data.merchantId || config?.merchantId || '',
          // Absent (not empty) where the host gave nothing: the machine checks what is given.
          orderRef: this.data.orderRef || undefined,
          amount: this.data.amount || undefined,
          currency: this.data.currency || 'CNY',
          description: this.data.description || undefined,
          suite: config?.suite,
        });
      } catch (error) {
        // A misconfigured host: say so in words, and tell the host why through `fail`.
        const e =
          error instanceof CardPayError ? error : new CardPayError('config_invalid', String(error));
        const failure = { code: e.code, message: e.message, retryable: false };
        this.setData({
          t: stringsFor(locale),
          view: Object.assign(emptyView(locale), { errorText: errorText(locale, failure) }),
        });
        // After attach completes, so that listeners added right after mounting hear it too.
        void Promise.resolve().then(() =>
          this.triggerEvent('fail', { error: { code: e.code, message: e.message } }),
        );
        return;
      }
      local.checkout = checkout;
      checkout.on('change', (snapshot) => {
        if (snapshot.state !== 'awaiting_authentication') local.factors = [];
        // The enrolment keypad keeps its step only while the user is still typing; anything else
        // (a request, an error, another screen) starts it over. Still one setData per change.
        const typing =
          (snapshot.state === 'enrolling' || snapshot.state === 'resetting') &&
          !snapshot.busy &&
          !snapshot.error;
        const patch: Record<string, unknown> = { view: checkoutView(snapshot, local.locale) };
        if (!typing) Object.assign(patch, { enrolStep: 'first', hint: '' });
        if (snapshot.state === 'resetting' && !snapshot.busy) {
          // A refusal sends the shopper back to the step it is about; a fresh reset starts at the card.
          const code = snapshot.error?.code;
          if (code === 'cvv_invalid' || code === 'cvv_format') patch.resetStep = 'cvv';
          else if (code === 'password_weak' || code === 'password_mismatch')
            patch.resetStep = 'password';
          else if (this.data.view?.state !== 'resetting' || code) patch.resetStep = 'card';
          if (patch.resetStep === 'card') local.resetCard = undefined;
          if (patch.resetStep === 'card' || patch.resetStep === 'cvv') local.resetCvv = undefined;
        }
        this.setData(patch);
      });
      checkout.on('statechange', (detail) => this.triggerEvent('statechange', detail));
      checkout.on('success', (detail) => this.triggerEvent('success', detail));
      checkout.on('fail', ({ error }) =>
        this.triggerEvent('fail', { error: { code: error.code, message: error.message } }),
      );
      checkout.on('cancel', () => this.triggerEvent('cancel', {}));
      const env = viewEnvironment();
      this.setData({
        t: stringsFor(locale),
        themeStyle: themeStyle(config?.theme, env.scale),
        serviceText: serviceText(locale, this.data.serviceProvider),
        portal: env.portal,
        view: checkoutView(checkout.snapshot, locale),
      });
      void checkout.start();
    },
    machine(): Checkout | undefined {
      return locals.get(this)?.checkout;
    },
    /** The first touch of the pay button: the platform session opens while the finger is down. */
    onTouch() {
      void this.machine()?.prepare();
    },
    onStart() {
      void this.machine()?.begin();
    },
    onForgot() {
      void this.machine()?.forgotPassword();
    },
    /** The × of the password sheets: leaves the reset, or the checkout while enrolling. */
    onSheetClose() {
      if (this.data.view?.screen === 'reset') void this.machine()?.cancelReset();
      else void this.machine()?.cancel();
    },
    /** The reset proves the cardholder with this session's card. */
    onResetSessionCard() {
      const local = locals.get(this);
      const view = this.data.view;
      if (!local || !view) return;
      local.resetCard = undefined;
      this.setData({
        resetStep: 'cvv',
        resetCvvLength: view.cvvLength,
        resetCvvFilled: 0,
        resetCardText: view.resetCardText,
      });
    },
    async onResetScan() {
      const local = locals.get(this);
      const card = await local?.checkout?.scanCard();
      if (local && card) this.chooseResetCard(card);
    },
    chooseResetCard(card: CardInput) {
      const local = locals.get(this);
      if (!local) return;
      local.resetCard = card;
      const digits = card.payload.replace(/\D/g, '');
      this.setData({
        resetStep: 'cvv',
        // American Express cards (34, 37) have a 4-digit code; the others 3.
        resetCvvLength: /^3[47]/.test(digits) ? 4 : 3,
        resetCvvFilled: 0,
        resetCardText: digits.length >= 4 ? `···· ${digits.slice(-4)}` : '',
      });
    },
    onResetCvvChange(event: WechatMiniprogram.CustomEvent<{ value: string }>) {
      const local = locals.get(this);
      if (!local) return;
      local.resetCvv = event.detail.value;
      this.setData({ resetCvvFilled: event.detail.value.length });
    },
    onResetCvvComplete(event: WechatMiniprogram.CustomEvent<{ value: string }>) {
      const local = locals.get(this);
      if (!local) return;
      local.resetCvv = event.detail.value;
      this.onResetCvvSubmit();
    },
    onResetCvvSubmit() {
      const local = locals.get(this);
      if (!local || (local.resetCvv ?? '').length < 3) return;
      this.setData({ resetStep: 'password', enrolStep: 'first', resetCvvFilled: 0, hint: '' });
    },
    /**
     * The six digits of a new password, at enrolment or in a reset: checked, then asked again;
     * the second entry hands both to the checkout.
     */
    onPasswordDigits(event: WechatMiniprogram.CustomEvent<{ value: string }>) {
      const local = locals.get(this);
      if (!local?.checkout) return;
      const value = event.detail.value;
      if (this.data.enrolStep === 'first') {
        const weakness = passwordWeakness(value);
        if (weakness) {
          const code = weakness === 'weak' ? 'password_weak' : 'password_format';
          this.setData({ hint: errorText(local.locale, { code, message: '', retryable: true }) });
          return;
        }
        local.firstPassword = value;
        this.setData({ enrolStep: 'repeat', hint: '' });
        return;
      }
      const first = local.firstPassword ?? '';
      local.firstPassword = undefined;
      if (this.data.view?.screen !== 'reset') {
        void local.checkout.enrol(first, value);
        return;
      }
      void local.checkout.resetPassword({
        card: local.resetCard,
        cvv: local.resetCvv ?? '',
        password: first,
        repeat: value,
      });
    },
    /** Sheets take no scroll: the page underneath stays where it was. */
    noop() {},
    onManual() {
      this.setData({ manualOpen: !this.data.manualOpen });
    },
    onManualInput(event: WechatMiniprogram.Input) {
      const local = locals.get(this);
      if (local) local.manual = String(event.detail.value);
    },
    onManualSubmit() {
      const local = locals.get(this);
      if (local) void local.checkout?.enterManually(local.manual);
    },
    onConfirm() {
      void this.machine()?.confirm();
    },
    onReject() {
      void this.machine()?.reject();
    },
    onFactor(event: WechatMiniprogram.CustomEvent<{ factors: AuthInput[] }>) {
      const local = locals.get(this);
      const view = this.data.view;
      if (!local?.checkout || !view) return;
      const given = event.detail.factors;
      local.factors = local.factors
        .filter((f) => !given.some((g) => g.method === f.method))
        .concat(given);
      if (local.factors.length < view.required) {
        // A second method is needed above the merchant's threshold (the sheet's CVV step comes
        // before the password, so this is two secret methods, rare).
        this.setData({ hint: stringsFor(local.locale).oneMoreMethod });
        return;
      }
      const factors = local.factors;
      local.factors = [];
      void local.checkout.authenticate(factors);
    },
    onRefresh() {
      void this.machine()?.refresh();
    },
    onRetry() {
      void this.machine()?.retry();
    },
    onClose() {
      void this.machine()?.cancel();
    },
    /** The shopper read the result: the host may move on (an extension event, `done`). */
    onDone() {
      this.triggerEvent('done', { payment: this.machine()?.snapshot.payment });
    },
  },
});

function serviceText(locale: Locale, provider: string): string {
  return stringsFor(locale).serviceBy.replace('{name}', provider || 'CardPay');
}

function emptyView(locale: Locale): ReturnType<typeof checkoutView> {
  return checkoutView(
    { state: 'idle', busy: false, enrolled: false, currency: 'CNY', biometricModes: [] },
    locale,
  );
}
