// The money invariants of a chaos run, read from the trading platform's database and checked
// against the payment platform's own records (its charges and refunds tables).
import Database from 'better-sqlite3';
import { Client, types } from 'pg';
import { defaultConfig, discountFor } from '../../packages/platform/src/infra/config';

export interface Violation {
  rule: string;
  detail: string;
}

type Row = Record<string, any>;

// 64-bit integers (counts, times in ms) as numbers, as the platform's own store reads them.
types.setTypeParser(20, (v) => Number(v));

/** Rows of a SQLite file or a PostgreSQL database (a `postgres://` URL). */
async function read(db: string, sql: string): Promise<Row[]> {
  if (/^postgres(ql)?:\/\//.test(db)) {
    const client = new Client({ connectionString: db });
    await client.connect();
    try {
      return (await client.query(sql)).rows as Row[];
    } finally {
      await client.end();
    }
  }
  const file = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return file.prepare(sql).all() as Row[];
  } finally {
    file.close();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits until nothing is left in flight: no payment or refund pending, no session processing,
 * no notification still to deliver. Gives up after `timeoutMs` (the invariants then name what
 * was left).
 */
export async function waitSettled(platformDb: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [left] = await read(
      platformDb,
      `SELECT (SELECT COUNT(*) FROM payments WHERE status = 'pending')
            + (SELECT COUNT(*) FROM refunds WHERE status = 'pending')
            + (SELECT COUNT(*) FROM sessions WHERE state = 'processing')
            + (SELECT COUNT(*) FROM events WHERE delivery = 'pending') AS n`,
    );
    if (Number(left.n) === 0) return;
    await sleep(250);
  }
}

export interface InvariantInput {
  platformDb: string;
  paymentDb: string;
  clients: { state: string; sessionId?: string; job: { orderRef?: string } }[];
  received: Set<string>;
}

export async function checkInvariants(input: InvariantInput): Promise<{
  violations: Violation[];
  records: { charges: number; refunds: number; sessions: number; payments: number; events: number };
}> {
  const violations: Violation[] = [];
  const add = (rule: string, detail: string) => violations.push({ rule, detail });

  const sessions = await read(input.platformDb, 'SELECT * FROM sessions');
  const payments = await read(input.platformDb, 'SELECT * FROM payments');
  const refunds = await read(input.platformDb, 'SELECT * FROM refunds');
  const orders = await read(input.platformDb, 'SELECT * FROM merchant_orders');
  const events = await read(
    input.platformDb,
    'SELECT id, type, created_at, body, delivery FROM events',
  );
  const charges = await read(input.paymentDb, 'SELECT * FROM charges');
  const ppRefunds = await read(input.paymentDb, 'SELECT * FROM refunds');

  const sessionById = new Map(sessions.map((s) => [s.id, s]));
  const paymentByCharge = new Map(payments.map((p) => [p.charge_id, p]));
  const succeededCharges = charges.filter((c) => c.status === 'succeeded');
  const chargesByChargeId = new Map<string, Row[]>();
  for (const c of succeededCharges)
    chargesByChargeId.set(c.charge_id, [...(chargesByChargeId.get(c.charge_id) ?? []), c]);

  // 1. No merchant order charged twice.
  const chargedOrders = new Map<string, number>();
  for (const c of succeededCharges) {
    const p = paymentByCharge.get(c.charge_id);
    if (p?.order_ref) chargedOrders.set(p.order_ref, (chargedOrders.get(p.order_ref) ?? 0) + 1);
  }
  for (const [ref, n] of chargedOrders)
    if (n > 1) add('order charged twice', `${ref}: ${n} charges at the payment platform`);

  // 2. No charge without a session that ended succeeded (and a payment that says what it charged).
  for (const c of succeededCharges) {
    const p = paymentByCharge.get(c.charge_id);
    const s = p && sessionById.get(p.session_id);
    if (!p || p.status !== 'succeeded' || s?.state !== 'succeeded')
      add(
        'charge without a succeeded session',
        `${c.charge_id}: payment ${p?.status ?? 'missing'}, session ${s?.state ?? 'missing'}`,
      );
    else if (p.charged !== c.charged || p.amount !== c.amount)
      add(
        'charge differs from its payment',
        `${c.charge_id}: ${c.charged} charged, payment says ${p.charged}`,
      );
  }

  // 3. No succeeded session without exactly one charge.
  for (const s of sessions.filter((x) => x.state === 'succeeded')) {
    const p = payments.find((x) => x.id === s.payment_id);
    const n = p ? (chargesByChargeId.get(p.charge_id)?.length ?? 0) : 0;
    if (n !== 1) add('succeeded without exactly one charge', `session ${s.id}: ${n} charges`);
  }

  // 4, 5. Every session final or due to expire; nothing left processing.
  const live = ['awaiting_order', 'awaiting_confirmation', 'awaiting_authentication'];
  const final = ['succeeded', 'failed', 'cancelled', 'expired'];
  for (const s of sessions) {
    if (final.includes(s.state)) continue;
    if (!live.includes(s.state) || !(s.expires_at > 0))
      add('session neither final nor expiring', `${s.id}: ${s.state}`);
  }
  for (const p of payments.filter((x) => x.status === 'pending'))
    add('payment still processing', `${p.id} (charge ${p.charge_id})`);

  // 6. Every discount matches the terminal's history when it was computed. A decision's time is
  // its event's; one made within a few milliseconds of the payment may or may not have counted.
  const decided = new Map<string, number>();
  for (const e of events) {
    const data = JSON.parse(e.body).data;
    const at = Date.parse(e.created_at);
    // An open amount's event carries the payment; a merchant order's, the order with its payment.
    const payment = data.payment ?? data.order?.payment;
    if (e.type === 'payment.succeeded') decided.set(`p:${payment.paymentId}`, at);
    if (e.type === 'refund.succeeded') decided.set(`r:${data.refund.refundId}`, at);
  }
  const rangesOf = defaultConfig().discounts;
  // History is kept per terminal and currency (PROTOCOL.md §6).
  const byTerminal = new Map<string, { at: number; delta: number }[]>();
  const push = (t: string, at: number | undefined, delta: number) => {
    if (at === undefined) return;
    byTerminal.set(t, [...(byTerminal.get(t) ?? []), { at, delta }]);
  };
  for (const p of payments.filter((x) => x.status === 'succeeded'))
    push(`${p.terminal_id} ${p.currency}`, decided.get(`p:${p.id}`), p.charged);
  for (const r of refunds.filter((x) => x.status === 'succeeded'))
    push(`${r.terminal_id} ${r.currency}`, decided.get(`r:${r.id}`), -r.amount);
  for (const p of payments) {
    const steps = (byTerminal.get(`${p.terminal_id} ${p.currency}`) ?? []).sort(
      (a, b) => a.at - b.at,
    );
    const ranges = rangesOf[p.currency] ?? [];
    const margin = 50;
    const history = (t: number) => steps.filter((x) => x.at <= t).reduce((s, x) => s + x.delta, 0);
    const moments = [
      p.created_at - margin,
      p.created_at + margin,
      ...steps.filter((x) => Math.abs(x.at - p.created_at) <= margin).map((x) => x.at),
    ];
    const allowed = new Set(moments.map((t) => discountFor(history(t), p.amount, ranges).rateBps));
    if (!allowed.has(p.rate_bps))
      add(
        'discount not from the history',
        `${p.id}: ${p.rate_bps} bps, history allows ${[...allowed].join('/')}`,
      );
    if (
      p.amount_off !== Math.floor((p.amount * p.rate_bps) / 10000) ||
      p.charged !== p.amount - p.amount_off
    )
      add('discount arithmetic', `${p.id}: ${p.amount} - ${p.amount_off} != ${p.charged}`);
  }

  // 7. Refunds never exceed charges, at the payment platform or on the platform's books, and the
  // two agree on every refund that succeeded.
  const ppRefunded = new Map<string, number>();
  for (const r of ppRefunds.filter((x) => x.status === 'succeeded'))
    ppRefunded.set(r.charge_id, (ppRefunded.get(r.charge_id) ?? 0) + r.amount);
  for (const [chargeId, n] of ppRefunded) {
    const c = succeededCharges.find((x) => x.charge_id === chargeId);
    if (!c || n > c.charged)
      add('refunds exceed the charge', `${chargeId}: ${n} of ${c?.charged ?? 0}`);
  }
  const ppRefundById = new Map(ppRefunds.map((r) => [r.refund_id, r]));
  for (const r of refunds) {
    const pp = ppRefundById.get(r.id);
    if (r.status === 'pending') add('refund still pending', r.id);
    if (r.status === 'succeeded' && pp?.status !== 'succeeded')
      add('refund succeeded without the payment platform', `${r.id}: ${pp?.status ?? 'missing'}`);
    if (r.status !== 'succeeded' && pp?.status === 'succeeded')
      add('refund made but not on the books', `${r.id}: platform says ${r.status}`);
  }
  const refundedOf = new Map<string, number>();
  for (const r of refunds.filter((x) => x.status === 'succeeded'))
    refundedOf.set(r.payment_id, (refundedOf.get(r.payment_id) ?? 0) + r.amount);
  for (const [paymentId, n] of refundedOf) {
    const p = payments.find((x) => x.id === paymentId);
    if (!p || n > p.charged)
      add('refunds exceed the payment', `${paymentId}: ${n} of ${p?.charged}`);
  }

  // 8. Merchant orders agree with their payments.
  for (const o of orders) {
    const paid = payments.filter((p) => p.order_ref === o.order_ref && p.status === 'succeeded');
    const settled = ['paid', 'partially_refunded', 'refunded'].includes(o.status);
    if (paid.length > 1) add('order paid twice', `${o.order_ref}: ${paid.length} payments`);
    if (settled !== (paid.length === 1) || (settled && o.payment_id !== paid[0]?.id))
      add(
        'order status differs from its payments',
        `${o.order_ref}: ${o.status}, ${paid.length} paid`,
      );
  }

  // 9. What a shopper was shown agrees with the books.
  for (const c of input.clients) {
    const s = c.sessionId ? sessionById.get(c.sessionId) : undefined;
    if (c.state === 'succeeded' && s?.state !== 'succeeded')
      add(
        'shopper shown a success that did not happen',
        `${c.sessionId}: ${s?.state ?? 'missing'}`,
      );
    if (c.state === 'failed' && s?.state === 'succeeded')
      add('shopper shown a failure of a payment made', `${c.sessionId}`);
  }

  // 10. No notification lost: each one is delivered, and the receiver has it.
  for (const e of events) {
    if (e.delivery === 'none') continue;
    if (e.delivery !== 'delivered' || !input.received.has(e.id))
      add('notification not delivered', `${e.id} (${e.type}): ${e.delivery}`);
  }

  return {
    violations,
    records: {
      charges: charges.length,
      refunds: ppRefunds.length,
      sessions: sessions.length,
      payments: payments.length,
      events: events.length,
    },
  };
}
