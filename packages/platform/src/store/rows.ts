// How rows cross between the stores and the domain: snake_case columns, camelCase fields, JSON
// and boolean columns stored as text and integers, so both stores keep the same column types.
// Column names are few and fixed: convert each once, not on every row.
const names = new Map<string, string>();
function memo(s: string, convert: (s: string) => string): string {
  let out = names.get(s);
  if (out === undefined) names.set(s, (out = convert(s)));
  return out;
}
const SNAKE = (s: string) =>
  memo(`>${s}`, (x) => x.slice(1).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
const CAMEL = (s: string) =>
  memo(`<${s}`, (x) => x.slice(1).replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
const JSON_COLUMNS = new Set(['methods', 'mandatory', 'error']);
const BOOLEAN_COLUMNS = new Set(['cvvGiven']);

/** A column's value as the domain's field: JSON parsed, 0/1 as a boolean. */
function fieldValue(kind: number, v: unknown): unknown {
  if (kind === JSON_FIELD) return typeof v === 'string' ? JSON.parse(v) : v;
  if (kind === BOOLEAN_FIELD) return v === 1;
  return v;
}
const PLAIN = 0;
const JSON_FIELD = 1;
const BOOLEAN_FIELD = 2;
const kindOf = (field: string) =>
  JSON_COLUMNS.has(field) ? JSON_FIELD : BOOLEAN_COLUMNS.has(field) ? BOOLEAN_FIELD : PLAIN;

export function toRow<T>(record: Record<string, unknown> | undefined): T | undefined {
  if (!record) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    const key = CAMEL(k);
    out[key] = fieldValue(kindOf(key), v);
  }
  return out as T;
}

/**
 * Reads rows given as arrays of values in the order of `columns`, for a statement that always
 * returns the same columns: the names are converted once, here, not once per row.
 */
export function rowReader(columns: string[]): (values: unknown[]) => Record<string, unknown> {
  const keys = columns.map(CAMEL);
  const kinds = keys.map(kindOf);
  return (values) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) out[keys[i]] = fieldValue(kinds[i], values[i]);
    return out;
  };
}

/** The column that holds a domain field. */
export const columnName = SNAKE;

/** A domain field's value as stored: JSON as text, booleans as 0/1. */
export function columnValue(field: string, v: unknown): unknown {
  if (JSON_COLUMNS.has(field) && v !== null && v !== undefined) return JSON.stringify(v);
  return typeof v === 'boolean' ? Number(v) : v;
}

export function toColumns(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) out[SNAKE(k)] = columnValue(k, v);
  return out;
}

/**
 * Sets every terminal's running loyalty history from its payments and refunds: the migration that
 * brought the running total in, the same SQL on both stores.
 */
export const HISTORY_FROM_PAYMENTS = `UPDATE terminals SET history_total =
  (SELECT COALESCE(SUM(charged), 0) FROM payments WHERE terminal_id = terminals.id AND status = 'succeeded')
  - (SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE terminal_id = terminals.id AND status = 'succeeded')`;

/**
 * The loyalty history per terminal and currency (PROTOCOL.md §6), from the payments and refunds
 * themselves: what the per-currency table starts from when a database moves to it.
 */
export const HISTORY_BY_CURRENCY = `INSERT INTO terminal_history (terminal_id, currency, total)
  SELECT terminal_id, currency, SUM(total) FROM (
    SELECT terminal_id, currency, charged AS total FROM payments WHERE status = 'succeeded'
    UNION ALL
    SELECT terminal_id, currency, -amount AS total FROM refunds WHERE status = 'succeeded') AS moves
  GROUP BY terminal_id, currency`;

/** The order listing's one query, for either store's placeholders. */
export function orderQuerySql(
  q: {
    merchantId: string;
    status?: string;
    from?: string;
    to?: string;
    before?: { createdAt: string; orderRef: string };
    merchantOrderId?: string;
    limit: number;
  },
  placeholder: () => string,
): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: (p: () => string) => string, ...values: unknown[]) => {
    where.push(clause(placeholder));
    params.push(...values);
  };
  add((p) => `merchant_id = ${p()}`, q.merchantId);
  if (q.status) add((p) => `status = ${p()}`, q.status);
  if (q.merchantOrderId) add((p) => `merchant_order_id = ${p()}`, q.merchantOrderId);
  if (q.from) add((p) => `created_at >= ${p()}`, q.from);
  if (q.to) add((p) => `created_at < ${p()}`, q.to);
  if (q.before)
    add(
      (p) => `(created_at < ${p()} OR (created_at = ${p()} AND order_ref < ${p()}))`,
      q.before.createdAt,
      q.before.createdAt,
      q.before.orderRef,
    );
  const limit = placeholder();
  params.push(q.limit);
  return {
    sql: `SELECT * FROM merchant_orders WHERE ${where.join(' AND ')} ORDER BY created_at DESC, order_ref DESC LIMIT ${limit}`,
    params,
  };
}

/** The table of CVV checks (a password reset's, PROTOCOL.md §5.7), with `INTEGER` or `BIGINT` times. */
export const cardChecksTable = (time: 'INTEGER' | 'BIGINT') =>
  `CREATE TABLE card_checks (id TEXT PRIMARY KEY, terminal_id TEXT NOT NULL, card_hash TEXT NOT NULL,
     status TEXT NOT NULL, created_at ${time} NOT NULL);
   CREATE INDEX card_checks_card ON card_checks (card_hash, created_at);
   CREATE INDEX card_checks_terminal ON card_checks (terminal_id, created_at)`;

/**
 * A terminal's identity in WeChat (PROTOCOL.md §2.1): its host app, its openid there (sealed),
 * and a keyed hash of its openpid, by which the terminals of one shopper in one app are found.
 */
export const TERMINAL_IDENTITY = `ALTER TABLE terminals ADD COLUMN host_app_id TEXT;
   ALTER TABLE terminals ADD COLUMN openid_sealed TEXT;
   ALTER TABLE terminals ADD COLUMN openpid_hash TEXT;
   CREATE INDEX terminals_openpid ON terminals (openpid_hash)`;

/**
 * The terminals of the same shopper in the same app as the terminal `?` names: itself, and those
 * with its openpid. `$n` placeholders are rewritten for SQLite by the caller. Two lookups, each
 * by its own index (an OR of the two would be one scan of the table where the plan says so).
 */
export const SAME_SHOPPER = (t: string) =>
  `(SELECT ${t} UNION SELECT id FROM terminals
     WHERE openpid_hash = (SELECT openpid_hash FROM terminals WHERE id = ${t}))`;

/**
 * A payment made forgets the terminal's failed authentications. Most terminals have none: then
 * the row is left as it is (one row version fewer per checkout on PostgreSQL).
 */
export const clearAuthFailures = (t: string) =>
  `UPDATE terminals SET auth_failures = 0 WHERE id = ${t} AND auth_failures <> 0`;

/**
 * One failed authentication counted, and judged in the same statement: at `max` the terminal
 * locks and the count restarts. With a lease (`lease` not NULL), only while that lease is held,
 * which it ends; without (a password reset's card check), the lease is left as it is.
 */
export const authFailureSql = (id: string, max: string, lockUntil: string, lease: string) =>
  `UPDATE terminals SET
     auth_lease_until = CASE WHEN ${lease} IS NULL THEN auth_lease_until ELSE 0 END,
     locked_until = CASE WHEN auth_failures + 1 >= ${max} THEN ${lockUntil} ELSE locked_until END,
     auth_failures = CASE WHEN auth_failures + 1 >= ${max} THEN 0 ELSE auth_failures + 1 END
   WHERE id = ${id} AND (${lease} IS NULL OR auth_lease_until = ${lease})`;

/** The lease taken until `lease` given back, if it is still held (a lease's `until` is its own). */
export const releaseLeaseSql = (id: string, lease: string) =>
  `UPDATE terminals SET auth_lease_until = 0 WHERE id = ${id} AND auth_lease_until = ${lease}`;

/** Delivery attempts of events, and when a refund was decided (PROTOCOL.md §7.3, §7.4). */
export const deliveriesAndStatements = (time: 'INTEGER' | 'BIGINT', msOfIso: string) =>
  `CREATE TABLE event_deliveries (event_id TEXT NOT NULL, at ${time} NOT NULL, status INTEGER,
     error TEXT, ms INTEGER NOT NULL);
   CREATE INDEX event_deliveries_event ON event_deliveries (event_id, at);
   ALTER TABLE refunds ADD COLUMN decided_at ${time};
   UPDATE refunds SET decided_at = ${msOfIso} WHERE status <> 'pending';
   CREATE INDEX payments_statement ON payments (merchant_id, decided_at);
   CREATE INDEX refunds_statement ON refunds (merchant_id, decided_at)`;

/** A statement page's query; `$n` placeholders (SQLite's are rewritten by the caller). */
export const STATEMENT_PAGE = `SELECT * FROM (
    SELECT 'payment' AS type, p.decided_at AS at, p.id AS id, p.order_ref AS order_ref,
      o.merchant_order_id AS merchant_order_id, p.id AS payment_id, NULL AS refund_id,
      p.currency AS currency, p.amount AS amount, p.amount_off AS discount, p.charged AS charged,
      p.card_brand AS card_brand, p.card_last4 AS card_last4, p.status AS status
    FROM payments p LEFT JOIN merchant_orders o ON o.order_ref = p.order_ref
    WHERE p.merchant_id = $1 AND p.decided_at >= $2 AND p.decided_at < $3 AND p.status <> 'pending'
    UNION ALL
    SELECT 'refund', r.decided_at, r.id, r.order_ref, o.merchant_order_id, r.payment_id, r.id,
      r.currency, -r.amount, 0, -r.amount, p.card_brand, p.card_last4, r.status
    FROM refunds r JOIN payments p ON p.id = r.payment_id
      LEFT JOIN merchant_orders o ON o.order_ref = r.order_ref
    WHERE r.merchant_id = $1 AND r.decided_at >= $2 AND r.decided_at < $3 AND r.status <> 'pending'
  ) AS lines
  WHERE at > $4 OR (at = $4 AND id > $5)
  ORDER BY at, id LIMIT $6`;

/** A day's figures per currency: decided payments, what succeeded ones charged, refunds. */
export const DAY_FIGURES = `SELECT currency, SUM(payments) AS payments, SUM(succeeded) AS succeeded,
    SUM(charged) AS charged, SUM(refunded) AS refunded FROM (
    SELECT currency, 1 AS payments, CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END AS succeeded,
      CASE WHEN status = 'succeeded' THEN charged ELSE 0 END AS charged, 0 AS refunded
    FROM payments WHERE merchant_id = $1 AND decided_at >= $2 AND decided_at < $3 AND status <> 'pending'
    UNION ALL
    SELECT currency, 0, 0, 0, amount FROM refunds
    WHERE merchant_id = $1 AND decided_at >= $2 AND decided_at < $3 AND status = 'succeeded'
  ) AS lines GROUP BY currency ORDER BY currency`;

/** How long both stores keep what `prune` deletes by age alone (ms). */
export const KEPT_MS = {
  rateLimits: 3600000,
  cardChecks: 2 * 86400000,
  eventDeliveries: 30 * 86400000,
};
