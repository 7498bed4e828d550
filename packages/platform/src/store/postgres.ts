import { Pool, types, type PoolClient, type QueryResultRow, type Submittable } from 'pg';
import {
  HISTORY_BY_CURRENCY,
  cardChecksTable,
  SAME_SHOPPER,
  clearAuthFailures,
  authFailureSql,
  releaseLeaseSql,
  STATEMENT_PAGE,
  DAY_FIGURES,
  deliveriesAndStatements,
  TERMINAL_IDENTITY,
  HISTORY_FROM_PAYMENTS,
  orderQuerySql,
  toColumns,
  toRow,
  KEPT_MS,
} from './rows';
import {
  StoreError,
  StoreUnavailable,
  type AuthLease,
  type DatabaseWait,
  type BeginWithRead,
  type IdempotencyBegin,
  type LegacyIdempotency,
  type MerchantOrderRow,
  type OrderQuery,
  type ReadWithBegin,
  type RequestBegin,
  type RefundRow,
  type EventRow,
  type DeliveryRow,
  type StatementRow,
  type PaymentRow,
  type SessionFacts,
  type SessionFactsWanted,
  type SessionRow,
  type SessionWith,
  type Store,
  type TerminalRow,
  type Write,
} from './types';

// The store for several platform instances on one PostgreSQL database. Same tables and column
// types as the SQLite store (times in epoch milliseconds, JSON as text), the same one-transaction
// `commit`, and every cross-instance rule decided by the database: conditional updates take the
// row's lock, so of two instances racing for a session, a claim or a lease exactly one wins.

/** Migrations, applied in order under an advisory lock: several instances may start at once. */
const MIGRATIONS: string[] = [
  `CREATE TABLE terminals (
     id TEXT PRIMARY KEY, secret_sealed TEXT NOT NULL, pin_key_sealed TEXT NOT NULL, salt TEXT NOT NULL,
     iterations BIGINT NOT NULL, biometric_scheme TEXT, biometric_public_key TEXT, device_label TEXT,
     created_at TEXT NOT NULL, auth_failures BIGINT NOT NULL DEFAULT 0, locked_until BIGINT NOT NULL DEFAULT 0,
     auth_lease_until BIGINT NOT NULL DEFAULT 0);
   CREATE TABLE nonces (terminal_id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at BIGINT NOT NULL,
     PRIMARY KEY (terminal_id, nonce));
   CREATE INDEX nonces_expiry ON nonces (expires_at);
   CREATE TABLE idempotency (terminal_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
     status BIGINT, body TEXT, expires_at BIGINT NOT NULL, PRIMARY KEY (terminal_id, key));
   CREATE TABLE merchant_orders (order_ref TEXT PRIMARY KEY, merchant_id TEXT NOT NULL,
     merchant_order_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL, description TEXT,
     status TEXT NOT NULL, created_at TEXT NOT NULL, payment_id TEXT, claim_payment_id TEXT,
     UNIQUE (merchant_id, merchant_order_id));
   CREATE TABLE sessions (id TEXT PRIMARY KEY, terminal_id TEXT NOT NULL, merchant_id TEXT NOT NULL,
     order_ref TEXT, state TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
     order_id TEXT UNIQUE, amount BIGINT, currency TEXT, description TEXT, card_brand TEXT, card_last4 TEXT,
     card_masked TEXT, pan_sealed TEXT, card_hash TEXT, confirm_token TEXT, challenge TEXT, methods TEXT,
     required BIGINT, mandatory TEXT, payment_id TEXT, error TEXT, version BIGINT NOT NULL);
   CREATE INDEX sessions_open ON sessions (state, expires_at);
   CREATE TABLE payments (id TEXT PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, terminal_id TEXT NOT NULL,
     merchant_id TEXT NOT NULL, order_id TEXT NOT NULL UNIQUE, order_ref TEXT, amount BIGINT NOT NULL,
     rate_bps BIGINT NOT NULL, amount_off BIGINT NOT NULL, charged BIGINT NOT NULL, currency TEXT NOT NULL,
     status TEXT NOT NULL, charge_id TEXT NOT NULL UNIQUE, decline_code TEXT, card_hash TEXT,
     cvv_given INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, next_check_at BIGINT,
     checks BIGINT NOT NULL DEFAULT 0, version BIGINT NOT NULL);
   CREATE INDEX payments_terminal ON payments (terminal_id, status, created_at);
   CREATE INDEX payments_card ON payments (card_hash, status, created_at);
   CREATE INDEX payments_due ON payments (status, next_check_at);
   CREATE TABLE card_bindings (terminal_id TEXT NOT NULL, card_hash TEXT NOT NULL,
     created_at BIGINT NOT NULL, PRIMARY KEY (terminal_id, card_hash));
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE rate_limits (key TEXT NOT NULL, window_start BIGINT NOT NULL, hits BIGINT NOT NULL,
     PRIMARY KEY (key, window_start));`,
  // 2: refunds, and what of each payment is set aside for them.
  `ALTER TABLE merchant_orders ADD COLUMN refund_reserved BIGINT NOT NULL DEFAULT 0;
   CREATE TABLE refunds (id TEXT PRIMARY KEY, order_ref TEXT NOT NULL, payment_id TEXT NOT NULL,
     merchant_id TEXT NOT NULL, terminal_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
     reason TEXT, status TEXT NOT NULL, failure_code TEXT, created_at TEXT NOT NULL, next_check_at BIGINT,
     checks BIGINT NOT NULL DEFAULT 0, version BIGINT NOT NULL);
   CREATE INDEX refunds_payment ON refunds (payment_id, created_at);
   CREATE INDEX refunds_terminal ON refunds (terminal_id, status);
   CREATE INDEX refunds_due ON refunds (status, next_check_at);`,
  // 3: the notification outbox; seq orders a merchant's events as they were made.
  `CREATE TABLE events (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL,
     type TEXT NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL, delivery TEXT NOT NULL,
     attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at BIGINT);
   CREATE INDEX events_merchant ON events (merchant_id, seq);
   CREATE INDEX events_due ON events (delivery, next_attempt_at);`,
  // 4: what a payment shows its merchant, and a merchant order's attempts found by their order.
  `ALTER TABLE payments ADD COLUMN card_brand TEXT;
   ALTER TABLE payments ADD COLUMN card_last4 TEXT;
   ALTER TABLE payments ADD COLUMN decided_at BIGINT;
   CREATE INDEX payments_order_ref ON payments (order_ref, created_at);`,
  // 5: the loyalty history as a running total beside the terminal (see the SQLite store's 7).
  `ALTER TABLE terminals ADD COLUMN history_total BIGINT NOT NULL DEFAULT 0;
   ${HISTORY_FROM_PAYMENTS}`,
  // 6: idempotency records found by their expiry when pruned (every instance prunes every second).
  `CREATE INDEX idempotency_expiry ON idempotency (expires_at);`,
  // 7: the loyalty history per currency (see the SQLite store's 9).
  `CREATE TABLE terminal_history (terminal_id TEXT NOT NULL, currency TEXT NOT NULL,
     total BIGINT NOT NULL, PRIMARY KEY (terminal_id, currency));
   ${HISTORY_BY_CURRENCY};
   ALTER TABLE terminals DROP COLUMN history_total;`,
  // 8: a terminal's sessions found by their terminal (see the SQLite store's 10).
  `CREATE INDEX sessions_terminal ON sessions (terminal_id, created_at);`,
  // 9: CVV checks of password resets (see the SQLite store's 11).
  `${cardChecksTable('BIGINT')};`,
  // 10: who the shopper is in WeChat (see the SQLite store's 12).
  `${TERMINAL_IDENTITY};`,
  // 11: delivery attempts and refunds' decision times (see the SQLite store's 13).
  `${deliveriesAndStatements('BIGINT', '(EXTRACT(EPOCH FROM created_at::timestamptz) * 1000)::bigint')};`,
  // 12: each terminal's cryptographic suite (PROTOCOL.md §3.1; null is cardpay-v1).
  `ALTER TABLE terminals ADD COLUMN suite TEXT;`,
  // 13: what a write's condition calls (the commit sends a transaction's writes as one message,
  // and a condition that does not hold must undo them all: only an error does that).
  `CREATE FUNCTION cardpay_holds(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
   BEGIN
     IF ok IS NOT TRUE THEN
       RAISE EXCEPTION 'cardpay: condition not met (%): the transaction is undone and the platform reads again; a race, not a fault', what
         USING ERRCODE = 'CP001';
     END IF;
     RETURN true;
   END $$;`,
  // 14: card-testing attempts found among attempts only: a card or terminal with many payments
  // decided long ago costs nothing more to count (the bench's shared card read 333 rows a count).
  // They were the only readers of the two indexes they replace.
  `CREATE INDEX payments_attempts_terminal ON payments (terminal_id, created_at)
     WHERE status IN ('declined', 'pending');
   CREATE INDEX payments_attempts_card ON payments (card_hash, created_at)
     WHERE status IN ('declined', 'pending');
   DROP INDEX payments_terminal;
   DROP INDEX payments_card;`,
  // 15: a terminal's open sessions, counted by the cap on them (throttle.openSessionsPerTerminal)
  // among open sessions only: a terminal with many sessions ended costs nothing more to count (a
  // bench terminal with a few hundred spent 0.8 ms a count). The count was the index's only reader.
  `CREATE INDEX sessions_open_terminal ON sessions (terminal_id, created_at)
     WHERE state IN ('awaiting_order', 'awaiting_confirmation', 'awaiting_authentication');
   DROP INDEX sessions_terminal;`,
];

/** One number for the advisory lock that serialises migrations across instances. */
const MIGRATION_LOCK = 7316020140;
/** And one for the lock of a prune pass (`prune`): one instance prunes at a time. */
export const PRUNE_LOCK = 7316020141;

/**
 * Connections per instance unless the operator says (`--db-pool`). More is not faster: on two
 * cores, PostgreSQL's own CPU per checkout was 3.6–4.3 ms with 3 to 6 connections, 5.7 ms with
 * 10 and 8.2 ms with 24, as its backends took turns on the same cores.
 */
const DEFAULT_POOL = 6;

// Counts and epoch milliseconds fit in a double; BIGINT comes back as a number, not a string.
// A parser set of our own, so the process-wide defaults of `pg` stay as they were.
const parsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === types.builtins.INT8 && format !== 'binary') return (v: string) => Number(v);
    return types.getTypeParser(oid, format);
  },
};

/**
 * A statement sent alone reads, unless it changes rows: it is then a transaction of its own,
 * whose commit waits for the disk. Known per text (the store's own texts, a bounded set).
 */
function waitOf(sql: string): DatabaseWait {
  let kind = waits.get(sql);
  if (!kind) {
    kind = /\b(INSERT|UPDATE|DELETE|VACUUM)\b/i.test(sql) ? 'write' : 'read';
    if (waits.size < 1000) waits.set(sql, kind);
  }
  return kind;
}
const waits = new Map<string, DatabaseWait>();

/** Connection failures: the database is down or restarting, and a retry may succeed. */
function unavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  const code = e?.code ?? '';
  return (
    code.startsWith('08') || // connection exceptions
    code.startsWith('57P') || // admin shutdown, crash shutdown, cannot connect now
    code === '53300' || // too many connections
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(
      code,
    ) ||
    /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      e?.message ?? '',
    )
  );
}

/** The most requests' statements one grouped transaction carries. */
const GROUP_MAX = 32;

/** A request's statements waiting for their turn to go to PostgreSQL (see `PostgresStore.run`). */
interface Waiting {
  statements: Sql[];
  rows: boolean;
  flush: boolean;
  /** When the request asked (for the wait metrics). */
  start: number;
  resolve: (results: Record<string, unknown>[][]) => void;
  reject: (error: unknown) => void;
}

export class PostgresStore implements Store {
  readonly pool: Pool;

  private constructor(
    readonly url: string,
    pool: Pool,
    /** How many transactions may be on their way to PostgreSQL at once: the pool's size. */
    private readonly inFlight: number,
  ) {
    this.pool = pool;
  }

  /**
   * Connects, and brings the schema up to date exactly once whatever the number of instances
   * starting together. A bad URL or refused credentials is a StoreError (exit 2 at start).
   */
  static async open(
    url: string,
    options: { max?: number; onError?: (error: Error) => void } = {},
  ): Promise<PostgresStore> {
    let pool: Pool;
    try {
      pool = new Pool({
        connectionString: url,
        max: options.max ?? DEFAULT_POOL,
        connectionTimeoutMillis: 5000,
        idleTimeoutMillis: 30000,
        types: parsers,
      });
    } catch (error) {
      throw new StoreError(`cannot use the database URL: ${(error as Error).message}`);
    }
    // An idle connection dropped by the server must not take the process down with it.
    pool.on('error', (error) => options.onError?.(error));
    // Nor one dropped while it is lent out: a client that loses its connection with no query in
    // flight emits 'error', and an 'error' event without a listener ends the process. The pool's
    // own listener covers a client only while it is idle; this one covers it for its whole life
    // (what was lost shows at its next statement, which fails and releases it as broken).
    pool.on('connect', (client) => client.on('error', () => undefined));
    const store = new PostgresStore(url, pool, options.max ?? DEFAULT_POOL);
    try {
      await store.migrate();
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new StoreError(
        `cannot open the database at ${redact(url)}: ${(error as Error).message}`,
      );
    }
    return store;
  }

  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    // Lost mid-way, the connection says so here, and the statement waiting on it fails the start.
    const dropped = () => undefined;
    client.on('error', dropped);
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)',
      );
      const done = await client.query<{ v: number | null }>(
        'SELECT MAX(version) AS v FROM schema_migrations',
      );
      const current = done.rows[0]?.v ?? 0;
      if (current > MIGRATIONS.length)
        throw new Error(
          `the database is at schema version ${current}, newer than this server (${MIGRATIONS.length})`,
        );
      for (let v = current; v < MIGRATIONS.length; v++) {
        await client.query('BEGIN');
        try {
          await client.query(MIGRATIONS[v]);
          await client.query(
            'INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)',
            [v + 1, new Date().toISOString()],
          );
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      client.off('error', dropped);
      client.release();
    }
  }

  /** The schema version this database is at. */
  async schemaVersion(): Promise<number> {
    const r = await this.q<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    return r[0]?.v ?? 0;
  }

  private async q<T extends QueryResultRow = Record<string, unknown>>(
    sql: string,
    params: unknown[] = [],
  ): Promise<T[]> {
    const start = performance.now();
    try {
      const rows = (await this.pool.query<T>(this.prepared(sql, params))).rows;
      if (!this.available) this.changed(true);
      const kind = waitOf(sql);
      this.onWait?.(kind, (performance.now() - start) / 1000);
      // A statement that writes commits by itself: a commit of one write.
      if (kind === 'write') this.onCommit?.(1);
      return rows;
    } catch (error) {
      throw this.failure(error);
    }
  }

  onWait?: (kind: DatabaseWait, seconds: number) => void;
  onCommit?: (writes: number) => void;

  onAvailability?: (available: boolean) => void;
  private available = true;

  private changed(available: boolean): void {
    if (this.available === available) return;
    this.available = available;
    this.onAvailability?.(available);
  }

  /** The error to throw for `error`: StoreUnavailable when the database could not be reached. */
  private failure(error: unknown): unknown {
    if (!unavailable(error)) return error;
    this.changed(false);
    return new StoreUnavailable((error as Error).message);
  }

  /**
   * A statement with parameters goes as a named prepared statement: each connection parses and
   * plans it once, then only binds and runs it. The texts are this store's own, a bounded set.
   */
  private prepared(
    sql: string,
    values: unknown[],
  ): { text: string; values: unknown[]; name?: string } {
    if (values.length === 0) return { text: sql, values };
    let name = this.statementNames.get(sql);
    if (!name) {
      name = `cardpay_${this.statementNames.size}`;
      this.statementNames.set(sql, name);
    }
    return { name, text: sql, values };
  }
  private readonly statementNames = new Map<string, string>();

  /** A commit's statement with its name: `cardpay_w…`, its own names, kept apart from `q`'s. */
  private named({ sql, params }: Sql): Named {
    let name = this.writeNames.get(sql);
    if (!name) this.writeNames.set(sql, (name = `cardpay_w${this.writeNames.size}`));
    return { name, text: sql, values: params.map(wireValue) };
  }
  private readonly writeNames = new Map<string, string>();

  async insertTerminal(row: TerminalRow) {
    const { sql, params } = insertSql('terminals', { ...row });
    await this.q(sql, params);
  }
  async getTerminal(id: string) {
    return toRow<TerminalRow>((await this.q('SELECT * FROM terminals WHERE id = $1', [id]))[0]);
  }
  async acquireAuthLease(id: string, now: number, until: number): Promise<AuthLease> {
    // One round trip: the lease, then the lock read by a statement of its own after it.
    const [[taken], [row]] = await this.run(
      [
        { sql: TAKE_LEASE, params: [until, id, now] },
        { sql: LOCK_OF, params: [id] },
      ],
      { rows: true },
    );
    return leaseOf(taken?.auth_failures as number | undefined, row, now, until);
  }
  async isCardBound(terminalId: string, cardHash: string) {
    return (
      (
        await this.q(
          `SELECT 1 FROM card_bindings WHERE card_hash = $2 AND terminal_id IN ${SAME_SHOPPER('$1')}`,
          [terminalId, cardHash],
        )
      ).length > 0
    );
  }
  async sessionWith(id: string, want: SessionFactsWanted) {
    const { sql, params } = this.sessionWithStatement(id, want);
    const [row] = await this.q(sql, params);
    return sessionWithOf(row, want);
  }
  private sessionWithStatement(id: string, want: SessionFactsWanted): Sql {
    const key = `${+!!want.terminal}${+!!want.cardBound}${+(want.attemptsSince !== undefined)}${+!!want.history}${+!!want.order}`;
    let sql = this.sessionWithSqls.get(key);
    if (!sql) this.sessionWithSqls.set(key, (sql = sessionWithSql(want)));
    const params: unknown[] = [id];
    if (want.attemptsSince !== undefined) params.push(want.attemptsSince);
    if (want.history) params.push(want.history === true ? null : want.history);
    return { sql, params };
  }
  private readonly sessionWithSqls = new Map<string, string>();
  async recentAttempts(terminalId: string, cardHash: string, since: number) {
    const [r] = await this.q<{
      card: number;
      card_oldest: number;
      term: number;
      term_oldest: number;
    }>(RECENT_ATTEMPTS, [terminalId, cardHash, since]);
    return {
      card: r.card,
      cardOldest: r.card_oldest,
      terminal: r.term,
      terminalOldest: r.term_oldest,
    };
  }
  async useNonce(terminalId: string, nonce: string, now: number, expiresAt: number) {
    const r = await this.q(
      `INSERT INTO nonces (terminal_id, nonce, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (terminal_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at
       WHERE nonces.expires_at <= $4 RETURNING 1`,
      [terminalId, nonce, expiresAt, now],
    );
    return r.length === 1;
  }
  async nonceSeen(terminalId: string, nonce: string, now: number) {
    return (
      (
        await this.q(
          'SELECT 1 FROM nonces WHERE terminal_id = $1 AND nonce = $2 AND expires_at > $3',
          [terminalId, nonce, now],
        )
      ).length > 0
    );
  }
  async beginIdempotent(
    terminalId: string,
    key: string,
    fingerprint: string,
    now: number,
    ttlMs: number,
    leaseMs: number,
  ): Promise<IdempotencyBegin> {
    const params = beginParams({ terminalId, key, fingerprint, now, ttlMs, leaseMs });
    const [[row]] = await this.run([{ sql: BEGIN_SQL, params }], { rows: true, flush: false });
    const r = begun(row as unknown as BegunRow, fingerprint);
    return r.kind === 'nonce_reused' ? { kind: 'in_progress' } : r;
  }
  /**
   * One round trip: the begin's statement ({@link BEGIN_SQL}) and, when a read is asked for, the
   * session's after it, sent together (a {@link Pipeline}). The read is of no use when the request
   * may not act; it is cheaper to make it for nothing then than to wait for the begin first.
   *
   * A begin's commit does not wait for the disk (`synchronous_commit` off for it alone): a request
   * that began answers only after a write of its own that does wait (the commit that records its
   * answer, or the record of an error or of its abandon), and that write makes the begin durable
   * with it, the log being written in order. An answer given without such a write (a replay, a
   * key in progress or in conflict) depends on nothing the begin wrote. A crash of the database
   * loses at most a begin nothing came of, as if its request had not arrived.
   */
  async useNonceAndBegin(
    b: RequestBegin,
    read?: ReadWithBegin,
  ): Promise<BeginWithRead | { kind: 'nonce_reused' }> {
    const { terminalId, now } = b;
    const params = beginParams({
      ...b,
      nonce: { nonce: b.nonce, expiresAt: b.nonceExpiresAt },
      authLeaseUntil: read && 'session' in read ? read.lease?.until : undefined,
    });
    const order = read && 'order' in read ? read.order : undefined;
    const step = read && 'session' in read ? read : undefined;
    const lease = !!step?.lease;
    const results = await this.run(
      [
        { sql: BEGIN_SQL, params },
        // After the begin (and its lease), each with a snapshot of its own.
        ...(lease ? [{ sql: LOCK_OF, params: [terminalId] }] : []),
        ...(step ? [this.sessionWithStatement(step.session, step.want)] : []),
        ...(order !== undefined ? [{ sql: MERCHANT_ORDER, params: [order] }] : []),
      ],
      // A lease waits for the disk. Lost in a crash, it would let a second judge in, whose
      // judgment the fence (`endAuthLease`, an `authFailure` with its lease) would keep untold;
      // but not waiting was measured slower: PostgreSQL's CPU per checkout up a tenth, its rate
      // down as much (operator guide, "What a crash of PostgreSQL can lose").
      { rows: true, flush: lease },
    );
    const row = results[0][0] as unknown as BegunRow;
    const r = begun(row, b.fingerprint);
    if (r.kind !== 'new' || !read) return r;
    if (!step) return { kind: 'new', read: { order: toRow<MerchantOrderRow>(results[1][0]) } };
    const session = sessionWithOf(results[lease ? 2 : 1][0], step.want);
    return {
      kind: 'new',
      read: lease
        ? {
            session,
            lease: leaseOf(row.lease_failures ?? undefined, results[1][0], now, step.lease!.until),
          }
        : { session },
    };
  }
  /**
   * The begin's statement raises unless its nonce was new and its key taken ({@link BEGUN_OR_UNDO}),
   * then the commit's statements follow in the same pipeline: one round trip, one transaction that
   * any refusal undoes whole. It waits for the disk, as every commit with an answer does.
   */
  async beginWithCommit(b: RequestBegin, writes: Write[]) {
    // Its first nine parameters: it takes no lease.
    const params = beginParams({ ...b, nonce: { nonce: b.nonce, expiresAt: b.nonceExpiresAt } });
    return this.commitStatements([
      { sql: BEGUN_OR_UNDO, params: params.slice(0, 9) },
      ...writes.flatMap(writeSql),
    ]);
  }
  async legacyIdempotency(limit: number, after = { scope: '', key: '' }) {
    const rows = await this.q<{
      terminal_id: string;
      key: string;
      fingerprint: string;
      body: string | null;
    }>(
      `SELECT terminal_id, key, fingerprint, body FROM idempotency
       WHERE (terminal_id, key) > ($2, $3)
         AND (strpos(fingerprint, ' ') > 0 OR (body IS NOT NULL AND substr(body, 1, 3) <> 'v1.'))
       ORDER BY terminal_id, key LIMIT $1`,
      [limit, after.scope, after.key],
    );
    return rows.map((r) => ({
      scope: r.terminal_id,
      key: r.key,
      fingerprint: r.fingerprint,
      body: r.body,
    }));
  }
  async rewriteIdempotency(
    rows: (LegacyIdempotency & { newFingerprint: string; newBody: string | null })[],
  ) {
    if (rows.length === 0) return;
    // One statement for the batch; a record changed meanwhile (by a request) is left alone.
    await this.q(
      `UPDATE idempotency AS i SET fingerprint = r.nf, body = r.nb
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS r(s, k, f, nf, nb)
       WHERE i.terminal_id = r.s AND i.key = r.k AND i.fingerprint = r.f`,
      [
        rows.map((r) => r.scope),
        rows.map((r) => r.key),
        rows.map((r) => r.fingerprint),
        rows.map((r) => r.newFingerprint),
        rows.map((r) => r.newBody),
      ],
    );
  }
  async scrub() {
    // A dump holds live rows only; VACUUM also frees the dead versions the rewrite left.
    await this.q('VACUUM idempotency');
  }
  async finishIdempotent(terminalId: string, key: string, status: number, body: string) {
    await this.q(FINISH_IDEMPOTENT, [status, body, terminalId, key]);
  }
  async abandonIdempotent(terminalId: string, key: string) {
    await this.q('DELETE FROM idempotency WHERE terminal_id = $1 AND key = $2 AND status IS NULL', [
      terminalId,
      key,
    ]);
  }
  async backlog(now: number) {
    const [row] = await this.q<{
      payments: string;
      refunds: string;
      events: string;
      oldest: string | null;
    }>(
      `SELECT (SELECT COUNT(*) FROM payments WHERE status = 'pending') AS payments,
              (SELECT COUNT(*) FROM refunds WHERE status = 'pending') AS refunds,
              (SELECT COUNT(*) FROM events WHERE delivery = 'pending') AS events,
              (SELECT MIN(created_at) FROM events WHERE delivery = 'pending') AS oldest`,
    );
    return {
      payments: Number(row.payments),
      refunds: Number(row.refunds),
      events: Number(row.events),
      oldestEventAgeMs: row.oldest ? Math.max(0, now - Date.parse(row.oldest)) : 0,
    };
  }
  async lastPaymentOfOrder(orderRef: string) {
    return toRow<PaymentRow>(
      (
        await this.q(
          'SELECT * FROM payments WHERE order_ref = $1 ORDER BY created_at DESC, id DESC LIMIT 1',
          [orderRef],
        )
      )[0],
    );
  }
  async getSession(id: string) {
    return toRow<SessionRow>((await this.q('SELECT * FROM sessions WHERE id = $1', [id]))[0]);
  }

  async getPayment(id: string) {
    return toRow<PaymentRow>((await this.q('SELECT * FROM payments WHERE id = $1', [id]))[0]);
  }
  async claimDuePayments(now: number, leaseMs: number, limit: number) {
    // SKIP LOCKED: instances polling at once take disjoint payments instead of queueing.
    const rows = await this.q(
      `UPDATE payments SET next_check_at = $1 WHERE id IN (
         SELECT id FROM payments WHERE status = 'pending' AND next_check_at <= $2
         ORDER BY next_check_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *`,
      [now + leaseMs, now, limit],
    );
    return rows.map((r) => toRow<PaymentRow>(r)!);
  }
  async takeRateLimit(key: string, now: number, limit: number, windowMs: number) {
    const window = Math.floor(now / windowMs) * windowMs;
    const [row] = await this.q<{ hits: number }>(
      `INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1)
       ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits`,
      [key, window],
    );
    return { allowed: row.hits <= limit, retryAfterMs: window + windowMs - now };
  }
  async historyTotal(terminalId: string, currency: string) {
    const [r] = await this.q<{ total: number }>(
      `SELECT COALESCE(SUM(total), 0)::bigint AS total FROM terminal_history
       WHERE currency = $2 AND terminal_id IN ${SAME_SHOPPER('$1')}`,
      [terminalId, currency],
    );
    return r.total;
  }

  async listEvents(merchantId: string, after: string | undefined, limit: number) {
    const rows = await this.q(
      `SELECT id, merchant_id, type, created_at, body, delivery, attempts, next_attempt_at FROM events
       WHERE merchant_id = $1 AND seq > COALESCE((SELECT seq FROM events WHERE id = $2 AND merchant_id = $1), 0)
       ORDER BY seq LIMIT $3`,
      [merchantId, after ?? '', limit],
    );
    return rows.map((r) => toRow<EventRow>(r)!);
  }
  async getEvent(id: string) {
    return toRow<EventRow>(
      (
        await this.q(
          'SELECT id, merchant_id, type, created_at, body, delivery, attempts, next_attempt_at FROM events WHERE id = $1',
          [id],
        )
      )[0],
    );
  }
  async listDeliveries(eventId: string, limit: number) {
    const rows = await this.q(
      'SELECT * FROM event_deliveries WHERE event_id = $1 ORDER BY at DESC, ctid DESC LIMIT $2',
      [eventId, limit],
    );
    return rows.map((r) => toRow<DeliveryRow>(r)!);
  }
  async statementPage(
    merchantId: string,
    from: number,
    to: number,
    after: { at: number; id: string } | undefined,
    limit: number,
  ) {
    const rows = await this.q(STATEMENT_PAGE, [
      merchantId,
      from,
      to,
      after?.at ?? -1,
      after?.id ?? '',
      limit,
    ]);
    return rows.map((r) => toRow<StatementRow>(r)!);
  }
  async claimDueEvents(now: number, leaseMs: number, limit: number) {
    const rows = await this.q(
      `UPDATE events SET next_attempt_at = $1 WHERE seq IN (
         SELECT seq FROM events WHERE delivery = 'pending' AND next_attempt_at <= $2
         ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING id, merchant_id, type, created_at, body, delivery, attempts, next_attempt_at`,
      [now + leaseMs, now, limit],
    );
    return rows.map((r) => toRow<EventRow>(r)!);
  }
  async getRefund(id: string) {
    return toRow<RefundRow>((await this.q('SELECT * FROM refunds WHERE id = $1', [id]))[0]);
  }
  async listRefunds(paymentId: string) {
    const rows = await this.q(
      'SELECT * FROM refunds WHERE payment_id = $1 ORDER BY created_at, id',
      [paymentId],
    );
    return rows.map((r) => toRow<RefundRow>(r)!);
  }
  async claimDueRefunds(now: number, leaseMs: number, limit: number) {
    const rows = await this.q(
      `UPDATE refunds SET next_check_at = $1 WHERE id IN (
         SELECT id FROM refunds WHERE status = 'pending' AND next_check_at <= $2
         ORDER BY next_check_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *`,
      [now + leaseMs, now, limit],
    );
    return rows.map((r) => toRow<RefundRow>(r)!);
  }
  async putMerchantOrder(row: MerchantOrderRow) {
    const cols = toColumns({ ...row });
    const names = Object.keys(cols);
    const inserted = await this.q(
      `INSERT INTO merchant_orders (${names.join(',')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(',')})
       ON CONFLICT (merchant_id, merchant_order_id) DO NOTHING RETURNING *`,
      names.map((n) => cols[n]),
    );
    if (inserted[0]) return { row: toRow<MerchantOrderRow>(inserted[0])!, created: true };
    const [existing] = await this.q(
      'SELECT * FROM merchant_orders WHERE merchant_id = $1 AND merchant_order_id = $2',
      [row.merchantId, row.merchantOrderId],
    );
    return { row: toRow<MerchantOrderRow>(existing)!, created: false };
  }
  async listMerchantOrders(q: OrderQuery) {
    let n = 0;
    const { sql, params } = orderQuerySql(q, () => `$${++n}`);
    return (await this.q(sql, params)).map((r) => toRow<MerchantOrderRow>(r)!);
  }
  async dayFigures(merchantId: string, from: number, to: number) {
    const rows = await this.q<Record<string, unknown>>(DAY_FIGURES, [merchantId, from, to]);
    return rows.map((r) => ({
      currency: String(r.currency),
      payments: Number(r.payments),
      succeeded: Number(r.succeeded),
      charged: Number(r.charged),
      refunded: Number(r.refunded),
    }));
  }
  async getMerchantOrder(orderRef: string) {
    return toRow<MerchantOrderRow>((await this.q(MERCHANT_ORDER, [orderRef]))[0]);
  }

  /**
   * The writes as one transaction, in one round trip whatever their number. Each write is SQL
   * that checks its own condition (a versioned update found its row, a claim was free, a limit
   * not yet reached) and raises CP001 through `cardpay_holds` when it does not hold: the commit is
   * then undone and reported as `false`, as a conflict the domain resolves by reading again.
   * PostgreSQL logs each such refusal as an ERROR naming the condition (see the operator guide).
   *
   * The statements go as one {@link Pipeline}: one round trip, one implicit transaction that the
   * first failure undoes, each statement prepared once per connection. Measured on this machine,
   * a commit of two writes cost PostgreSQL 280–310 µs of CPU as one simple-protocol message of
   * literals (planned every time) and 137 µs for one prepared write alone: planning, not the
   * round trip, was most of it.
   */
  async commit(writes: Write[]): Promise<boolean> {
    return this.commitStatements(writes.flatMap(writeSql));
  }
  private async commitStatements(statements: Sql[]): Promise<boolean> {
    try {
      await this.run(statements);
      return true;
    } catch (error) {
      if ((error as { code?: string }).code === CONDITION_FAILED) return false;
      throw error;
    }
  }

  /**
   * A request's statements, run as one transaction; their rows when asked. With `flush: false`
   * its commit does not wait for the log to reach the disk: only for a transaction whose loss in
   * a crash of the database no answer depends on (see {@link useNonceAndBegin}).
   *
   * Group commit, as the SQLite store's: while every connection of the pool carries a
   * transaction, the requests that come meanwhile wait, and then go together, in order, as one
   * pipeline and one transaction. PostgreSQL pays its per-transaction work (the commit, its
   * flush, the round trip) once for all of them. A platform with connections to spare sends each
   * request alone, as soon as it comes, so grouping adds no wait until the pool is busy.
   * Measured with 64 callers on 6 connections: 138–146 µs of PostgreSQL's CPU a commit alone,
   * 61–69 µs grouped by five to seven. Keeping half the pool for reads (grouping from the fourth
   * transaction on) was measured too: a few per cent more checkouts a second, and a longer tail
   * at the same rate (an authentication's p99 20.9–21.7 ms at 150 checkouts a second, against
   * 10.1–16.7 with the whole pool).
   *
   * Together they are one serial order of the same statements, each one seeing the writes
   * before it, as it would had those committed first. If any statement fails (a condition that
   * does not hold, a constraint, a deadlock between two groups), the whole transaction is undone
   * and each request runs again alone, as if it had never been grouped: the one whose condition
   * failed is refused, and the others are made. A database that cannot be reached fails them
   * all, as it would have alone.
   */
  private async run(
    statements: Sql[],
    { rows = false, flush = true } = {},
  ): Promise<Record<string, unknown>[][]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ statements, rows, flush, start: performance.now(), resolve, reject });
      this.dispatch();
    });
  }

  private waiting: Waiting[] = [];
  private sending = 0;

  /** Sends what waits, in groups of the same `flush`, while fewer than `inFlight` are sent. */
  private dispatch(): void {
    while (this.sending < this.inFlight && this.waiting.length) {
      const flush = this.waiting[0].flush;
      const group: Waiting[] = [];
      const rest: Waiting[] = [];
      for (const w of this.waiting)
        (w.flush === flush && group.length < GROUP_MAX ? group : rest).push(w);
      this.waiting = rest;
      this.sending++;
      void this.send(group, flush).finally(() => {
        this.sending--;
        this.dispatch();
      });
    }
  }

  private async send(group: Waiting[], flush: boolean): Promise<void> {
    const alone = (w: Waiting) =>
      this.runAlone(w.statements, w.rows, w.flush).then((results) => {
        this.onWait?.(flush ? 'write' : 'write_unflushed', (performance.now() - w.start) / 1000);
        this.onCommit?.(1);
        w.resolve(results);
      }, w.reject);
    if (group.length === 1) return alone(group[0]);
    let results: Record<string, unknown>[][];
    try {
      results = await this.runAlone(
        group.flatMap((w) => w.statements),
        group.some((w) => w.rows),
        flush,
      );
    } catch (error) {
      if (error instanceof StoreUnavailable) for (const w of group) w.reject(error);
      else await Promise.all(group.map(alone));
      return;
    }
    this.onCommit?.(group.length);
    let at = 0;
    for (const w of group) {
      this.onWait?.(flush ? 'write' : 'write_unflushed', (performance.now() - w.start) / 1000);
      w.resolve(results.slice(at, (at += w.statements.length)));
    }
  }

  /** Statements as one {@link Pipeline} on a connection of the pool. */
  private async runAlone(
    statements: Sql[],
    rows: boolean,
    flush: boolean,
  ): Promise<Record<string, unknown>[][]> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      this.changed(false);
      throw new StoreUnavailable((error as Error).message);
    }
    // A connection lost while lent out says so by an 'error' event; it goes back broken. One
    // that only failed a condition (or a constraint) is fine: the message's transaction is over.
    let broken = false;
    const dropped = () => (broken = true);
    client.on('error', dropped);
    try {
      const pipeline = new Pipeline(
        (flush ? statements : [NO_FLUSH, ...statements]).map((st) => this.named(st)),
        rows,
      );
      client.query(pipeline as unknown as Submittable);
      const results = await pipeline.done;
      if (!this.available) this.changed(true);
      return flush ? results : results.slice(1);
    } catch (error) {
      const failure = this.failure(error);
      if (failure instanceof StoreUnavailable) broken = true;
      throw failure;
    } finally {
      client.off('error', dropped);
      client.release(broken);
    }
  }

  /**
   * One statement, one round trip: every expiry and deletion of a pass, made only by the
   * instance that gets the prune's advisory lock (without waiting for it). Several instances on
   * one database no longer delete the same rows at once, each waiting on the others' row locks,
   * and a pass costs one round trip instead of seven. An instance that finds the lock taken does
   * nothing: the one holding it is pruning.
   */
  async prune(now: number, retainBefore: number) {
    const held = '(SELECT held FROM lock)';
    const [row] = await this.q<{ pruned: boolean; expired: string }>(
      `WITH lock AS (SELECT pg_try_advisory_xact_lock(${PRUNE_LOCK}) AS held),
       expired AS (
         UPDATE sessions SET state = 'expired', pan_sealed = NULL, challenge = NULL,
           confirm_token = NULL, version = version + 1
         WHERE ${held} AND state IN ('awaiting_order', 'awaiting_confirmation', 'awaiting_authentication')
           AND expires_at < $1
         RETURNING 1),
       n AS (DELETE FROM nonces WHERE ${held} AND expires_at <= $1),
       i AS (DELETE FROM idempotency WHERE ${held} AND expires_at <= $1),
       r AS (DELETE FROM rate_limits WHERE ${held} AND window_start < $2),
       c AS (DELETE FROM card_checks WHERE ${held} AND created_at < $3),
       d AS (DELETE FROM event_deliveries WHERE ${held} AND at < $4),
       s AS (DELETE FROM sessions WHERE ${held} AND payment_id IS NULL
               AND state IN ('expired', 'cancelled', 'failed') AND expires_at < $5)
       SELECT ${held} AS pruned, (SELECT COUNT(*) FROM expired) AS expired`,
      [
        now,
        now - KEPT_MS.rateLimits,
        now - KEPT_MS.cardChecks,
        now - KEPT_MS.eventDeliveries,
        retainBefore,
      ],
    );
    return { expired: Number(row.expired), pruned: row.pruned };
  }
  async getMeta(key: string) {
    return (await this.q<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]))[0]
      ?.value;
  }
  async putMeta(key: string, value: string) {
    await this.q('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
      key,
      value,
    ]);
  }
  async close() {
    await this.pool.end().catch(() => undefined);
  }
}

/** A statement and its values ($1, $2, … in the text). */
interface Sql {
  sql: string;
  params: unknown[];
}

/** The SQLSTATE `cardpay_holds` (migration 13) raises when a write's condition does not hold. */
const CONDITION_FAILED = 'CP001';

/** A request's answer onto its idempotency record (alone, or as a commit's `answer` write). */
const FINISH_IDEMPOTENT =
  'UPDATE idempotency SET status = $1, body = $2 WHERE terminal_id = $3 AND key = $4';

/**
 * The statement `modify` (an UPDATE) made to fail unless it changed exactly one row; `what` says
 * in PostgreSQL's log which condition it was (text of ours, never a value).
 */
const changesOne = (modify: string, what: string) =>
  `WITH changed AS (${modify} RETURNING 1) SELECT cardpay_holds(COUNT(*) = 1, '${what}') FROM changed`;

/** A SELECT of one boolean `ok`, made to fail unless it is true. */
const holds = (select: string, what: string) =>
  `SELECT cardpay_holds(ok, '${what}') FROM (${select}) AS checked`;

/** The card-testing attempts of terminal `t` and card `c` since `since` (SQL expressions). */
const recentAttemptsOf = (t: string, c: string, since: string) => {
  // Of the card and of the terminal apart, each by its own index (payments_attempts_card and
  // _terminal, which hold attempts only, and card_checks' two): an OR of the two would be one scan
  // where a plan made on a small table says so, and a prepared statement keeps its plan.
  const of = (
    column: string,
    value: string,
  ) => `SELECT COUNT(*) AS n, COALESCE(MIN(created_at), 0) AS oldest
    FROM (SELECT created_at FROM payments
            WHERE ${column} = ${value} AND status IN ('declined', 'pending') AND created_at >= ${since}
          UNION ALL SELECT created_at FROM card_checks
            WHERE ${column} = ${value} AND status IN ('declined', 'pending') AND created_at >= ${since}) x`;
  return `SELECT c.n AS card, c.oldest AS card_oldest, t.n AS term, t.oldest AS term_oldest
    FROM (${of('card_hash', c)}) c, (${of('terminal_id', t)}) t`;
};
const RECENT_ATTEMPTS = recentAttemptsOf('$1', '$2', '$3');

/** For this transaction only, a commit that does not wait for the disk (PostgreSQL's own setting). */
const NO_FLUSH: Sql = { sql: "SELECT set_config('synchronous_commit', 'off', true)", params: [] };

/** A begin's nonce (`n`) and idempotency record (`i`), as CTEs ({@link BEGIN_SQL} says how). */
const NONCE_AND_KEY = `WITH n AS (
     INSERT INTO nonces (terminal_id, nonce, expires_at)
     SELECT $1::text, $8::text, $9::bigint WHERE $8::text IS NOT NULL
     ON CONFLICT (terminal_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at
       WHERE nonces.expires_at <= $5
     RETURNING 1),
   i AS (
     INSERT INTO idempotency (terminal_id, key, fingerprint, status, body, expires_at)
     SELECT $1::text, $2::text, $3::text, NULL, NULL, $4::bigint
     WHERE $8::text IS NULL OR EXISTS (SELECT 1 FROM n)
     ON CONFLICT (terminal_id, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, status = NULL, body = NULL, expires_at = EXCLUDED.expires_at
       WHERE idempotency.expires_at <= $5
          OR (idempotency.status IS NULL AND idempotency.fingerprint = EXCLUDED.fingerprint
              AND idempotency.expires_at - $6 <= $7)
     RETURNING 1)`;

/**
 * A request's begin as one statement: records the nonce (when `$8` gives one) and, only if it was
 * new, inserts the idempotency record (or takes over an expired one, or one left in progress past
 * its lease). Of two instances with the same key exactly one inserts and acts. The record as it
 * stood before the statement comes back with it, to say why a request may not act. With `$10`,
 * a request that may act also takes its terminal's authentication lease until then (when free and
 * the terminal not locked): `lease_failures` is the terminal's failures when it was taken.
 */
const BEGIN_SQL = `${NONCE_AND_KEY},
   l AS (
     UPDATE terminals SET auth_lease_until = $10::bigint
     WHERE $10::bigint IS NOT NULL AND id = $1 AND auth_lease_until <= $5 AND locked_until <= $5
       AND EXISTS (SELECT 1 FROM i)
     RETURNING auth_failures)
   SELECT ($8::text IS NULL OR EXISTS (SELECT 1 FROM n)) AS nonce_ok,
          EXISTS (SELECT 1 FROM i) AS taken, o.fingerprint, o.status, o.body,
          (SELECT auth_failures FROM l) AS lease_failures
   FROM (SELECT 1) AS one
   LEFT JOIN idempotency o ON o.terminal_id = $1 AND o.key = $2`;

/**
 * {@link BEGIN_SQL}'s nonce and idempotency record (no lease), raising CP001 unless both were
 * taken: the transaction it begins is undone when the request is not new.
 */
const BEGUN_OR_UNDO = `${NONCE_AND_KEY}
   SELECT cardpay_holds(EXISTS (SELECT 1 FROM i), 'the request is new: its nonce unused, its idempotency key free')`;

const MERCHANT_ORDER = 'SELECT * FROM merchant_orders WHERE order_ref = $1';

/** The lease, taken only if free and the terminal not locked ({@link PostgresStore.acquireAuthLease}). */
const TAKE_LEASE = `UPDATE terminals SET auth_lease_until = $1
  WHERE id = $2 AND auth_lease_until <= $3 AND locked_until <= $3 RETURNING auth_failures`;
const LOCK_OF = 'SELECT locked_until FROM terminals WHERE id = $1';

/** The lease as taken (its failures) or not, and then why: the lock read after it, or another holder. */
function leaseOf(
  failures: number | undefined,
  lock: Record<string, unknown> | undefined,
  now: number,
  until: number,
): AuthLease {
  if (failures !== undefined) return { kind: 'ok', failures, until };
  if (lock && (lock.locked_until as number) > now)
    return { kind: 'locked', lockedUntil: lock.locked_until as number };
  return { kind: 'busy' };
}

/** {@link BEGIN_SQL}'s parameters: a nonce and a lease only when given. */
function beginParams(b: {
  terminalId: string;
  key: string;
  fingerprint: string;
  now: number;
  ttlMs: number;
  leaseMs: number;
  nonce?: { nonce: string; expiresAt: number };
  authLeaseUntil?: number;
}): unknown[] {
  return [
    b.terminalId,
    b.key,
    b.fingerprint,
    b.now + b.ttlMs,
    b.now,
    b.ttlMs,
    b.now - b.leaseMs,
    b.nonce?.nonce ?? null,
    b.nonce?.expiresAt ?? null,
    b.authLeaseUntil ?? null,
  ];
}

interface BegunRow {
  nonce_ok: boolean;
  taken: boolean;
  fingerprint: string | null;
  status: number | null;
  body: string | null;
  /** The lease's failures when it was asked for and taken; null otherwise. */
  lease_failures: number | null;
}

/** What {@link BEGIN_SQL}'s row says of the request. */
function begun(row: BegunRow, fingerprint: string): IdempotencyBegin | { kind: 'nonce_reused' } {
  if (!row.nonce_ok) return { kind: 'nonce_reused' };
  if (row.taken) return { kind: 'new' };
  // Inserted by another request that has not committed yet, or abandoned meanwhile: try again.
  if (row.fingerprint === null) return { kind: 'in_progress' };
  if (row.fingerprint !== fingerprint) return { kind: 'conflict' };
  if (row.status === null || row.body === null) return { kind: 'in_progress' };
  return { kind: 'replay', status: row.status, body: row.body };
}

/** The session and its facts from a row of {@link sessionWithSql}. */
function sessionWithOf(
  row: Record<string, unknown> | undefined,
  want: SessionFactsWanted,
): SessionWith {
  if (!row) return undefined;
  const { fact_terminal, fact_bound, fact_attempts, fact_history, fact_order, ...session } =
    row as Record<string, unknown> & {
      fact_terminal?: Record<string, unknown> | null;
      fact_order?: Record<string, unknown> | null;
      fact_bound?: boolean;
      fact_attempts?: { card: number; card_oldest: number; term: number; term_oldest: number };
      fact_history?: number;
    };
  const s = toRow<SessionRow>(session)!;
  const facts: SessionFacts = {};
  if (fact_terminal) facts.terminal = toRow<TerminalRow>(fact_terminal);
  if (fact_order) facts.order = toRow<MerchantOrderRow>(fact_order);
  // A session without a card has no binding or attempts to speak of; without a currency, no history.
  if (s.cardHash && fact_bound !== undefined) facts.cardBound = fact_bound;
  if (s.cardHash && fact_attempts)
    facts.attempts = {
      card: fact_attempts.card,
      cardOldest: fact_attempts.card_oldest,
      terminal: fact_attempts.term,
      terminalOldest: fact_attempts.term_oldest,
    };
  if (fact_history !== undefined && (typeof want.history === 'string' || s.currency))
    facts.history = fact_history;
  return { session: s, facts };
}

/**
 * The statement of {@link PostgresStore.sessionWith} for one choice of facts, each a subquery on
 * the session's own terminal and card. `$1` is the session; then, when asked for, the moment
 * attempts count from and the history's currency (NULL: the session's). Built once per choice.
 */
function sessionWithSql(want: SessionFactsWanted): string {
  const t = 's.terminal_id';
  const columns = ['s.*'];
  let n = 1;
  if (want.terminal)
    columns.push(`(SELECT row_to_json(t) FROM terminals t WHERE t.id = ${t}) AS fact_terminal`);
  if (want.cardBound)
    columns.push(`EXISTS (SELECT 1 FROM card_bindings
      WHERE card_hash = s.card_hash AND terminal_id IN ${SAME_SHOPPER(t)}) AS fact_bound`);
  if (want.attemptsSince !== undefined)
    columns.push(`(SELECT row_to_json(a) FROM (${recentAttemptsOf(t, 's.card_hash', `$${++n}::bigint`)}) a)
      AS fact_attempts`);
  if (want.history)
    columns.push(`(SELECT COALESCE(SUM(total), 0)::bigint FROM terminal_history
      WHERE currency = COALESCE($${++n}::text, s.currency) AND terminal_id IN ${SAME_SHOPPER(t)})
      AS fact_history`);
  if (want.order)
    columns.push(`(SELECT row_to_json(o) FROM merchant_orders o WHERE o.order_ref = s.order_ref)
      AS fact_order`);
  return `SELECT ${columns.join(', ')} FROM sessions s WHERE s.id = $1`;
}

function insertSql(table: string, record: Record<string, unknown>): Sql {
  const cols = toColumns(record);
  const names = Object.keys(cols);
  return {
    sql: `INSERT INTO ${table} (${names.join(',')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(',')})`,
    params: names.map((n) => cols[n]),
  };
}

/**
 * An UPDATE of the row `key` by `patch`, `version = version + 1` with it when a version is given
 * (the row must still be at it). `checked`: the row must exist (and be at that version).
 */
function updateSql(
  table: string,
  keyColumn: string,
  key: string,
  patch: Record<string, unknown>,
  version: number | undefined,
  checked = true,
): Sql {
  const cols = toColumns(patch);
  const names = Object.keys(cols);
  const params = names.map((n) => cols[n]);
  const sets = names.map((n, i) => `${n} = $${i + 1}`);
  if (version !== undefined) sets.push('version = version + 1');
  params.push(key);
  let where = `${keyColumn} = $${params.length}`;
  if (version !== undefined) {
    params.push(version);
    where += ` AND version = $${params.length}`;
  }
  const sql = `UPDATE ${table} SET ${sets.join(', ')} WHERE ${where}`;
  const what = `the ${table} row ${version === undefined ? 'exists' : 'is at the version read'}`;
  return { sql: checked ? changesOne(sql, what) : sql, params };
}

/** The statements of one write, each failing the commit when the write's condition fails. */
function writeSql(w: Write): Sql[] {
  switch (w.kind) {
    case 'insertSession':
      return [insertSql('sessions', { ...w.row })];
    case 'insertPayment':
      return [insertSql('payments', { ...w.row })];
    case 'updateSession':
      return [updateSql('sessions', 'id', w.id, w.patch, w.version)];
    case 'updatePayment':
      return [updateSql('payments', 'id', w.id, w.patch, w.version)];
    case 'updateTerminal':
      return [updateSql('terminals', 'id', w.id, w.patch, undefined)];
    case 'clearAuthFailures':
      return [{ sql: clearAuthFailures('$1'), params: [w.terminalId] }];
    case 'updateOrder':
      return [updateSql('merchant_orders', 'order_ref', w.orderRef, w.patch, undefined)];
    case 'claimOrder':
      return [
        {
          sql: changesOne(
            `UPDATE merchant_orders SET claim_payment_id = $1
             WHERE order_ref = $2 AND claim_payment_id IS NULL AND status IN ('open', 'failed')`,
            'the merchant order is not claimed',
          ),
          params: [w.paymentId, w.orderRef],
        },
      ];
    case 'releaseOrder':
      return [
        {
          sql: `UPDATE merchant_orders SET claim_payment_id = NULL, status = 'failed'
           WHERE order_ref = $1 AND claim_payment_id = $2`,
          params: [w.orderRef, w.paymentId],
        },
      ];
    case 'authFailure':
      return [
        {
          sql: changesOne(
            authFailureSql('$1', '$2', '$3', '$4::bigint'),
            'the authentication lease is no longer held',
          ),
          params: [w.terminalId, w.max, w.lockUntil, w.lease ?? null],
        },
      ];
    case 'releaseAuthLease':
      return [{ sql: releaseLeaseSql('$1', '$2'), params: [w.terminalId, w.lease] }];
    case 'endAuthLease':
      return [
        {
          sql: changesOne(
            releaseLeaseSql('$1', '$2'),
            'the authentication lease is no longer held',
          ),
          params: [w.terminalId, w.lease],
        },
      ];
    case 'reserveAttempt':
      // Per card, then per terminal (always in that order: no two commits wait on each other),
      // a lock held to the end of the transaction; the count, a statement of its own, then sees
      // every payment committed by whoever held it before.
      return [
        {
          sql: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), pg_advisory_xact_lock(hashtextextended($2, 0))',
          params: [`attempts:card:${w.cardHash}`, `attempts:terminal:${w.terminalId}`],
        },
        {
          sql: holds(
            `SELECT card < $4 AND term < $5 AS ok FROM (${RECENT_ATTEMPTS}) AS attempts_now`,
            'the card and the terminal are within their attempts of the hour',
          ),
          params: [w.terminalId, w.cardHash, w.since, w.cardLimit, w.terminalLimit],
        },
      ];
    case 'reserveRefund':
      return [
        {
          sql: changesOne(
            'UPDATE merchant_orders SET refund_reserved = refund_reserved + $1 WHERE order_ref = $2 AND refund_reserved + $1 <= $3',
            'the refund fits what is left of the payment',
          ),
          params: [w.amount, w.orderRef, w.limit],
        },
      ];
    case 'releaseRefund':
      return [
        {
          sql: 'UPDATE merchant_orders SET refund_reserved = refund_reserved - $1 WHERE order_ref = $2',
          params: [w.amount, w.orderRef],
        },
      ];
    case 'insertRefund':
      return [insertSql('refunds', { ...w.row })];
    case 'updateRefund':
      return [updateSql('refunds', 'id', w.id, w.patch, w.version)];
    case 'insertEvent':
      return [insertSql('events', { ...w.row })];
    case 'updateEvent':
      return [updateSql('events', 'id', w.id, w.patch, undefined, false)];
    case 'addHistory':
      return [
        {
          sql: `INSERT INTO terminal_history (terminal_id, currency, total) VALUES ($1, $2, $3)
           ON CONFLICT (terminal_id, currency) DO UPDATE SET total = terminal_history.total + EXCLUDED.total`,
          params: [w.terminalId, w.currency, w.amount],
        },
      ];
    case 'insertCardCheck':
      return [insertSql('card_checks', { ...w.row })];
    case 'updateCardCheck':
      return [updateSql('card_checks', 'id', w.id, w.patch, undefined)];
    case 'capResets':
      return [
        {
          sql: holds(
            `SELECT COUNT(*) < $3 AS ok FROM card_checks
             WHERE terminal_id = $1 AND status IN ('pending', 'verified') AND created_at >= $2`,
            'the terminal is within its password resets of the day',
          ),
          params: [w.terminalId, w.since, w.limit],
        },
      ];
    case 'capOpenSessions':
      // One at a time per terminal: the count, a statement of its own, sees the session of
      // whoever held the lock before.
      return [
        {
          sql: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))',
          params: [`sessions:terminal:${w.terminalId}`],
        },
        {
          sql: holds(
            `SELECT COUNT(*) < $4 AS ok FROM sessions WHERE terminal_id = $1 AND created_at >= $2
               AND state IN ('awaiting_order', 'awaiting_confirmation', 'awaiting_authentication')
               AND expires_at > $3`,
            'the terminal has room for another open session',
          ),
          params: [w.terminalId, w.since, w.now, w.limit],
        },
      ];
    case 'insertDelivery':
      return [insertSql('event_deliveries', { ...w.row })];
    case 'bindCard':
      return [
        {
          sql: `INSERT INTO card_bindings (terminal_id, card_hash, created_at) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING`,
          params: [w.terminalId, w.cardHash, w.at],
        },
      ];
    case 'answer':
      return [{ sql: FINISH_IDEMPOTENT, params: [w.status, w.body, w.scope, w.key] }];
  }
}

/** A value as the protocol carries it: text, or NULL; numbers must be finite. */
function wireValue(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`not a storable number: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return v;
  throw new Error(`not a storable value: ${typeof v}`);
}

interface Named {
  name: string;
  text: string;
  values: (string | null)[];
}

/** What `pg` lends a submitted query: the connection's protocol messages (pg-protocol). */
interface Wire {
  stream: { cork?: () => void; uncork?: () => void };
  close(target: { type: 'S'; name: string }): void;
  parse(query: { name: string; text: string; types: number[] }): void;
  bind(config: { statement: string; values: (string | null)[] }): void;
  describe(target: { type: 'P'; name: string }): void;
  execute(config: object): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

/** The statement names each connection has parsed, as far as a pipeline knows for sure. */
const parsedOn = new WeakMap<Wire, Set<string>>();

/**
 * Statements run as one transaction in one round trip, through node-postgres's submittable
 * interface: for each, Bind and Execute of its named prepared statement (Close and Parse first
 * where the connection may not have it), then a single Sync. Until that Sync the server runs them
 * as one implicit transaction; at the first error it undoes it and skips the rest. Each Execute
 * takes its own snapshot (READ COMMITTED), so a count after an advisory lock sees the commits of
 * whoever held the lock before.
 */
class Pipeline {
  /** Each statement's rows (when asked for: a Describe goes with each), once all have run. */
  readonly done: Promise<Record<string, unknown>[][]>;
  private settle!: (error?: Error) => void;
  private completed = 0;
  private parsing: number[] = [];
  private connection?: Wire;
  private readonly results: Record<string, unknown>[][];
  private readonly columns: { name: string; parse: (text: string) => unknown }[][] = [];

  constructor(
    private readonly statements: Named[],
    private readonly rows = false,
  ) {
    this.results = statements.map(() => []);
    this.done = new Promise((resolve, reject) => {
      this.settle = (error) => (error ? reject(error) : resolve(this.results));
    });
  }

  submit(connection: Wire): null {
    this.connection = connection;
    const parsed = parsedOn.get(connection) ?? new Set<string>();
    parsedOn.set(connection, parsed);
    connection.stream.cork?.();
    try {
      this.statements.forEach((st, i) => {
        if (!parsed.has(st.name)) {
          // Closing a statement the server does not have is no error: this makes it anew either way.
          connection.close({ type: 'S', name: st.name });
          connection.parse({ name: st.name, text: st.text, types: [] });
          this.parsing.push(i);
        }
        connection.bind({ statement: st.name, values: st.values });
        if (this.rows) connection.describe({ type: 'P', name: '' });
        connection.execute({});
      });
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleCommandComplete(): void {
    this.completed++;
  }
  handleError(error: Error): void {
    this.finish(error);
  }
  handleReadyForQuery(): void {
    this.finish();
  }
  // Rows arrive before their statement's CommandComplete: they are the statement's at `completed`.
  handleRowDescription(message: { fields: { name: string; dataTypeID: number }[] }): void {
    this.columns[this.completed] = message.fields.map((f) => ({
      name: f.name,
      parse: parsers.getTypeParser(f.dataTypeID, 'text') as (text: string) => unknown,
    }));
  }
  handleDataRow(message: { fields: (string | null)[] }): void {
    const columns = this.columns[this.completed];
    if (!columns) return;
    const row: Record<string, unknown> = {};
    columns.forEach((c, i) => {
      const text = message.fields[i];
      row[c.name] = text === null ? null : c.parse(text);
    });
    this.results[this.completed].push(row);
  }
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(connection: Wire): void {
    connection.sendCopyFail('no COPY in a commit');
  }
  handleCopyData(): void {}

  private finished = false;
  private finish(error?: Error): void {
    if (this.finished) return;
    this.finished = true;
    // Parsed for sure: every statement that completed. The one that failed, and those the server
    // skipped after it, are made anew next time.
    const parsed = this.connection && parsedOn.get(this.connection);
    if (parsed)
      for (const i of this.parsing) if (i < this.completed) parsed.add(this.statements[i].name);
    this.settle(error);
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
