import type { CheckoutSnapshot, CheckoutState } from '../../packages/sdk/src/core/checkout';
import { formatAmount } from '../../packages/sdk/src/core/money';
import { errorText, stringsFor, type Locale } from './i18n';

export type Screen =
  'entry' | 'enrol' | 'scanning' | 'working' | 'confirm' | 'auth' | 'processing' | 'result';

/** What the checkout component renders: derived from the snapshot alone, no `undefined` anywhere. */
export interface CheckoutView {
  state: CheckoutState;
  screen: Screen;
  busy: boolean;
  amountText: string;
  description: string;
  brandName: string;
  masked: string;
  /** The masked card spoken digit by digit rather than as one long number. */
  maskedLabel: string;
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
  /** The card the payment went to: brand and last four. */
  paidCardText: string;
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
  const t = stringsFor(locale);
  const currency = s.confirmation?.currency ?? s.currency;
  const amount = s.confirmation?.amount ?? s.amount;
  const prompt = s.authPrompt;
  // What can be offered, in the platform's order: biometrics only where the host lent a sensor.
  const cvvMandatory = !!prompt?.mandatory?.includes('cvv');
  const methods = (prompt?.methods ?? []).filter(
    (m) => (m !== 'biometric' || s.biometricModes.length > 0) && !(cvvMandatory && m === 'cvv'),
  );
  if (cvvMandatory) methods.unshift('cvv');
  const payment = s.payment;
  const screen = SCREENS[s.state];
  const error = s.error && s.error.code !== 'scan_cancelled' ? errorText(locale, s.error) : '';
  let resultKind: CheckoutView['resultKind'] = '';
  let resultText = '';
  if (screen === 'result') {
    resultKind = s.state === 'succeeded' ? 'success' : 'failure';
    resultText = s.state === 'succeeded' ? t.paid : s.state === 'expired' ? t.expired : t.failed;
  }
  const masked = s.confirmation?.card.masked ?? '';
  const paidCard = payment?.card ?? s.confirmation?.card;
  return {
    state: s.state,
    screen,
    busy: s.busy,
    amountText: amount ? formatAmount(amount, currency) : '',
    description: s.description ?? '',
    brandName: s.confirmation ? (t.brands[s.confirmation.card.brand] ?? t.brands.unknown) : '',
    masked,
    maskedLabel: masked ? `${t.card} ${masked.replace(/\*+/g, ' … ').split('').join(' ')}` : '',
    methods,
    required: prompt?.required ?? 1,
    cvvMandatory,
    alternatives: (prompt?.required ?? 1) - (cvvMandatory ? 1 : 0) < 2,
    resultKind,
    resultText,
    merchantName: s.confirmation?.merchant?.name ?? '',
    paidText: payment ? formatAmount(payment.charged, payment.currency) : '',
    originalText:
      payment && payment.discount.amountOff > 0
        ? `${t.originalPrice} ${formatAmount(payment.amount, payment.currency)}`
        : '',
    paidCardText: paidCard
      ? `${t.brands[paidCard.brand] ?? t.brands.unknown} ···· ${paidCard.last4}`
      : '',
    discountText:
      payment && payment.discount.amountOff > 0
        ? `${t.discount} -${formatAmount(payment.discount.amountOff, payment.currency)}`
        : '',
    errorText: error,
    stillProcessing: s.state === 'processing' && !!s.stillProcessing,
    retryable:
      s.state === 'failed' || s.state === 'expired'
        ? RETRYABLE_AFTER_FAILURE.has(s.error?.code ?? '') || s.state === 'expired'
        : false,
  };
}
