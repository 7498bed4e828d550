import { closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import {
  detectBrand,
  maskPan,
  ChargeRequestSchema,
  RefundRequestSchema,
  VerificationRequestSchema,
  type Charge,
  type VerificationRequest,
  type ChargeRequest,
  type RefundRequest,
  validate,
} from 'cardpay';

/** Sandbox cards of PROTOCOL.md §8 and what they do. */
export const SANDBOX_CARDS = {
  approvedUnionPay19: '6222021000000000009',
  approvedUnionPay16: '6200000000000005',
  approvedVisa: '4242424242424242',
  approvedMastercard: '5555555555554444',
  declined: '4000000000000002',
  insufficientFunds: '4000000000009995',
  slow: '6222021000000000017',
  flaky: '6222021000000000025',
  /** Approved; every refund of it fails (`refund_failed`). */
  refundsFail: '4000000000005126',
} as const;

const DECLINES: Record<string, string> = {
  [SANDBOX_CARDS.declined]: 'card_declined',
  [SANDBOX_CARDS.insufficientFunds]: 'insufficient_funds',
};

export interface SandboxOptions {
  /** SQLite file of its own (beside the platform's), or `:memory:`. */
  db: string;
  /** How long the slow card's answer takes: longer than the trading platform waits. */
  slowDelayMs?: number;
  /**
   * How long every charge's answer takes (0 by default): a payment platform under load, for
   * tests of what happens while charges are in flight.
   */
  chargeDelayMs?: number;
  logger?: FastifyServerOptions['logger'];
}

const err = (code: string, message: string, retryable = false) => ({
  error: { code, message, retryable },
});

/**
 * The sandbox payment platform. It keeps only masked cards, never a full number or CVV, in a
 * store that outlives the process, as a real acquirer's records would.
 */
export async function buildSandbox(options: SandboxOptions): Promise<FastifyInstance> {
  // Its records are the payment platform's: readable by the platform's user alone (0600).
  if (options.db !== ':memory:' && !existsSync(options.db))
    closeSync(openSync(options.db, 'a', 0o600));
  const db = new Database(options.db);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE IF NOT EXISTS charges (
    charge_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, merchant_id TEXT NOT NULL, status TEXT NOT NULL,
    decline_code TEXT, amount INTEGER NOT NULL, discount TEXT NOT NULL, charged INTEGER NOT NULL,
    currency TEXT NOT NULL, card TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS charges_order ON charges (order_id);
    CREATE TABLE IF NOT EXISTS flaky_attempts (charge_id TEXT PRIMARY KEY);
    CREATE TABLE IF NOT EXISTS refund_refusing_charges (charge_id TEXT PRIMARY KEY);
    CREATE TABLE IF NOT EXISTS refunds (refund_id TEXT PRIMARY KEY, charge_id TEXT NOT NULL,
      amount INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, failure_code TEXT,
      created_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS refunds_charge ON refunds (charge_id);`);
  const insert = db.prepare(
    `INSERT INTO charges VALUES (@chargeId, @orderId, @merchantId, @status, @declineCode, @amount, @discount, @charged, @currency, @card, @createdAt)`,
  );
  // Rows as they are inserted: a charge just made is answered from what was written.
  const CHARGE = `SELECT charge_id AS chargeId, order_id AS orderId, merchant_id AS merchantId,
    status, decline_code AS declineCode, amount, discount, charged, currency, card,
    created_at AS createdAt FROM charges`;
  const byId = db.prepare(`${CHARGE} WHERE charge_id = ?`);
  const byOrder = db.prepare(`${CHARGE} WHERE order_id = ? ORDER BY created_at`);
  const firstFlaky = db.prepare('INSERT OR IGNORE INTO flaky_attempts VALUES (?)');
  const slowDelayMs = options.slowDelayMs ?? 5000;

  const view = (row: Record<string, unknown>): Charge => ({
    chargeId: row.chargeId as string,
    orderId: row.orderId as string,
    merchantId: row.merchantId as string,
    status: row.status as Charge['status'],
    ...(row.declineCode ? { declineCode: row.declineCode as string } : {}),
    amount: row.amount as number,
    discount: JSON.parse(row.discount as string),
    charged: row.charged as number,
    currency: row.currency as string,
    card: JSON.parse(row.card as string),
    createdAt: row.createdAt as string,
  });

  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 16 * 1024 });
  app.addHook('onClose', async () => db.close());

  app.post('/v1/charges', async (req, reply) => {
    const checked = validate<ChargeRequest>(ChargeRequestSchema, req.body);
    if (!checked.ok) return reply.code(400).send(err('invalid_request', checked.message));
    const c = checked.value;
    if (req.headers['idempotency-key'] !== c.chargeId) {
      return reply.code(400).send(err('invalid_request', 'Idempotency-Key must equal chargeId'));
    }
    if (c.charged !== c.amount - c.discount.amountOff) {
      return reply
        .code(400)
        .send(err('invalid_request', 'charged must equal amount - discount.amountOff'));
    }
    const existing = byId.get(c.chargeId) as Record<string, unknown> | undefined;
    if (existing) return reply.code(200).send(view(existing));
    if (c.pan === SANDBOX_CARDS.flaky && firstFlaky.run(c.chargeId).changes === 1) {
      return reply
        .code(503)
        .send(err('unavailable', 'the issuer did not answer; retry with the same key', true));
    }
    const declineCode = c.cvv === '999' ? 'incorrect_cvc' : DECLINES[c.pan];
    const row = {
      chargeId: c.chargeId,
      orderId: c.orderId,
      merchantId: c.merchantId,
      status: declineCode ? 'declined' : 'succeeded',
      declineCode: declineCode ?? null,
      amount: c.amount,
      discount: JSON.stringify(c.discount),
      charged: c.charged,
      currency: c.currency,
      card: JSON.stringify({
        brand: detectBrand(c.pan),
        last4: c.pan.slice(-4),
        masked: maskPan(c.pan),
      }),
      createdAt: new Date().toISOString(),
    };
    insert.run(row);
    if (c.pan === SANDBOX_CARDS.refundsFail)
      db.prepare('INSERT OR IGNORE INTO refund_refusing_charges VALUES (?)').run(c.chargeId);
    // The slow card is charged at once, but the answer arrives after the caller stopped waiting.
    if (c.pan === SANDBOX_CARDS.slow) await new Promise((r) => setTimeout(r, slowDelayMs));
    else if (options.chargeDelayMs) await new Promise((r) => setTimeout(r, options.chargeDelayMs));
    return reply.code(201).send(view(row));
  });

  // CVV checks without a charge (§8): the same answer to a retry under the same key. Nothing of
  // the card is kept but whether its check passed.
  db.exec(`CREATE TABLE IF NOT EXISTS verifications (verification_id TEXT PRIMARY KEY,
    status TEXT NOT NULL, decline_code TEXT, created_at TEXT NOT NULL)`);
  const verificationById = db.prepare('SELECT * FROM verifications WHERE verification_id = ?');
  const insertVerification = db.prepare(
    'INSERT OR IGNORE INTO verifications VALUES (@verificationId, @status, @declineCode, @createdAt)',
  );
  app.post('/v1/verifications', async (req, reply) => {
    const checked = validate<VerificationRequest>(VerificationRequestSchema, req.body);
    if (!checked.ok) return reply.code(400).send(err('invalid_request', checked.message));
    const v = checked.value;
    if (req.headers['idempotency-key'] !== v.verificationId)
      return reply
        .code(400)
        .send(err('invalid_request', 'Idempotency-Key must equal verificationId'));
    const declineCode = v.cvv === '999' ? 'incorrect_cvc' : null;
    insertVerification.run({
      verificationId: v.verificationId,
      status: declineCode ? 'declined' : 'verified',
      declineCode,
      createdAt: new Date().toISOString(),
    });
    const row = verificationById.get(v.verificationId) as Record<string, unknown>;
    return reply.code(201).send({
      verificationId: row.verification_id,
      status: row.status,
      ...(row.decline_code ? { declineCode: row.decline_code } : {}),
    });
  });

  const refundById = db.prepare('SELECT * FROM refunds WHERE refund_id = ?');
  const refundedOf = db.prepare(
    "SELECT COALESCE(SUM(amount), 0) AS n FROM refunds WHERE charge_id = ? AND status = 'succeeded'",
  );
  const refusesRefunds = db.prepare('SELECT 1 FROM refund_refusing_charges WHERE charge_id = ?');
  const insertRefund = db.prepare(
    'INSERT INTO refunds VALUES (@refundId, @chargeId, @amount, @currency, @status, @failureCode, @createdAt)',
  );
  const refundView = (row: Record<string, unknown>) => ({
    refundId: row.refund_id as string,
    chargeId: row.charge_id as string,
    amount: row.amount as number,
    currency: row.currency as string,
    status: row.status as 'succeeded' | 'failed',
    ...(row.failure_code ? { failureCode: row.failure_code as string } : {}),
  });

  app.post('/v1/refunds', async (req, reply) => {
    const checked = validate<RefundRequest>(RefundRequestSchema, req.body);
    if (!checked.ok) return reply.code(400).send(err('invalid_request', checked.message));
    const r = checked.value;
    if (req.headers['idempotency-key'] !== r.refundId)
      return reply.code(400).send(err('invalid_request', 'Idempotency-Key must equal refundId'));
    const existing = refundById.get(r.refundId) as Record<string, unknown> | undefined;
    if (existing) return reply.code(200).send(refundView(existing));
    const charge = byId.get(r.chargeId) as Record<string, unknown> | undefined;
    if (!charge || charge.status !== 'succeeded')
      return reply.code(404).send(err('not_found', 'no succeeded charge with that id'));
    if (r.currency !== charge.currency)
      return reply.code(400).send(err('invalid_request', 'currency differs from the charge'));
    const left = (charge.charged as number) - (refundedOf.get(r.chargeId) as { n: number }).n;
    if (r.amount > left)
      return reply
        .code(422)
        .send(err('refund_exceeds_charge', `at most ${left} is left of the charge`));
    const refused = !!refusesRefunds.get(r.chargeId);
    insertRefund.run({
      ...r,
      status: refused ? 'failed' : 'succeeded',
      failureCode: refused ? 'refund_failed' : null,
      createdAt: new Date().toISOString(),
    });
    return reply.code(201).send(refundView(refundById.get(r.refundId) as Record<string, unknown>));
  });

  app.get('/v1/refunds/:refundId', async (req, reply) => {
    const row = refundById.get((req.params as { refundId: string }).refundId) as
      Record<string, unknown> | undefined;
    if (!row) return reply.code(404).send(err('not_found', 'no such refund'));
    return refundView(row);
  });

  app.get('/v1/charges/:chargeId', async (req, reply) => {
    const row = byId.get((req.params as { chargeId: string }).chargeId) as
      Record<string, unknown> | undefined;
    if (!row) return reply.code(404).send(err('not_found', 'no such charge'));
    return view(row);
  });

  app.get('/v1/charges', async (req, reply) => {
    const orderId = (req.query as { orderId?: string }).orderId;
    if (!orderId) return reply.code(400).send(err('invalid_request', 'orderId is required'));
    return { charges: (byOrder.all(orderId) as Record<string, unknown>[]).map(view) };
  });

  return app;
}
