import type { CheckoutSnapshot, CheckoutState } from '../../packages/sdk/src/core/checkout';
import type { CardSummary } from '../../packages/sdk/src/core/protocol';
import { formatAmount } from '../../packages/sdk/src/core/money';
import { errorText, stringsFor, type Locale, type Strings } from './i18n';

export type Screen =
  | 'entry'
  | 'enrol'
  | 'scanning'
  | 'working'
  | 'confirm'
  | 'auth'
  | 'processing'
  | 'result'
  | 'reset';

/** What the checkout component renders: derived from the snapshot alone, no `undefined` anywhere. */
export interface CheckoutView {
  state: CheckoutState;
  screen: Screen;
  busy: boolean;
  amountText: string;
  description: string;
  /** The authentication methods to offer, in the platform's order (a mandatory CVV first). */
  methods: string[];
  required: number;
  /** The card's first payment on this terminal: its CVV is asked for with the password. */
  cvvMandatory: boolean;
  /** The methods besides a mandatory CVV are alternatives: one of them is enough ("or"). */
  alternatives: boolean;
  resultKind: 'success' | 'failure' | '';
  resultText: string;
  /** Who is paid, from the platform's confirmation ('' until it came). */
  merchantName: string;
  /** What the card paid: the large figure of a success. */
  paidText: string;
  /** The price before the discount, shown beside the discount ('' without one). */
  originalText: string;
  discountText: string;
  /** The card the payment went to, as on every screen: 「招商银行储蓄卡(0009)」. */
  paidCardText: string;
  /** The card of this session as the shopper knows it, the same on every screen. */
  cardText: string;
  /** Before paying: 「会员优惠 -¥1.13，实付 ¥55.67」 ('' without a discount). */
  previewText: string;
  /** The security code's length on this card: 4 on American Express, else 3. */
  cvvLength: number;
  /** The CVV is asked for as its own step before the password (needed, never an alternative). */
  cvvStep: boolean;
  /** The terminal is locked: the forgotten-password path is the way on. */
  locked: boolean;
  /** While resetting: the session's card a reset may use ('' when there is none). */
  resetCardText: string;
  /** What was just done, in words ('' when nothing). */
  noticeText: string;
  errorText: string;
  retryable: boolean;
  /** `processing` outlasted the wait: say so, and offer to ask again. */
  stillProcessing: boolean;
}

const SCREENS: Record<CheckoutState, Screen> = {
  idle: 'entry',
  cancelled: 'entry',
  enrolling: 'enrol',
  scanning: 'scanning',
  awaiting_order: 'working',
  awaiting_confirmation: 'confirm',
  awaiting_authentication: 'auth',
  processing: 'processing',
  resetting: 'reset',
  succeeded: 'result',
  failed: 'result',
  expired: 'result',
};

/** Errors that a retry of the same step (or a new attempt) can cure. */
const RETRYABLE_AFTER_FAILURE = new Set([
  'payment_declined',
  'session_expired',
  'network_error',
  'timeout',
  'payment_unavailable',
  'response_unverified',
]);

export function checkoutView(s: CheckoutSnapshot, locale: Locale): CheckoutView {
  // Written with && and || rather than ?. and ??: the plugin is built for ES2017, where each of
  // those becomes a temporary and a test, and this function runs on every state change.
  const t = stringsFor(locale);
  const c = s.confirmation;
  const currency = (c && c.currency) || s.currency;
  const amount = (c && c.amount) || s.amount;
  const prompt = s.authPrompt;
  const offered = (prompt && prompt.methods) || [];
  const required = (prompt && prompt.required) || 1;
  // What can be offered, in the platform's order: biometrics only where the host lent a sensor.
  const cvvMandatory = !!(prompt && prompt.mandatory && prompt.mandatory.includes('cvv'));
  const methods = offered.filter(
    (m) => (m !== 'biometric' || s.biometricModes.length > 0) && !(cvvMandatory && m === 'cvv'),
  );
  if (cvvMandatory) methods.unshift('cvv');
  const cvvStep = offered.includes('cvv') && (cvvMandatory || required >= 2);
  const payment = s.payment;
  const screen = SCREENS[s.state];
  const error = s.error && s.error.code !== 'scan_cancelled' ? errorText(locale, s.error) : '';
  let resultKind: CheckoutView['resultKind'] = '';
  let resultText = '';
  if (screen === 'result') {
    resultKind = s.state === 'succeeded' ? 'success' : 'failure';
    resultText = s.state === 'succeeded' ? t.paid : s.state === 'expired' ? t.expired : t.failed;
  }
  const card = c && c.card;
  // The result names the card the session confirmed (it knows the issuer), else the payment's.
  const paidCard = card || (payment && payment.card);
  const preview = c && c.discount;
  const off = payment && payment.discount.amountOff > 0;
  return {
    state: s.state,
    screen,
    busy: s.busy,
    amountText: amount ? formatAmount(amount, currency) : '',
    description: s.description || '',
    methods,
    required,
    cvvMandatory,
    alternatives: required - (cvvStep ? 1 : 0) < 2,
    resultKind,
    resultText,
    merchantName: (c && c.merchant && c.merchant.name) || '',
    paidText: payment ? formatAmount(payment.charged, payment.currency) : '',
    originalText: off ? `${t.originalPrice} ${formatAmount(payment.amount, payment.currency)}` : '',
    paidCardText: paidCard ? cardName(t, paidCard, locale) : '',
    cardText: card ? cardName(t, card, locale) : '',
    previewText:
      preview && preview.amountOff > 0
        ? `${t.discount} -${formatAmount(preview.amountOff, currency)}${locale === 'en_US' ? ', ' : '，'}${t.toPay} ${formatAmount(preview.charged, currency)}`
        : '',
    cvvLength: card && card.brand === 'amex' ? 4 : 3,
    cvvStep,
    locked: !!s.error && s.error.code === 'auth_locked',
    resetCardText: s.resetCard ? cardName(t, s.resetCard, locale) : '',
    noticeText: s.notice === 'password_reset' ? t.resetDone : '',
    discountText: off
      ? `${t.discount} -${formatAmount(payment.discount.amountOff, payment.currency)}`
      : '',
    errorText: error,
    stillProcessing: s.state === 'processing' && !!s.stillProcessing,
    retryable:
      s.state === 'failed' || s.state === 'expired'
        ? RETRYABLE_AFTER_FAILURE.has((s.error && s.error.code) || '') || s.state === 'expired'
        : false,
  };
}

/** A card as the shopper knows it: 「招商银行储蓄卡(0009)」, or the brand when the bank is unknown. */
export function cardName(
  t: Strings,
  card: Pick<CardSummary, 'brand' | 'last4' | 'issuer'>,
  locale: Locale,
): string {
  const issuer = card.issuer;
  if (issuer) {
    const bank = locale === 'en_US' ? (issuer.nameEn ?? issuer.name) : issuer.name;
    const type = t.cardTypes[issuer.type] ?? '';
    return locale === 'en_US' ? `${bank} ${type} (${card.last4})` : `${bank}${type}(${card.last4})`;
  }
  const brand = t.brands[card.brand] ?? t.brands.unknown;
  return locale === 'en_US' ? `${brand} (${card.last4})` : `${brand}(${card.last4})`;
}
