import { base64Decode } from '../encoding';
import type { CardFormat } from '../protocol';
import { findCpmPan, looksLikeCpm } from './emv';

/** Why a payload did not read as a card; each has words in the plugin's string tables. */
export type CardReadReason =
  | 'empty'
  | 'not_a_card'
  | 'merchant_qr'
  | 'wallet_payment_code'
  | 'no_pan'
  | 'corrupt'
  | 'length'
  | 'luhn';

/** What a non-card payload was recognised as, where that can be told. */
export type DetectedKind = 'url' | 'wechat_pay' | 'alipay' | 'text';

/** A payload read as a card number; the brand is added by `readCard` (card/brand.ts). */
export interface CardParse {
  pan: string;
  last4: string;
  masked: string;
  format: CardFormat;
}

export type CardReadFailure = {
  ok: false;
  error: 'invalid_card';
  reason: CardReadReason;
  detected?: DetectedKind;
  /** For developers, in English; never contains the payload's digits. */
  message: string;
};

export type CardParseResult = { ok: true; card: CardParse } | CardReadFailure;

export const MIN_PAN_LENGTH = 12;
export const MAX_PAN_LENGTH = 19;

/** The Luhn (mod 10) check. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/**
 * Masks a PAN for display and storage: never more than the first 6 and last 4 digits, and at
 * least 6 digits hidden, so short PANs show fewer leading digits.
 *
 * @example maskPan('6222021000000000009') // '622202*********0009'
 */
export function maskPan(pan: string): string {
  const shownHead = Math.max(0, Math.min(6, pan.length - 10));
  const head = pan.slice(0, shownHead);
  const tail = pan.slice(-4);
  return head + '*'.repeat(pan.length - head.length - tail.length) + tail;
}

function invalid(
  reason: CardReadReason,
  message: string,
  detected?: DetectedKind,
): CardReadFailure {
  return detected
    ? { ok: false, error: 'invalid_card', reason, detected, message }
    : { ok: false, error: 'invalid_card', reason, message };
}

// WeChat Pay payment codes: 18 digits starting 10-15. Alipay: 16-24 digits starting 25-30.
const WECHAT_PAY_CODE = /^1[0-5]\d{16}$/;
const ALIPAY_CODE = /^(2[5-9]|30)\d{14,22}$/;

/**
 * Card ranges that share Alipay's prefixes: Mastercard's 2-series (2221-2720, 16 digits) and
 * Diners Club's 300-305 (up to 19 digits). A Luhn-valid number there is read as a card.
 */
function isCardInAlipayRange(digits: string): boolean {
  if (!luhnValid(digits)) return false;
  const p4 = Number(digits.slice(0, 4));
  const p3 = Number(digits.slice(0, 3));
  return (
    (digits.length === 16 && p4 >= 2221 && p4 <= 2720) ||
    (digits.length <= 19 && p3 >= 300 && p3 <= 305)
  );
}

function walletCode(digits: string): DetectedKind | undefined {
  if (WECHAT_PAY_CODE.test(digits)) return 'wechat_pay';
  if (ALIPAY_CODE.test(digits) && !isCardInAlipayRange(digits)) return 'alipay';
  return undefined;
}

function fromPan(pan: string, format: CardFormat): CardParseResult {
  if (pan.length < MIN_PAN_LENGTH || pan.length > MAX_PAN_LENGTH) {
    return invalid(
      'length',
      `a card number has ${MIN_PAN_LENGTH} to ${MAX_PAN_LENGTH} digits, got ${pan.length}`,
    );
  }
  if (!luhnValid(pan)) return invalid('luhn', 'the card number fails its check digit (Luhn)');
  return {
    ok: true,
    card: { pan, last4: pan.slice(-4), masked: maskPan(pan), format },
  };
}

/**
 * Reads a scanned (or typed) payload as a card number, without naming the brand: what the
 * terminal needs to refuse a non-card at once, without shipping brand tables. Accepts a plain
 * card number (spaces and dashes allowed) and an EMVCo consumer-presented QR (base64 BER-TLV).
 * Recognises and names what is not a card: merchant-presented QR codes, WeChat Pay and Alipay
 * payment codes, URLs. Never throws, whatever the input. `readCard` adds the brand.
 *
 * @example
 * const r = parseCard('4242 4242 4242 4242')
 * if (r.ok) show(r.card.masked) // '424242******4242'
 * else explain(r.reason)        // e.g. 'wallet_payment_code'
 */
export function parseCard(payload: string): CardParseResult {
  if (typeof payload !== 'string') return invalid('empty', 'the payload is not a string');
  const text = payload.trim();
  if (text === '') return invalid('empty', 'the scan is empty');

  if (/^[0-9][0-9 -]*$/.test(text)) {
    const digits = text.replace(/[ -]/g, '');
    const wallet = walletCode(digits);
    if (wallet) {
      return invalid(
        'wallet_payment_code',
        `this is a ${wallet === 'alipay' ? 'Alipay' : 'WeChat Pay'} payment code, not a card`,
        wallet,
      );
    }
    return fromPan(digits, 'pan');
  }
  if (text.startsWith('000201')) {
    return invalid('merchant_qr', 'this is a merchant-presented payment QR code, not a card');
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text) || /^www\./i.test(text)) {
    return invalid('not_a_card', 'this is a web address, not a card', 'url');
  }
  const bytes = base64Decode(text);
  if (bytes && looksLikeCpm(bytes)) {
    const found = findCpmPan(bytes);
    if (!found.ok) {
      return invalid(found.reason, `the card QR code could not be read: ${found.problem}`);
    }
    return fromPan(found.pan, 'emv-cpm');
  }
  return invalid('not_a_card', 'this code does not hold a card number', 'text');
}
