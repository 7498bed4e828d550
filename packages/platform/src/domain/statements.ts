import type { Ctx } from './context';
import type { StatementRow } from '../store/types';

// Daily statements (PROTOCOL.md §7.4): a merchant's decided payments and refunds of one day in the
// platform's statement time zone, as RFC 4180 CSV, with one total row per currency. Read from
// the database a page at a time and written as it is read, so a day of a hundred thousand lines
// costs the memory of one page.

export const STATEMENT_HEADER =
  'time,type,orderRef,merchantOrderId,paymentId,refundId,currency,amount,discount,charged,cardBrand,cardLast4,status';

const PAGE = 1000;

const formats = new Map<string, Intl.DateTimeFormat>();
function format(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formats.set(zone, f);
  }
  return f;
}

const offsets = new Map<string, number>();
const HOUR = 3600000;

/**
 * How far `zone`'s wall clock is ahead of UTC at `instant`, in ms. Zones change their offset on
 * the hour (or half-hour) at most: kept per quarter-hour, so a statement of a hundred thousand
 * lines asks Intl a few times instead of once a line.
 */
function offsetAt(zone: string, instant: number): number {
  const key = `${zone}\n${Math.floor(instant / (HOUR / 4))}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    if (offsets.size > 10000) offsets.clear();
    offset = exactOffsetAt(zone, Math.floor(instant / (HOUR / 4)) * (HOUR / 4));
    offsets.set(key, offset);
  }
  return offset;
}

function exactOffsetAt(zone: string, instant: number): number {
  const parts: Record<string, number> = {};
  for (const p of format(zone).formatToParts(new Date(instant)))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = Date.UTC(
    parts.year,
    parts.month - 1,
    parts.day,
    parts.hour,
    parts.minute,
    parts.second,
  );
  return wall - Math.floor(instant / 1000) * 1000;
}

/** The instant the day `date` (YYYY-MM-DD) begins in `zone`. */
function startOfDay(date: string, zone: string): number {
  const [y, m, d] = date.split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d);
  // Twice: the offset at the first guess may differ from the one at midnight (a DST change).
  const first = wall - offsetAt(zone, wall);
  return wall - offsetAt(zone, first);
}

/** The day's bounds `[from, to)` in `zone`, or undefined for a date that does not exist. */
export function dayBounds(date: string, zone: string): { from: number; to: number } | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const probe = new Date(Date.UTC(y, mo - 1, d));
  if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d)
    return undefined;
  const next = new Date(Date.UTC(y, mo - 1, d + 1)).toISOString().slice(0, 10);
  return { from: startOfDay(date, zone), to: startOfDay(next, zone) };
}

/** An instant as ISO 8601 in `zone`, with its offset: 2026-12-05T09:30:00.000+08:00. */
export function zonedTime(instant: number, zone: string): string {
  const offset = offsetAt(zone, instant);
  const local = new Date(instant + offset).toISOString().slice(0, 23);
  const sign = offset < 0 ? '-' : '+';
  const minutes = Math.abs(offset) / 60000;
  const hh = String(Math.floor(minutes / 60)).padStart(2, '0');
  const mm = String(minutes % 60).padStart(2, '0');
  return `${local}${sign}${hh}:${mm}`;
}

/** One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. */
function field(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function line(values: (string | number | null)[]): string {
  return `${values.map(field).join(',')}\r\n`;
}

interface Totals {
  amount: number;
  discount: number;
  charged: number;
}

/**
 * The statement's lines, header first and the totals last: what the payment platform recorded as
 * moved (succeeded payments, less succeeded refunds) per currency; declined payments and failed
 * refunds are listed with their status and move nothing.
 */
export async function* statementLines(
  ctx: Ctx,
  merchantId: string,
  bounds: { from: number; to: number },
): AsyncGenerator<string> {
  const zone = ctx.config.statementTimeZone;
  yield `${STATEMENT_HEADER}\r\n`;
  const totals = new Map<string, Totals>();
  let after: { at: number; id: string } | undefined;
  for (;;) {
    const page: StatementRow[] = await ctx.store.statementPage(
      merchantId,
      bounds.from,
      bounds.to,
      after,
      PAGE,
    );
    let chunk = '';
    for (const r of page) {
      chunk += line([
        zonedTime(r.at, zone),
        r.type,
        r.orderRef,
        r.merchantOrderId,
        r.paymentId,
        r.refundId,
        r.currency,
        r.amount,
        r.discount,
        r.charged,
        r.cardBrand,
        r.cardLast4,
        r.status,
      ]);
      if (r.status === 'succeeded') {
        const t = totals.get(r.currency) ?? { amount: 0, discount: 0, charged: 0 };
        t.amount += r.amount;
        t.discount += r.discount;
        t.charged += r.charged;
        totals.set(r.currency, t);
      }
    }
    if (chunk) yield chunk;
    if (page.length < PAGE) break;
    const last = page[page.length - 1];
    after = { at: last.at, id: last.id };
  }
  for (const [currency, t] of [...totals.entries()].sort(([a], [b]) => a.localeCompare(b)))
    yield line([
      '',
      'total',
      null,
      null,
      null,
      null,
      currency,
      t.amount,
      t.discount,
      t.charged,
      null,
      null,
      null,
    ]);
}
