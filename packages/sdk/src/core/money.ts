// Money is an integer count of the currency's minor unit everywhere (PROTOCOL.md §1).

/** ISO 4217 minor-unit exponents that differ from 2. */
const EXPONENTS: Record<string, number> = { JPY: 0, KRW: 0, VND: 0, BHD: 3, KWD: 3, OMR: 3 };
const SYMBOLS: Record<string, string> = {
  CNY: '¥',
  USD: '$',
  EUR: '€',
  GBP: '£',
  JPY: '¥',
  HKD: 'HK$',
};

/** The number of decimal places of a currency's minor unit (2 unless listed otherwise). */
export function currencyExponent(currency: string): number {
  return EXPONENTS[currency] ?? 2;
}

/**
 * Formats minor units for display without going through floating point.
 *
 * @example formatAmount(1999, 'CNY') // '¥19.99'
 */
export function formatAmount(amount: number, currency: string): string {
  const exp = currencyExponent(currency);
  const negative = amount < 0;
  const digits = String(Math.abs(Math.trunc(amount))).padStart(exp + 1, '0');
  const whole = digits.slice(0, digits.length - exp).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const text = exp > 0 ? `${whole}.${digits.slice(digits.length - exp)}` : whole;
  const symbol = SYMBOLS[currency];
  return (negative ? '-' : '') + (symbol ? symbol + text : `${text} ${currency}`);
}

/** True for an amount the protocol accepts: an integer from 1 to 100,000,000 minor units. */
export function isValidAmount(amount: unknown): amount is number {
  return Number.isInteger(amount) && (amount as number) >= 1 && (amount as number) <= 100000000;
}
