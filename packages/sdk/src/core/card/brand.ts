// Brand detection lives apart from the reader, so that the plugin (which shows the brand the
// platform names) does not ship the brand tables. The card-number module alone is imported:
// the package index also bundles every other validator it has.
import { cardNumber } from 'card-validator/dist/card-number';
import type { CardBrand } from '../protocol';
import { parseCard, type CardParse, type CardReadFailure } from './reader';

const BRANDS: Record<string, CardBrand> = {
  visa: 'visa',
  mastercard: 'mastercard',
  'american-express': 'amex',
  'diners-club': 'diners',
  discover: 'discover',
  jcb: 'jcb',
  unionpay: 'unionpay',
};

/** The card brand from the number's prefix and length; `unknown` where no scheme claims it. */
export function detectBrand(pan: string): CardBrand {
  // A scheme is told by at most the first six digits and the length: the first eight and the
  // length key a small cache (the lookup copies its whole table on every call).
  const key = `${pan.slice(0, 8)}:${pan.length}`;
  let brand = seen.get(key);
  if (!brand) {
    const type = cardNumber(pan).card?.type;
    brand = (type && BRANDS[type]) || 'unknown';
    if (seen.size >= 2048) seen.clear();
    seen.set(key, brand);
  }
  return brand;
}
const seen = new Map<string, CardBrand>();

export interface CardRead extends CardParse {
  brand: CardBrand;
}

export type CardReadResult = { ok: true; card: CardRead } | CardReadFailure;

/**
 * `parseCard` plus the brand: what the platform reads from a payload.
 *
 * @example readCard('6222021000000000009') // { ok: true, card: { brand: 'unionpay', last4: '0009', … } }
 */
export function readCard(payload: string): CardReadResult {
  const parsed = parseCard(payload);
  return parsed.ok
    ? { ok: true, card: { ...parsed.card, brand: detectBrand(parsed.card.pan) } }
    : parsed;
}
