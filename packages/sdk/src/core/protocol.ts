import type { Schema } from './schema';

// The bodies of PROTOCOL.md as types and schemas. Request schemas are strict (an unnamed field is an
// error); response schemas accept extra fields, since the protocol may be extended.

export type SessionState =
  | 'awaiting_order'
  | 'awaiting_confirmation'
  | 'awaiting_authentication'
  | 'processing'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'expired';

export const FINAL_STATES: readonly SessionState[] = [
  'succeeded',
  'failed',
  'cancelled',
  'expired',
];

export type CardBrand =
  'unionpay' | 'visa' | 'mastercard' | 'amex' | 'jcb' | 'discover' | 'diners' | 'unknown';

export const CARD_BRANDS: readonly CardBrand[] = [
  'unionpay',
  'visa',
  'mastercard',
  'amex',
  'jcb',
  'discover',
  'diners',
  'unknown',
];

export type ScanType = 'qrCode' | 'barCode' | 'datamatrix' | 'pdf417';
export type CardFormat = 'pan' | 'emv-cpm';
export type AuthMethod = 'password' | 'biometric' | 'cvv';
export type BiometricMode = 'fingerPrint' | 'facial' | 'speech';
export type BiometricScheme = 'soter' | 'sandbox-p256';

export interface ErrorInfo {
  code: string;
  message: string;
  retryable: boolean;
}

/** Every error answer: `{ error }` plus, for some codes, more top-level fields. */
export interface ErrorBody {
  /** For `payment_declined`, `error.declineCode` carries the payment platform's reason. */
  error: ErrorInfo & { declineCode?: string; [extra: string]: unknown };
  state?: SessionState;
  authPrompt?: AuthPrompt;
  [extra: string]: unknown;
}

export interface RegisterTerminalRequest {
  deviceLabel?: string;
  password: { salt: string; iterations: number; key: string };
  biometric?: { scheme: BiometricScheme; publicKey?: string };
  /** Who the shopper is in WeChat (§2.1), needed for SOTER in production. */
  identity?: TerminalIdentityRequest;
  /** The terminal's cryptographic suite (§3.1): `cardpay-v1` (default) or `cardpay-sm-v1`. */
  suite?: Suite;
}

/** §3.1: SHA-256 and HMAC-SHA256, or China's SM3 and HMAC-SM3 (国密). */
export type Suite = 'cardpay-v1' | 'cardpay-sm-v1';
export const SUITES: readonly Suite[] = ['cardpay-v1', 'cardpay-sm-v1'];

/** `POST /v1/terminals/{terminalId}/identity`, or `identity` in the registration (§2.1). */
export interface TerminalIdentityRequest {
  /** The host mini-program's AppID. */
  hostAppId: string;
  /** What the host's own `wx.login` returned. */
  hostLoginCode: string;
  /** What `wx.pluginLogin` returned in the plugin, where it could be called. */
  pluginLoginCode?: string;
}

export interface RegisterTerminalResponse {
  terminalId: string;
  terminalSecret: string;
  createdAt: string;
  /** The suite the terminal registered with (§3.1). */
  suite?: Suite;
}

/** `POST /v1/terminals/{terminalId}/password` (§5.7): a new password, proven by a bound card. */
export interface ResetPasswordRequest {
  card: CardInput;
  cvv: string;
  password: { salt: string; iterations: number; key: string };
}

export interface ResetPasswordResponse {
  terminalId: string;
  passwordUpdatedAt: string;
}

/** Trading platform to payment platform: `POST /v1/verifications` (§8), a CVV checked without a charge. */
export interface VerificationRequest {
  verificationId: string;
  pan: string;
  cvv: string;
}

export interface Verification {
  verificationId: string;
  status: 'verified' | 'declined';
  declineCode?: string;
}

export interface CreateSessionRequest {
  merchantId: string;
  orderRef?: string;
}

export interface InputPort {
  methods: ('scan' | 'manual')[];
  scanTypes: ScanType[];
  formats: CardFormat[];
}

export interface OrderSummary {
  orderRef: string;
  amount: number;
  currency: string;
  description?: string;
}

export interface SessionCreated {
  sessionId: string;
  state: SessionState;
  expiresAt: string;
  inputPort: InputPort;
  order?: OrderSummary;
}

export type CardInput =
  { source: 'scan'; scanType: ScanType; payload: string } | { source: 'manual'; payload: string };

export interface OrderRequest {
  amount: number;
  currency: string;
  card: CardInput;
}

export interface CardSummary {
  brand: CardBrand;
  last4: string;
  masked: string;
  /** Optional (§5.2): the bank, when the platform's card-range table knows the first digits. */
  issuer?: CardIssuer;
}

/** Who issued a card, as the shopper knows it: 「招商银行储蓄卡(0009)」. */
export interface CardIssuer {
  /** The bank's name as its cardholders read it (Chinese for Chinese banks). */
  name: string;
  type: 'debit' | 'credit' | 'prepaid';
  /** Extension: the name in English, for the en_US sheet. */
  nameEn?: string;
}

/** Optional (§5.2): the loyalty discount this terminal's history gives now, before paying. */
export interface DiscountPreview {
  rateBps: number;
  amountOff: number;
  charged: number;
}

export interface Confirmation {
  orderId: string;
  amount: number;
  currency: string;
  card: CardSummary;
  confirmToken: string;
  description?: string;
  /** Extension: who is paid, as the shopper should read it before paying. */
  merchant?: { id: string; name: string };
  /** Optional (§5.2): what will be charged, shown before the shopper confirms. */
  discount?: DiscountPreview;
}

/** A confirmation as the status endpoint shows it: `confirmToken` only while it can be used. */
export type ConfirmationView = Omit<Confirmation, 'confirmToken'> & { confirmToken?: string };

export interface OrderResponse {
  sessionId: string;
  state: SessionState;
  confirmation: Confirmation;
}

export interface ConfirmRequest {
  confirmToken: string;
  accept: boolean;
}

export interface AuthPrompt {
  challenge: string;
  methods: AuthMethod[];
  required: number;
  /** Methods that must be among the factors: `cvv` while the card is not bound to this terminal. */
  mandatory?: AuthMethod[];
  attemptsLeft: number;
  expiresAt: string;
}

export interface ConfirmResponse {
  sessionId: string;
  state: SessionState;
  authPrompt?: AuthPrompt;
}

export type Factor =
  | { method: 'password'; proof: string }
  | { method: 'cvv'; value: string }
  | {
      method: 'biometric';
      mode: BiometricMode;
      resultJSON: string;
      signature: string;
      /** Extension, SOTER only: its base64 signature untouched (the same bytes as `signature`). */
      resultJSONSignature?: string;
    };

export interface AuthenticateRequest {
  challenge: string;
  factors: Factor[];
}

export interface Discount {
  rateBps: number;
  amountOff: number;
}

export interface Payment {
  paymentId: string;
  orderId: string;
  amount: number;
  discount: Discount;
  charged: number;
  currency: string;
  /** Extension: when the payment was made, and when its outcome was decided (ISO 8601). */
  createdAt?: string;
  decidedAt?: string;
  /** Extension: the card it was charged to, as a shopper or a merchant may see it. */
  card?: { brand: CardBrand; last4: string };
}

export interface AuthenticateResponse {
  sessionId: string;
  state: SessionState;
  payment: Payment;
}

/** `GET /v1/sessions/{id}`: the session as it stands. */
export interface SessionView {
  sessionId: string;
  state: SessionState;
  expiresAt: string;
  inputPort?: InputPort;
  order?: OrderSummary;
  confirmation?: ConfirmationView;
  authPrompt?: AuthPrompt;
  payment?: Payment;
  error?: ErrorInfo & { declineCode?: string };
}

export interface CreateMerchantOrderRequest {
  merchantOrderId: string;
  amount: number;
  currency: string;
  description?: string;
}

export type MerchantOrderStatus = 'open' | 'paid' | 'failed' | 'partially_refunded' | 'refunded';

export interface Refund {
  refundId: string;
  orderRef: string;
  paymentId: string;
  amount: number;
  currency: string;
  reason?: string;
  status: 'succeeded' | 'pending' | 'failed';
  failureCode?: string;
  createdAt: string;
}

export interface CreateRefundRequest {
  amount?: number;
  reason?: string;
}

/** Trading platform to payment platform: `POST /v1/refunds` (PROTOCOL.md §8). */
export interface RefundRequest {
  refundId: string;
  chargeId: string;
  amount: number;
  currency: string;
}

/** The payment platform's record of a refund. */
export interface PaymentPlatformRefund extends RefundRequest {
  status: 'succeeded' | 'failed';
  failureCode?: string;
}

export interface MerchantOrder {
  orderRef: string;
  merchantId: string;
  merchantOrderId: string;
  amount: number;
  currency: string;
  description?: string;
  status: MerchantOrderStatus;
  createdAt: string;
  /** Once paid: the payment, with what has been refunded of it and every refund, oldest first. */
  payment?: Payment & { refunded: number; refunds: Refund[] };
  /** Extension, on a `failed` order: its last attempt and why it failed (a decline code, or `never_received`). */
  failure?: { paymentId: string; code: string; at?: string };
}

export interface ChargeRequest {
  chargeId: string;
  orderId: string;
  merchantId: string;
  pan: string;
  cvv?: string;
  amount: number;
  discount: Discount;
  charged: number;
  currency: string;
}

export interface Charge {
  chargeId: string;
  orderId: string;
  merchantId: string;
  status: 'succeeded' | 'declined';
  declineCode?: string;
  amount: number;
  discount: Discount;
  charged: number;
  currency: string;
  card: CardSummary;
  createdAt: string;
}

// ---------------------------------------------------------------------------------------------
// Schemas

export const MIN_AMOUNT = 1;
export const MAX_AMOUNT = 100000000;

/** Ids: a type prefix and at most 64 characters of [A-Za-z0-9_]. */
/* @__NO_SIDE_EFFECTS__ */
export function idPattern(prefix: string): string {
  return `^${prefix}_[A-Za-z0-9_]{1,${63 - prefix.length}}$`;
}

export const hex = /* @__NO_SIDE_EFFECTS__ */ (bytes: number): Schema => ({
  type: 'string',
  pattern: `^[0-9a-f]{${bytes * 2}}$`,
});
const hexRange = /* @__NO_SIDE_EFFECTS__ */ (min: number, max: number): Schema => ({
  type: 'string',
  pattern: `^(?:[0-9a-f]{2}){${min},${max}}$`,
});
const id = /* @__NO_SIDE_EFFECTS__ */ (prefix: string): Schema => ({
  type: 'string',
  pattern: idPattern(prefix),
});
const str = /* @__NO_SIDE_EFFECTS__ */ (minLength: number, maxLength: number): Schema => ({
  type: 'string',
  minLength,
  maxLength,
});
const amount: Schema = { type: 'integer', minimum: MIN_AMOUNT, maximum: MAX_AMOUNT };
const minor: Schema = { type: 'integer', minimum: 0, maximum: MAX_AMOUNT };
const currency: Schema = { type: 'string', pattern: '^[A-Z]{3}$' };
const time: Schema = {
  type: 'string',
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$',
};
const stateSchema: Schema = {
  type: 'string',
  enum: [
    'awaiting_order',
    'awaiting_confirmation',
    'awaiting_authentication',
    'processing',
    'succeeded',
    'failed',
    'cancelled',
    'expired',
  ],
};

/* @__NO_SIDE_EFFECTS__ */
function strict(properties: Record<string, Schema>, required: string[] = []): Schema {
  return { type: 'object', properties, required, additionalProperties: false };
}
/* @__NO_SIDE_EFFECTS__ */
function loose(properties: Record<string, Schema>, required: string[] = []): Schema {
  return { type: 'object', properties, required, additionalProperties: true };
}

const passwordKeySchema = strict(
  {
    salt: hex(16),
    iterations: { type: 'integer', minimum: 10000, maximum: 10000000 },
    key: hex(32),
  },
  ['salt', 'iterations', 'key'],
);

export const TerminalIdentityRequestSchema = strict(
  {
    hostAppId: { type: 'string', pattern: '^wx[0-9a-f]{16}$' },
    hostLoginCode: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' },
    pluginLoginCode: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' },
  },
  ['hostAppId', 'hostLoginCode'],
);

export const RegisterTerminalRequestSchema = strict(
  {
    deviceLabel: str(0, 64),
    password: passwordKeySchema,
    identity: TerminalIdentityRequestSchema,
    suite: { type: 'string', enum: ['cardpay-v1', 'cardpay-sm-v1'] },
    biometric: strict(
      {
        scheme: { type: 'string', enum: ['soter', 'sandbox-p256'] },
        publicKey: hexRange(16, 512),
      },
      ['scheme'],
    ),
  },
  ['password'],
);

export const CreateSessionRequestSchema = strict({ merchantId: id('mch'), orderRef: id('mor') }, [
  'merchantId',
]);

const scanType: Schema = { type: 'string', enum: ['qrCode', 'barCode', 'datamatrix', 'pdf417'] };

const cardInputSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: { payload: str(0, 1024) },
  required: ['payload'],
  discriminator: 'source',
  variants: {
    scan: strict({ source: { type: 'string' }, scanType }, ['scanType']),
    manual: strict({ source: { type: 'string' } }),
  },
};

export const OrderRequestSchema = strict({ amount, currency, card: cardInputSchema }, [
  'amount',
  'currency',
  'card',
]);

const cvvValue: Schema = { type: 'string', pattern: '^[0-9]{3,4}$' };

export const ResetPasswordRequestSchema = strict(
  { card: cardInputSchema, cvv: cvvValue, password: passwordKeySchema },
  ['card', 'cvv', 'password'],
);

export const VerificationRequestSchema = strict(
  {
    verificationId: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' },
    pan: { type: 'string', pattern: '^[0-9]{12,19}$' },
    cvv: cvvValue,
  },
  ['verificationId', 'pan', 'cvv'],
);

export const ConfirmRequestSchema = strict(
  { confirmToken: hexRange(8, 64), accept: { type: 'boolean' } },
  ['confirmToken', 'accept'],
);

const factorSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  discriminator: 'method',
  variants: {
    password: strict({ method: { type: 'string' }, proof: hex(32) }, ['proof']),
    cvv: strict(
      { method: { type: 'string' }, value: { type: 'string', pattern: '^[0-9]{3,4}$' } },
      ['value'],
    ),
    biometric: strict(
      {
        method: { type: 'string' },
        mode: { type: 'string', enum: ['fingerPrint', 'facial', 'speech'] },
        resultJSON: str(2, 4096),
        signature: hexRange(8, 1024),
        // An extension for SOTER: its signature as it returned it, checked against `signature`.
        resultJSONSignature: {
          type: 'string',
          maxLength: 1400,
          pattern: '^[A-Za-z0-9+/=\\r\\n]+$',
        },
      },
      ['mode', 'resultJSON', 'signature'],
    ),
  },
};

export const AuthenticateRequestSchema = strict(
  { challenge: hex(32), factors: { type: 'array', items: factorSchema, minItems: 1, maxItems: 3 } },
  ['challenge', 'factors'],
);

export const CreateMerchantOrderRequestSchema = strict(
  {
    merchantOrderId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
    amount,
    currency,
    description: str(0, 256),
  },
  ['merchantOrderId', 'amount', 'currency'],
);

export const CreateRefundRequestSchema = strict({
  amount,
  reason: { type: 'string', maxLength: 200 },
});

export const RefundRequestSchema = strict(
  {
    refundId: id('rfd'),
    chargeId: { type: 'string', pattern: '^chg_[A-Za-z0-9_]{1,60}$' },
    amount,
    currency,
  },
  ['refundId', 'chargeId', 'amount', 'currency'],
);

export const ChargeRequestSchema = strict(
  {
    chargeId: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' },
    orderId: id('ord'),
    merchantId: id('mch'),
    pan: { type: 'string', pattern: '^[0-9]{12,19}$' },
    cvv: { type: 'string', pattern: '^[0-9]{3,4}$' },
    amount,
    discount: strict(
      { rateBps: { type: 'integer', minimum: 0, maximum: 10000 }, amountOff: minor },
      ['rateBps', 'amountOff'],
    ),
    charged: minor,
    currency,
  },
  ['chargeId', 'orderId', 'merchantId', 'pan', 'amount', 'discount', 'charged', 'currency'],
);

// Response schemas: what the terminal checks before it trusts a (signed) answer.

const inputPortSchema = loose(
  {
    methods: { type: 'array', items: { type: 'string', enum: ['scan', 'manual'] } },
    scanTypes: { type: 'array', items: scanType },
    formats: { type: 'array', items: { type: 'string' } },
  },
  ['methods', 'scanTypes', 'formats'],
);
const orderSummarySchema = loose(
  { orderRef: id('mor'), amount, currency, description: { type: 'string' } },
  ['orderRef', 'amount', 'currency'],
);
const cardSummarySchema = loose(
  {
    brand: { type: 'string' },
    last4: { type: 'string', pattern: '^[0-9]{4}$' },
    masked: { type: 'string', pattern: '^[0-9*]{12,19}$' },
    issuer: loose(
      {
        name: str(1, 64),
        type: { type: 'string', enum: ['debit', 'credit', 'prepaid'] },
        nameEn: str(1, 64),
      },
      ['name', 'type'],
    ),
  },
  ['brand', 'last4', 'masked'],
);
const confirmationProperties = {
  orderId: id('ord'),
  amount,
  currency,
  card: cardSummarySchema,
  discount: loose(
    { rateBps: { type: 'integer', minimum: 0, maximum: 10000 }, amountOff: minor, charged: minor },
    ['rateBps', 'amountOff', 'charged'],
  ),
  confirmToken: hexRange(8, 64),
};
const confirmationSchema = loose(confirmationProperties, [
  'orderId',
  'amount',
  'currency',
  'card',
  'confirmToken',
]);
const confirmationViewSchema = loose(confirmationProperties, [
  'orderId',
  'amount',
  'currency',
  'card',
]);
const authPromptSchema = loose(
  {
    challenge: hex(32),
    methods: { type: 'array', items: { type: 'string', enum: ['password', 'biometric', 'cvv'] } },
    required: { type: 'integer', minimum: 1, maximum: 3 },
    attemptsLeft: { type: 'integer', minimum: 0 },
    expiresAt: time,
  },
  ['challenge', 'methods', 'required', 'attemptsLeft', 'expiresAt'],
);
const paymentSchema = loose(
  {
    paymentId: id('pay'),
    orderId: id('ord'),
    amount,
    discount: loose({ rateBps: { type: 'integer' }, amountOff: minor }, ['rateBps', 'amountOff']),
    charged: minor,
    currency,
  },
  ['paymentId', 'orderId', 'amount', 'discount', 'charged', 'currency'],
);

export const ErrorBodySchema = loose(
  {
    error: loose(
      { code: str(1, 64), message: { type: 'string' }, retryable: { type: 'boolean' } },
      ['code', 'message'],
    ),
  },
  ['error'],
);

export const TerminalIdentityResponseSchema = loose(
  { terminalId: id('trm'), hostAppId: { type: 'string' }, linked: { type: 'boolean' } },
  ['terminalId', 'hostAppId'],
);

export const ResetPasswordResponseSchema = loose(
  { terminalId: id('trm'), passwordUpdatedAt: time },
  ['terminalId', 'passwordUpdatedAt'],
);

export const RegisterTerminalResponseSchema = loose(
  { terminalId: id('trm'), terminalSecret: hex(32), createdAt: time },
  ['terminalId', 'terminalSecret'],
);

export const SessionCreatedSchema = loose(
  {
    sessionId: id('ses'),
    state: stateSchema,
    expiresAt: time,
    inputPort: inputPortSchema,
    order: orderSummarySchema,
  },
  ['sessionId', 'state', 'expiresAt', 'inputPort'],
);

export const OrderResponseSchema = loose(
  { sessionId: id('ses'), state: stateSchema, confirmation: confirmationSchema },
  ['sessionId', 'state', 'confirmation'],
);

export const ConfirmResponseSchema = loose(
  { sessionId: id('ses'), state: stateSchema, authPrompt: authPromptSchema },
  ['sessionId', 'state'],
);

export const AuthenticateResponseSchema = loose(
  { sessionId: id('ses'), state: stateSchema, payment: paymentSchema },
  ['sessionId', 'state'],
);

export const SessionViewSchema = loose(
  {
    sessionId: id('ses'),
    state: stateSchema,
    expiresAt: time,
    inputPort: inputPortSchema,
    order: orderSummarySchema,
    confirmation: confirmationViewSchema,
    authPrompt: authPromptSchema,
    payment: paymentSchema,
  },
  ['sessionId', 'state', 'expiresAt'],
);
