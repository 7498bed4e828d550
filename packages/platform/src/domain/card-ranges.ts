import type { CardIssuer } from 'cardpay';

/**
 * One row of a card-range table: the first six digits of a card number (its BIN: what a masked
 * card keeps, so a session's card can be looked up again after its number is gone) and who
 * issued the cards that start with them.
 */
export interface CardRange {
  prefix: string;
  name: string;
  nameEn?: string;
  type: CardIssuer['type'];
}

/**
 * The reference table: a few well-known ranges of large Chinese issuers and every sandbox card of
 * PROTOCOL.md §8, so that the sheet reads 「中国工商银行储蓄卡(0009)」 rather than a row of digits.
 * It is a starting point, not a BIN file: an operator gives its card scheme's own table through
 * the config's `cardRanges`, which replaces this one.
 */
export const DEFAULT_CARD_RANGES: readonly CardRange[] = [
  { prefix: '622202', name: '中国工商银行', nameEn: 'ICBC', type: 'debit' },
  { prefix: '621226', name: '中国工商银行', nameEn: 'ICBC', type: 'debit' },
  { prefix: '622848', name: '中国农业银行', nameEn: 'Agricultural Bank of China', type: 'debit' },
  { prefix: '621700', name: '中国建设银行', nameEn: 'China Construction Bank', type: 'debit' },
  { prefix: '456351', name: '中国银行', nameEn: 'Bank of China', type: 'debit' },
  { prefix: '622588', name: '招商银行', nameEn: 'China Merchants Bank', type: 'debit' },
  { prefix: '621483', name: '招商银行', nameEn: 'China Merchants Bank', type: 'debit' },
  { prefix: '622260', name: '交通银行', nameEn: 'Bank of Communications', type: 'debit' },
  { prefix: '622262', name: '交通银行', nameEn: 'Bank of Communications', type: 'debit' },
  {
    prefix: '622188',
    name: '中国邮政储蓄银行',
    nameEn: 'Postal Savings Bank of China',
    type: 'debit',
  },
  // The sandbox's other cards: a bank of its own, so nobody mistakes them for a real one.
  { prefix: '620000', name: '沙箱银行', nameEn: 'Sandbox Bank', type: 'debit' },
  { prefix: '424242', name: '沙箱银行', nameEn: 'Sandbox Bank', type: 'credit' },
  { prefix: '555555', name: '沙箱银行', nameEn: 'Sandbox Bank', type: 'credit' },
  { prefix: '400000', name: '沙箱银行', nameEn: 'Sandbox Bank', type: 'credit' },
];

const tables = new WeakMap<readonly CardRange[], Map<string, CardIssuer>>();

/** The issuer of a card whose number (or masked number) starts with these six digits, if known. */
export function issuerOf(ranges: readonly CardRange[], card: string): CardIssuer | undefined {
  let table = tables.get(ranges);
  if (!table) {
    table = new Map(
      ranges.map((r) => [
        r.prefix,
        { name: r.name, type: r.type, ...(r.nameEn ? { nameEn: r.nameEn } : {}) },
      ]),
    );
    tables.set(ranges, table);
  }
  return table.get(card.slice(0, 6));
}
