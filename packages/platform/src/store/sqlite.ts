import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync } from 'node:fs';
import {
  HISTORY_BY_CURRENCY,
  cardChecksTable,
  SAME_SHOPPER,
  clearAuthFailures,
  authFailureSql,
  releaseLeaseSql,
  toRow,
  STATEMENT_PAGE,
  DAY_FIGURES,
  deliveriesAndStatements,
  TERMINAL_IDENTITY,
  HISTORY_FROM_PAYMENTS,
  columnName,
  columnValue,
  orderQuerySql,
  rowReader,
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
  type DayFigures,
  type PaymentRow,
  type SessionFacts,
  type SessionFactsWanted,
  type SessionRow,
  type Store,
  type TerminalRow,
  type Write,
} from './types';

/** Schema migrations, applied in order; `PRAGMA user_version` records how far a database is. */
const MIGRATIONS: string[] = [
  `CREATE TABLE terminals (
     id TEXT PRIMARY KEY, secret_sealed TEXT NOT NULL, pin_key_sealed TEXT NOT NULL, salt TEXT NOT NULL,
     iterations INTEGER NOT NULL, biometric_scheme TEXT, biometric_public_key TEXT, device_label TEXT,
     created_at TEXT NOT NULL, auth_failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE nonces (terminal_id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL,
     PRIMARY KEY (terminal_id, nonce)) WITHOUT ROWID;
   CREATE INDEX nonces_expiry ON nonces (expires_at);
   CREATE TABLE idempotency (terminal_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
     status INTEGER, body TEXT, expires_at INTEGER NOT NULL, PRIMARY KEY (terminal_id, key)) WITHOUT ROWID;
   CREATE TABLE merchant_orders (order_ref TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, merchant_order_id TEXT NOT NULL,
     amount INTEGER NOT NULL, currency TEXT NOT NULL, description TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL,
     payment_id TEXT, UNIQUE (merchant_id, merchant_order_id));
   CREATE TABLE sessions (id TEXT PRIMARY KEY, terminal_id TEXT NOT NULL, merchant_id TEXT NOT NULL, order_ref TEXT,
     state TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, order_id TEXT UNIQUE, amount INTEGER,
     currency TEXT, description TEXT, card_brand TEXT, card_last4 TEXT, card_masked TEXT, pan_sealed TEXT,
     confirm_token TEXT, challenge TEXT, methods TEXT, required INTEGER, payment_id TEXT, error TEXT,
     version INTEGER NOT NULL);
   CREATE TABLE payments (id TEXT PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, terminal_id TEXT NOT NULL,
     merchant_id TEXT NOT NULL, order_id TEXT NOT NULL UNIQUE, order_ref TEXT, amount INTEGER NOT NULL,
     rate_bps INTEGER NOT NULL, amount_off INTEGER NOT NULL, charged INTEGER NOT NULL, currency TEXT NOT NULL,
     status TEXT NOT NULL, charge_id TEXT NOT NULL UNIQUE, decline_code TEXT, created_at INTEGER NOT NULL,
     next_check_at INTEGER, checks INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL);
   CREATE INDEX payments_terminal ON payments (terminal_id, status);
   CREATE INDEX payments_due ON payments (status, next_check_at);`,
  // 2: the merchant-order claim, card bindings, declines by card, the authentication lease.
  `ALTER TABLE merchant_orders ADD COLUMN claim_payment_id TEXT;
   UPDATE merchant_orders SET claim_payment_id = payment_id WHERE status = 'paid';
   ALTER TABLE sessions ADD COLUMN card_hash TEXT;
   ALTER TABLE sessions ADD COLUMN mandatory TEXT;
   ALTER TABLE payments ADD COLUMN card_hash TEXT;
   ALTER TABLE payments ADD COLUMN cvv_given INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX payments_card ON payments (card_hash, status, created_at);
   CREATE INDEX payments_terminal_time ON payments (terminal_id, status, created_at);
   ALTER TABLE terminals ADD COLUMN auth_lease_until INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE card_bindings (terminal_id TEXT NOT NULL, card_hash TEXT NOT NULL, created_at INTEGER NOT NULL,
     PRIMARY KEY (terminal_id, card_hash)) WITHOUT ROWID;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
  // 3: the registration limit, shared by every process on the database.
  `CREATE TABLE rate_limits (key TEXT NOT NULL, window_start INTEGER NOT NULL, hits INTEGER NOT NULL,
     PRIMARY KEY (key, window_start)) WITHOUT ROWID;`,
  // 4: refunds, and what of each payment is set aside for them.
  `ALTER TABLE merchant_orders ADD COLUMN refund_reserved INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE refunds (id TEXT PRIMARY KEY, order_ref TEXT NOT NULL, payment_id TEXT NOT NULL,
     merchant_id TEXT NOT NULL, terminal_id TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
     reason TEXT, status TEXT NOT NULL, failure_code TEXT, created_at TEXT NOT NULL, next_check_at INTEGER,
     checks INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL);
   CREATE INDEX refunds_payment ON refunds (payment_id, created_at);
   CREATE INDEX refunds_terminal ON refunds (terminal_id, status);
   CREATE INDEX refunds_due ON refunds (status, next_check_at);`,
  // 5: the notification outbox; seq orders a merchant's events as they were made.
  `CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
     merchant_id TEXT NOT NULL, type TEXT NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL,
     delivery TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER);
   CREATE INDEX events_merchant ON events (merchant_id, seq);
   CREATE INDEX events_due ON events (delivery, next_attempt_at);`,
  // 6: what a payment shows its merchant (the card's brand and last four, when it was decided),
  // and a merchant order's attempts found by their order.
  `ALTER TABLE payments ADD COLUMN card_brand TEXT;
   ALTER TABLE payments ADD COLUMN card_last4 TEXT;
   ALTER TABLE payments ADD COLUMN decided_at INTEGER;
   CREATE INDEX payments_order_ref ON payments (order_ref, created_at);`,
  // 7: the loyalty history kept as a running total beside the terminal, moved in the transaction
  // that decides each payment and refund, instead of summed over every payment at each one.
  `ALTER TABLE terminals ADD COLUMN history_total INTEGER NOT NULL DEFAULT 0;
   ${HISTORY_FROM_PAYMENTS}`,
  // 8: idempotency records in a table with row ids. A record keeps its answer's body (hundreds of
  // bytes), and writing that into a WITHOUT ROWID table, whose rows live in its key's B-tree,
  // cost six times as much (13 µs against 2, measured); pruning them finds them by expiry.
  `CREATE TABLE idempotency_8 (terminal_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
     status INTEGER, body TEXT, expires_at INTEGER NOT NULL, UNIQUE (terminal_id, key));
   INSERT INTO idempotency_8 (terminal_id, key, fingerprint, status, body, expires_at)
     SELECT terminal_id, key, fingerprint, status, body, expires_at FROM idempotency;
   DROP TABLE idempotency;
   ALTER TABLE idempotency_8 RENAME TO idempotency;
   CREATE INDEX idempotency_expiry ON idempotency (expires_at);`,
  // 9: the loyalty history per currency (a payment in one currency never moves another's), in
  // place of the one running total of 7.
  `CREATE TABLE terminal_history (terminal_id TEXT NOT NULL, currency TEXT NOT NULL,
     total INTEGER NOT NULL, PRIMARY KEY (terminal_id, currency)) WITHOUT ROWID;
   ${HISTORY_BY_CURRENCY};
   ALTER TABLE terminals DROP COLUMN history_total;`,
  // 10: a terminal's sessions found by their terminal, to cap how many it keeps open. Neither
  // column ever changes, so the index costs a session's insert only, never its state changes.
  `CREATE INDEX sessions_terminal ON sessions (terminal_id, created_at);`,
  // 11: CVV checks of password resets (PROTOCOL.md §5.7), card-testing attempts like payments.
  `${cardChecksTable('INTEGER')};`,
  // 12: who the shopper is in WeChat (PROTOCOL.md §2.1).
  `${TERMINAL_IDENTITY};`,
  // 13: delivery attempts of events, and when each refund was decided (statements).
  `${deliveriesAndStatements('INTEGER', 'CAST(ROUND((julianday(created_at) - 2440587.5) * 86400000) AS INTEGER)')};`,
  // 14: each terminal's cryptographic suite (PROTOCOL.md §3.1; null is cardpay-v1).
  `ALTER TABLE terminals ADD COLUMN suite TEXT;`,
  // 15: card-testing attempts and a terminal's open sessions counted from partial indexes of
  // attempts (declined or pending payments) and of open sessions, as PostgreSQL's 14 and 15. With
  // the status a key column, SQLite walked every entry of the card's or terminal's payments for
  // the `IN` of the second part of a union: 400 µs a count for 300 payments a card, 4 µs now. The
  // three indexes dropped had no other reader; a payment's insert and decision now touch two
  // indexes fewer.
  `CREATE INDEX payments_attempts_terminal ON payments (terminal_id, created_at)
     WHERE status IN ('declined', 'pending');
   CREATE INDEX payments_attempts_card ON payments (card_hash, created_at)
     WHERE status IN ('declined', 'pending');
   DROP INDEX payments_terminal;
   DROP INDEX payments_card;
   DROP INDEX payments_terminal_time;
   CREATE INDEX sessions_open_terminal ON sessions (terminal_id, created_at)
     WHERE state IN ('awaiting_order', 'awaiting_confirmation', 'awaiting_authentication');
   DROP INDEX sessions_terminal;`,
];

/** The embedded default: better-sqlite3 (v12) in WAL mode, a file or `:memory:`. */
export class SqliteStore implements Store {
  readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly readers = new Map<string, Reader>();
  /** INSERT and UPDATE statements by table and the fields they set. */
  private readonly writers = new Map<string, Database.Statement>();
  /** Runs one unit of writes: its own transaction, or a savepoint inside a batch's. */
  private readonly unit: (run: () => unknown) => unknown;
  private readonly batchTx: (batch: Pending[]) => void;
  /** Writes waiting for the next batch (see {@link SqliteStore.write}). */
  private pending: Pending[] = [];
  /** How long a write may wait for a lock another process holds before it fails (503). */
  private readonly busyTimeoutMs: number;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly location: string,
    options: { busyTimeoutMs?: number } = {},
  ) {
    try {
      // Made readable by the platform's user alone, before SQLite opens it: its -wal and -shm
      // files take the database file's permissions.
      if (location !== ':memory:' && !existsSync(location))
        closeSync(openSync(location, 'a', 0o600));
      this.db = new Database(location, { fileMustExist: false });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000));
      // At start, waiting for a lock blocks nothing else: the migrations may wait the whole time.
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
      this.migrate();
      // Serving, a wait inside SQLite would stop the event loop (better-sqlite3 is synchronous):
      // a locked write waits a few milliseconds there, then again on a timer (see `flush`).
      this.db.pragma(`busy_timeout = ${Math.min(this.busyTimeoutMs, BUSY_STEP_MS)}`);
      // Made once: better-sqlite3 builds a new wrapper function on every `transaction()` call.
      this.unit = this.db.transaction((run: () => unknown) => run());
      this.batchTx = this.db.transaction((batch: Pending[]) => {
        for (const w of batch) this.apply(w, true);
      }).immediate;
    } catch (error) {
      throw new StoreError(`cannot open the database at ${location}: ${(error as Error).message}`);
    }
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `the database is at schema version ${current}, newer than this server (${MIGRATIONS.length})`,
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /**
   * Group commit. Every write of a turn of the event loop (a request's nonce, its idempotency
   * record, its state change, another's answer being kept) is queued, and the queue applied at
   * the end of the turn in one transaction; a write of several changes runs in a savepoint of
   * its own, so one that fails (a lost version race) is undone alone. A write's promise settles
   * once the transaction has committed, so nothing is answered before it is durable. Under load,
   * many requests share one commit, the dearest part of a write to a database file; alone, a
   * request waits one turn. Reads go straight to the database and see committed rows only.
   */
  private write<T>(run: () => T, several = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        run,
        several,
        resolve: resolve as (v: unknown) => void,
        reject,
        queuedAt: this.onWait ? performance.now() : 0,
      });
      if (this.pending.length === 1) setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      if (!this.db.open) throw new Error('the database is closed');
      // Alone, a write needs no batch: one statement commits by itself, several in a transaction
      // of their own (the savepoint's wrapper begins one outside a transaction).
      if (batch.length > 1) this.batchTx(batch);
      else this.apply(batch[0], false);
    } catch (error) {
      if (isBusy(error)) return this.waitForLock(batch);
      // The commit itself failed: none of the batch was written.
      for (const w of batch) w.reject(error);
      return;
    }
    const alone = batch.length === 1 ? batch[0].result : undefined;
    if (alone && !alone.ok && isBusy(alone.error)) return this.waitForLock(batch);
    if (this.onCommit) {
      // A write that lost its race or found its nonce used answers false: it carried nothing.
      let made = 0;
      for (const w of batch) if (w.result!.ok && w.result!.value !== false) made++;
      if (made > 0) this.onCommit(made);
    }
    const done = this.onWait ? performance.now() : 0;
    for (const w of batch) {
      const r = w.result!;
      if (r.ok) w.resolve(r.value);
      else w.reject(r.error);
      this.onWait?.('write', (done - w.queuedAt) / 1000);
    }
  };

  onWait?: (kind: DatabaseWait, seconds: number) => void;
  onCommit?: (writes: number) => void;

  /**
   * Another process holds the database's write lock (a backup, a second platform on the file):
   * nothing of the batch was written. It is tried again on a timer, the event loop serving
   * everything else meanwhile (health, reads); a write that has waited `busyTimeoutMs` fails as
   * unavailable (answered `503`, retryable).
   */
  private waitForLock(batch: Pending[]): void {
    const now = Date.now();
    const waiting: Pending[] = [];
    for (const w of batch) {
      w.result = undefined;
      w.lockedSince ??= now;
      if (now - w.lockedSince >= this.busyTimeoutMs)
        w.reject(new StoreUnavailable('the database is locked by another process'));
      else waiting.push(w);
    }
    this.pending = waiting.concat(this.pending);
    if (this.pending.length > 0 && !this.retryTimer)
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.flush();
      }, BUSY_STEP_MS);
  }

  private apply(w: Pending, inBatch: boolean): void {
    try {
      w.result = { ok: true, value: w.several ? this.unit(w.run) : w.run() };
    } catch (error) {
      // Some failures (a full disk, an I/O error) end the batch's whole transaction: then none of
      // it was written, and every write of it fails.
      if (inBatch && !this.db.inTransaction) throw error;
      w.result = { ok: false, error };
    }
  }

  /**
   * A statement whose rows come back as arrays, with the reader that turns one into the domain's
   * record, both made once per SQL text: no per-row name conversion.
   */
  private reader(sql: string): Reader {
    let r = this.readers.get(sql);
    if (!r) {
      const statement = this.db.prepare(sql).raw(true);
      r = { statement, read: rowReader(statement.columns().map((c) => c.name)) };
      this.readers.set(sql, r);
    }
    return r;
  }
  private row<T>(sql: string, ...params: unknown[]): T | undefined {
    const r = this.reader(sql);
    const values = r.statement.get(...params) as unknown[] | undefined;
    return values ? (r.read(values) as T) : undefined;
  }
  private rows<T>(sql: string, ...params: unknown[]): T[] {
    const r = this.reader(sql);
    return (r.statement.all(...params) as unknown[][]).map((v) => r.read(v) as T);
  }

  /** INSERT of a record's fields; the statement is kept per table and set of fields. */
  private insert(table: string, record: Record<string, unknown>): void {
    const fields = Object.keys(record);
    const shape = `${table}(${fields.join()})`;
    let st = this.writers.get(shape);
    if (!st) {
      const names = fields.map(columnName);
      st = this.db.prepare(
        `INSERT INTO ${table} (${names.join(',')}) VALUES (${names.map(() => '?').join(',')})`,
      );
      this.writers.set(shape, st);
    }
    st.run(fields.map((f) => columnValue(f, record[f])));
  }

  /** UPDATE … SET patch WHERE key = ? [AND version = ?], bumping the version when versioned. */
  private update(
    table: string,
    keyColumn: string,
    key: string,
    patch: Record<string, unknown>,
    version?: number,
  ): boolean {
    const fields = Object.keys(patch);
    const versioned = version !== undefined;
    const shape = `${table}.${keyColumn}${versioned ? '@v' : ''}(${fields.join()})`;
    let st = this.writers.get(shape);
    if (!st) {
      const sets = fields.map((f) => `${columnName(f)} = ?`);
      if (versioned) sets.push('version = version + 1');
      st = this.db.prepare(
        `UPDATE ${table} SET ${sets.join(', ')} WHERE ${keyColumn} = ?${versioned ? ' AND version = ?' : ''}`,
      );
      this.writers.set(shape, st);
    }
    const values = fields.map((f) => columnValue(f, patch[f]));
    values.push(key);
    if (versioned) values.push(version);
    return st.run(values).changes === 1;
  }

  async insertTerminal(row: TerminalRow) {
    await this.write(() => this.insert('terminals', { ...row }));
  }
  async getTerminal(id: string) {
    return this.row<TerminalRow>('SELECT * FROM terminals WHERE id = ?', id);
  }
  acquireAuthLease(id: string, now: number, until: number) {
    return this.write(() => this.acquireAuthLeaseNow(id, now, until));
  }
  private acquireAuthLeaseNow(id: string, now: number, until: number): AuthLease {
    // One statement: the lease is taken only if free and the terminal not locked; the row read
    // back tells which it was when it is not taken.
    const taken = this.stmt(
      'UPDATE terminals SET auth_lease_until = ? WHERE id = ? AND auth_lease_until <= ? AND locked_until <= ? RETURNING auth_failures',
    ).get(until, id, now, now) as { auth_failures: number } | undefined;
    if (taken) return { kind: 'ok' as const, failures: taken.auth_failures, until };
    const row = this.stmt('SELECT locked_until FROM terminals WHERE id = ?').get(id) as
      { locked_until: number } | undefined;
    if (row && row.locked_until > now)
      return { kind: 'locked' as const, lockedUntil: row.locked_until };
    return { kind: 'busy' as const };
  }
  async isCardBound(terminalId: string, cardHash: string) {
    // Bound to this terminal, or to another of the same shopper in the same app (its openpid).
    return !!this.stmt(
      `SELECT 1 FROM card_bindings WHERE card_hash = @card AND terminal_id IN ${SAME_SHOPPER('@t')}`,
    ).get({ card: cardHash, t: terminalId });
  }
  sessionWith(id: string, want: SessionFactsWanted) {
    return this.readSessionWith(id, want);
  }
  /** The read itself, made for a step that asks (above) or with a request's begin (below). */
  private async readSessionWith(id: string, want: SessionFactsWanted) {
    // Synchronous reads of one process: taken together, nothing comes between them.
    const session = await this.getSession(id);
    if (!session) return undefined;
    const t = session.terminalId;
    const card = session.cardHash;
    const currency = want.history === true ? session.currency : want.history;
    const facts: SessionFacts = {};
    if (want.terminal) facts.terminal = await this.getTerminal(t);
    if (want.cardBound && card) facts.cardBound = await this.isCardBound(t, card);
    if (want.attemptsSince !== undefined && card)
      facts.attempts = this.recentAttemptsNow(t, card, want.attemptsSince);
    if (currency) facts.history = await this.historyTotal(t, currency);
    if (want.order && session.orderRef) facts.order = this.merchantOrder(session.orderRef);
    return { session, facts };
  }
  async recentAttempts(terminalId: string, cardHash: string, since: number) {
    return this.recentAttemptsNow(terminalId, cardHash, since);
  }
  private recentAttemptsNow(terminalId: string, cardHash: string, since: number) {
    return this.stmt(
      `SELECT c.n AS card, c.oldest AS cardOldest, t.n AS terminal, t.oldest AS terminalOldest FROM
         (SELECT COUNT(*) AS n, COALESCE(MIN(created_at), 0) AS oldest FROM (
            SELECT created_at FROM payments
              WHERE card_hash = ? AND status IN ('declined', 'pending') AND created_at >= ?
            UNION ALL SELECT created_at FROM card_checks
              WHERE card_hash = ? AND status IN ('declined', 'pending') AND created_at >= ?)) AS c,
         (SELECT COUNT(*) AS n, COALESCE(MIN(created_at), 0) AS oldest FROM (
            SELECT created_at FROM payments
              WHERE terminal_id = ? AND status IN ('declined', 'pending') AND created_at >= ?
            UNION ALL SELECT created_at FROM card_checks
              WHERE terminal_id = ? AND status IN ('declined', 'pending') AND created_at >= ?)) AS t`,
    ).get(cardHash, since, cardHash, since, terminalId, since, terminalId, since) as {
      card: number;
      cardOldest: number;
      terminal: number;
      terminalOldest: number;
    };
  }
  useNonce(terminalId: string, nonce: string, now: number, expiresAt: number) {
    return this.write(() => this.useNonceNow(terminalId, nonce, now, expiresAt));
  }
  private useNonceNow(terminalId: string, nonce: string, now: number, expiresAt: number) {
    // One statement: a new nonce is inserted, an expired one taken over, a live one refused.
    const sql =
      'INSERT INTO nonces (terminal_id, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT (terminal_id, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?';
    return this.stmt(sql).run(terminalId, nonce, expiresAt, now).changes === 1;
  }
  async useNonceAndBegin(
    b: RequestBegin,
    read?: ReadWithBegin,
  ): Promise<BeginWithRead | { kind: 'nonce_reused' }> {
    const { terminalId, now } = b;
    // One write of two statements; no savepoint: a nonce refused writes nothing, and a nonce
    // recorded before a failed second statement is simply spent (the client signs anew).
    const begun = await this.write((): IdempotencyBegin | { kind: 'nonce_reused' } =>
      this.useNonceNow(terminalId, b.nonce, now, b.nonceExpiresAt)
        ? this.beginIdempotentNow(terminalId, b.key, b.fingerprint, now, b.ttlMs, b.leaseMs)
        : { kind: 'nonce_reused' },
    );
    // In process, a read costs no round trip: it follows the begin (and the lease, when asked).
    if (begun.kind !== 'new' || !read) return begun;
    if ('order' in read) return { kind: 'new', read: { order: this.merchantOrder(read.order) } };
    const lease = read.lease && (await this.acquireAuthLease(terminalId, now, read.lease.until));
    const session = await this.readSessionWith(read.session, read.want);
    return { kind: 'new', read: lease ? { session, lease } : { session } };
  }
  async beginWithCommit(b: RequestBegin, writes: Write[]) {
    try {
      // One unit in a savepoint: a nonce used or a key not new undoes it as a lost race would.
      return await this.write(() => {
        const begun =
          this.useNonceNow(b.terminalId, b.nonce, b.now, b.nonceExpiresAt) &&
          this.beginIdempotentNow(b.terminalId, b.key, b.fingerprint, b.now, b.ttlMs, b.leaseMs)
            .kind === 'new';
        if (!begun) throw new VersionConflict();
        return this.commitTxBody(writes);
      }, true);
    } catch (error) {
      if (error instanceof VersionConflict) return false;
      throw error;
    }
  }
  async nonceSeen(terminalId: string, nonce: string, now: number) {
    return !!this.stmt(
      'SELECT 1 FROM nonces WHERE terminal_id = ? AND nonce = ? AND expires_at > ?',
    ).get(terminalId, nonce, now);
  }
  async beginIdempotent(
    terminalId: string,
    key: string,
    fingerprint: string,
    now: number,
    ttlMs: number,
    leaseMs: number,
  ): Promise<IdempotencyBegin> {
    return this.write(() =>
      this.beginIdempotentNow(terminalId, key, fingerprint, now, ttlMs, leaseMs),
    );
  }
  private beginIdempotentNow(
    terminalId: string,
    key: string,
    fingerprint: string,
    now: number,
    ttlMs: number,
    leaseMs: number,
  ): IdempotencyBegin {
    // One statement, as in the PostgreSQL store: a new key is inserted; an expired record, or one
    // left in progress past its lease by the same request, is taken over; anything else stays
    // and is read back to say why.
    const taken = this.stmt(
      `INSERT INTO idempotency (terminal_id, key, fingerprint, status, body, expires_at)
       VALUES (?, ?, ?, NULL, NULL, ?)
       ON CONFLICT (terminal_id, key) DO UPDATE
         SET fingerprint = excluded.fingerprint, status = NULL, body = NULL, expires_at = excluded.expires_at
         WHERE idempotency.expires_at <= ?
            OR (idempotency.status IS NULL AND idempotency.fingerprint = excluded.fingerprint
                AND idempotency.expires_at - ? <= ?)`,
    ).run(terminalId, key, fingerprint, now + ttlMs, now, ttlMs, now - leaseMs).changes;
    if (taken === 1) return { kind: 'new' };
    const row = this.stmt(
      'SELECT fingerprint, status, body FROM idempotency WHERE terminal_id = ? AND key = ?',
    ).get(terminalId, key) as
      { fingerprint: string; status: number | null; body: string | null } | undefined;
    if (!row) return { kind: 'in_progress' }; // abandoned just now by another process: try again
    if (row.fingerprint !== fingerprint) return { kind: 'conflict' };
    if (row.status === null || row.body === null) return { kind: 'in_progress' };
    return { kind: 'replay', status: row.status, body: row.body };
  }
  async finishIdempotent(terminalId: string, key: string, status: number, body: string) {
    await this.write(() => this.stmt(FINISH_IDEMPOTENT).run(status, body, terminalId, key));
  }
  async abandonIdempotent(terminalId: string, key: string) {
    await this.write(() =>
      this.stmt('DELETE FROM idempotency WHERE terminal_id = ? AND key = ? AND status IS NULL').run(
        terminalId,
        key,
      ),
    );
  }
  async legacyIdempotency(limit: number, after = { scope: '', key: '' }) {
    return (
      this.stmt(
        `SELECT terminal_id, key, fingerprint, body FROM idempotency
         WHERE (terminal_id, key) > (?, ?) AND ${LEGACY_IDEMPOTENCY} ORDER BY terminal_id, key LIMIT ?`,
      ).all(after.scope, after.key, limit) as {
        terminal_id: string;
        key: string;
        fingerprint: string;
        body: string | null;
      }[]
    ).map((r) => ({ scope: r.terminal_id, key: r.key, fingerprint: r.fingerprint, body: r.body }));
  }
  async rewriteIdempotency(
    rows: (LegacyIdempotency & { newFingerprint: string; newBody: string | null })[],
  ) {
    // Overwritten bytes are zeroed in the pages they leave (and the setting is put back after).
    const secure = this.db.pragma('secure_delete', { simple: true }) as number;
    this.db.pragma('secure_delete = ON');
    try {
      await this.write(() => {
        const st = this.stmt(
          'UPDATE idempotency SET fingerprint = ?, body = ? WHERE terminal_id = ? AND key = ? AND fingerprint = ?',
        );
        for (const r of rows) st.run(r.newFingerprint, r.newBody, r.scope, r.key, r.fingerprint);
      }, true);
    } finally {
      this.db.pragma(`secure_delete = ${secure}`);
    }
  }
  async scrub() {
    if (this.location === ':memory:') return;
    // VACUUM rebuilds the file from its live rows (freed pages go with it); the checkpoint then
    // copies it home and empties the WAL, whose old frames held earlier versions of the pages.
    this.db.exec('VACUUM');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }
  async backlog(now: number) {
    const row = this.stmt(
      `SELECT (SELECT COUNT(*) FROM payments WHERE status = 'pending') AS payments,
              (SELECT COUNT(*) FROM refunds WHERE status = 'pending') AS refunds,
              (SELECT COUNT(*) FROM events WHERE delivery = 'pending') AS events,
              (SELECT MIN(created_at) FROM events WHERE delivery = 'pending') AS oldest`,
    ).get() as { payments: number; refunds: number; events: number; oldest: string | null };
    return {
      payments: row.payments,
      refunds: row.refunds,
      events: row.events,
      oldestEventAgeMs: row.oldest ? Math.max(0, now - Date.parse(row.oldest)) : 0,
    };
  }
  async lastPaymentOfOrder(orderRef: string) {
    return this.row<PaymentRow>(
      'SELECT * FROM payments WHERE order_ref = ? ORDER BY created_at DESC, id DESC LIMIT 1',
      orderRef,
    );
  }
  async getSession(id: string) {
    return this.row<SessionRow>('SELECT * FROM sessions WHERE id = ?', id);
  }
  async getPayment(id: string) {
    return this.row<PaymentRow>('SELECT * FROM payments WHERE id = ?', id);
  }
  claimDuePayments(now: number, leaseMs: number, limit: number) {
    return this.claimDue<PaymentRow>('payments', now, leaseMs, limit);
  }
  /** Pending payments or refunds due a check, each leased until `now + leaseMs`. */
  private claimDue<T>(table: 'payments' | 'refunds', now: number, leaseMs: number, limit: number) {
    return this.write(() =>
      this.rows<T>(
        `UPDATE ${table} SET next_check_at = ? WHERE id IN (
           SELECT id FROM ${table} WHERE status = 'pending' AND next_check_at <= ?
           ORDER BY next_check_at LIMIT ?) RETURNING *`,
        now + leaseMs,
        now,
        limit,
      ),
    );
  }
  async takeRateLimit(key: string, now: number, limit: number, windowMs: number) {
    const window = Math.floor(now / windowMs) * windowMs;
    const row = await this.write(
      () =>
        this.stmt(
          `INSERT INTO rate_limits (key, window_start, hits) VALUES (?, ?, 1)
       ON CONFLICT (key, window_start) DO UPDATE SET hits = hits + 1 RETURNING hits`,
        ).get(key, window) as { hits: number },
    );
    return { allowed: row.hits <= limit, retryAfterMs: window + windowMs - now };
  }
  async historyTotal(terminalId: string, currency: string) {
    // The history of every terminal of this shopper in this app (PROTOCOL.md §2.1, §6).
    const row = this.stmt(
      `SELECT COALESCE(SUM(total), 0) AS total FROM terminal_history
       WHERE currency = @currency AND terminal_id IN ${SAME_SHOPPER('@t')}`,
    ).get({ currency, t: terminalId }) as { total: number };
    return row.total;
  }
  async listEvents(merchantId: string, after: string | undefined, limit: number) {
    return this.rows<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events
       WHERE merchant_id = ? AND seq > COALESCE((SELECT seq FROM events WHERE id = ? AND merchant_id = ?), 0)
       ORDER BY seq LIMIT ?`,
      merchantId,
      after ?? '',
      merchantId,
      limit,
    );
  }
  async getEvent(id: string) {
    return this.row<EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE id = ?`, id);
  }
  async listDeliveries(eventId: string, limit: number) {
    return this.rows<DeliveryRow>(
      'SELECT * FROM event_deliveries WHERE event_id = ? ORDER BY at DESC, rowid DESC LIMIT ?',
      eventId,
      limit,
    );
  }
  async statementPage(
    merchantId: string,
    from: number,
    to: number,
    after: { at: number; id: string } | undefined,
    limit: number,
  ) {
    const names = ['m', 'from', 'to', 'at', 'id', 'limit'];
    const sql = STATEMENT_PAGE.replace(/\$(\d)/g, (_, n: string) => `@${names[Number(n) - 1]}`);
    return (
      this.stmt(sql).all({
        m: merchantId,
        from,
        to,
        at: after?.at ?? -1,
        id: after?.id ?? '',
        limit,
      }) as Record<string, unknown>[]
    ).map((r) => toRow<StatementRow>(r)!);
  }
  claimDueEvents(now: number, leaseMs: number, limit: number) {
    return this.write(() =>
      this.rows<EventRow>(
        `UPDATE events SET next_attempt_at = ? WHERE seq IN (
           SELECT seq FROM events WHERE delivery = 'pending' AND next_attempt_at <= ?
           ORDER BY next_attempt_at LIMIT ?)
         RETURNING ${EVENT_COLUMNS}`,
        now + leaseMs,
        now,
        limit,
      ),
    );
  }
  async getRefund(id: string) {
    return this.row<RefundRow>('SELECT * FROM refunds WHERE id = ?', id);
  }
  async listRefunds(paymentId: string) {
    return this.rows<RefundRow>(
      'SELECT * FROM refunds WHERE payment_id = ? ORDER BY created_at, id',
      paymentId,
    );
  }
  claimDueRefunds(now: number, leaseMs: number, limit: number) {
    return this.claimDue<RefundRow>('refunds', now, leaseMs, limit);
  }
  putMerchantOrder(row: MerchantOrderRow) {
    return this.write(() => {
      const existing = this.row<MerchantOrderRow>(
        'SELECT * FROM merchant_orders WHERE merchant_id = ? AND merchant_order_id = ?',
        row.merchantId,
        row.merchantOrderId,
      );
      if (existing) return { row: existing, created: false };
      this.insert('merchant_orders', { ...row });
      return { row, created: true };
    });
  }
  async listMerchantOrders(q: OrderQuery) {
    const { sql, params } = orderQuerySql(q, () => '?');
    return this.rows<MerchantOrderRow>(sql, ...params);
  }
  async dayFigures(merchantId: string, from: number, to: number) {
    const sql = DAY_FIGURES.replace(
      /\$(\d)/g,
      (_, n: string) => `@${['m', 'from', 'to'][Number(n) - 1]}`,
    );
    return this.stmt(sql).all({ m: merchantId, from, to }) as DayFigures[];
  }
  async getMerchantOrder(orderRef: string) {
    return this.merchantOrder(orderRef);
  }
  /** The order itself: what a begin reads for its session is not a read of the session's own. */
  private merchantOrder(orderRef: string) {
    return this.row<MerchantOrderRow>(
      'SELECT * FROM merchant_orders WHERE order_ref = ?',
      orderRef,
    );
  }
  async commit(writes: Write[]) {
    try {
      // The unit's savepoint undoes all of its writes when one of them finds another version.
      return await this.write(() => this.commitTxBody(writes), writes.length > 1);
    } catch (error) {
      if (error instanceof VersionConflict) return false;
      throw error;
    }
  }
  private commitTxBody(writes: Write[]): boolean {
    for (const w of writes) {
      let ok = true;
      switch (w.kind) {
        case 'insertSession':
          this.insert('sessions', { ...w.row });
          break;
        case 'insertPayment':
          this.insert('payments', { ...w.row });
          break;
        case 'updateSession':
          ok = this.update('sessions', 'id', w.id, w.patch, w.version);
          break;
        case 'updatePayment':
          ok = this.update('payments', 'id', w.id, w.patch, w.version);
          break;
        case 'updateTerminal':
          ok = this.update('terminals', 'id', w.id, w.patch);
          break;
        case 'clearAuthFailures':
          this.stmt(clearAuthFailures('?')).run(w.terminalId);
          break;
        case 'updateOrder':
          ok = this.update('merchant_orders', 'order_ref', w.orderRef, w.patch);
          break;
        case 'claimOrder':
          ok =
            this.stmt(
              "UPDATE merchant_orders SET claim_payment_id = ? WHERE order_ref = ? AND claim_payment_id IS NULL AND status IN ('open', 'failed')",
            ).run(w.paymentId, w.orderRef).changes === 1;
          break;
        case 'releaseOrder':
          this.stmt(
            "UPDATE merchant_orders SET claim_payment_id = NULL, status = 'failed' WHERE order_ref = ? AND claim_payment_id = ?",
          ).run(w.orderRef, w.paymentId);
          break;
        case 'authFailure':
          ok =
            this.stmt(authFailureSql('@id', '@max', '@lockUntil', '@lease')).run({
              id: w.terminalId,
              max: w.max,
              lockUntil: w.lockUntil,
              lease: w.lease ?? null,
            }).changes === 1;
          break;
        case 'releaseAuthLease':
          this.stmt(releaseLeaseSql('?', '?')).run(w.terminalId, w.lease);
          break;
        case 'endAuthLease':
          ok = this.stmt(releaseLeaseSql('?', '?')).run(w.terminalId, w.lease).changes === 1;
          break;
        case 'reserveAttempt': {
          // One writer at a time: the count and the payment's insert cannot interleave with another's.
          const n = this.recentAttemptsNow(w.terminalId, w.cardHash, w.since);
          ok = n.card < w.cardLimit && n.terminal < w.terminalLimit;
          break;
        }
        case 'reserveRefund':
          ok =
            this.stmt(
              'UPDATE merchant_orders SET refund_reserved = refund_reserved + ? WHERE order_ref = ? AND refund_reserved + ? <= ?',
            ).run(w.amount, w.orderRef, w.amount, w.limit).changes === 1;
          break;
        case 'releaseRefund':
          this.stmt(
            'UPDATE merchant_orders SET refund_reserved = refund_reserved - ? WHERE order_ref = ?',
          ).run(w.amount, w.orderRef);
          break;
        case 'insertRefund':
          this.insert('refunds', { ...w.row });
          break;
        case 'insertEvent':
          this.insert('events', { ...w.row });
          break;
        case 'updateEvent':
          this.update('events', 'id', w.id, w.patch);
          break;
        case 'insertDelivery':
          this.insert('event_deliveries', { ...w.row });
          break;
        case 'updateRefund':
          ok = this.update('refunds', 'id', w.id, w.patch, w.version);
          break;
        case 'addHistory':
          this.stmt(
            `INSERT INTO terminal_history (terminal_id, currency, total) VALUES (?, ?, ?)
             ON CONFLICT (terminal_id, currency) DO UPDATE SET total = total + excluded.total`,
          ).run(w.terminalId, w.currency, w.amount);
          break;
        case 'insertCardCheck':
          this.insert('card_checks', { ...w.row });
          break;
        case 'updateCardCheck':
          this.update('card_checks', 'id', w.id, w.patch);
          break;
        case 'capResets':
          ok =
            (
              this.stmt(
                "SELECT COUNT(*) AS n FROM card_checks WHERE terminal_id = ? AND status IN ('pending', 'verified') AND created_at >= ?",
              ).get(w.terminalId, w.since) as { n: number }
            ).n < w.limit;
          break;
        case 'capOpenSessions':
          ok =
            (this.stmt(OPEN_SESSIONS).get(w.terminalId, w.since, w.now) as { n: number }).n <
            w.limit;
          break;
        case 'bindCard':
          this.stmt(
            'INSERT OR IGNORE INTO card_bindings (terminal_id, card_hash, created_at) VALUES (?, ?, ?)',
          ).run(w.terminalId, w.cardHash, w.at);
          break;
        case 'answer':
          this.stmt(FINISH_IDEMPOTENT).run(w.status, w.body, w.scope, w.key);
          break;
      }
      if (!ok) throw new VersionConflict();
    }
    return true;
  }
  async prune(now: number, retainBefore: number) {
    const expired = this.stmt(
      `UPDATE sessions SET state = 'expired', pan_sealed = NULL, challenge = NULL, confirm_token = NULL,
         version = version + 1
       WHERE state IN ('awaiting_order', 'awaiting_confirmation', 'awaiting_authentication') AND expires_at < ?`,
    ).run(now).changes;
    await this.deleteInChunks('nonces', 'terminal_id, nonce', 'expires_at <= ?', now);
    await this.deleteInChunks('idempotency', 'rowid', 'expires_at <= ?', now);
    await this.deleteInChunks(
      'rate_limits',
      'key, window_start',
      'window_start < ?',
      now - KEPT_MS.rateLimits,
    );
    await this.deleteInChunks('card_checks', 'rowid', 'created_at < ?', now - KEPT_MS.cardChecks);
    await this.deleteInChunks('event_deliveries', 'rowid', 'at < ?', now - KEPT_MS.eventDeliveries);
    await this.deleteInChunks(
      'sessions',
      'rowid',
      `payment_id IS NULL AND state IN ('expired', 'cancelled', 'failed') AND expires_at < ?`,
      retainBefore,
    );
    return { expired, pruned: true };
  }

  /**
   * Deletes the rows of `table` that `where` selects, PRUNE_CHUNK at a time, and lets the event
   * loop run between two chunks. A busy platform expires thousands of nonces and idempotency
   * records a second, each in a random page of its table's key (a client's random nonce and
   * key): deleted in one statement, a second's worth held the event loop for up to 75 ms on a
   * database file (2,000 nonces, measured; about 20 ms in chunks), and every request waited behind it.
   */
  private async deleteInChunks(table: string, key: string, where: string, ...params: unknown[]) {
    const statement = this.stmt(
      `DELETE FROM ${table} WHERE (${key}) IN (SELECT ${key} FROM ${table} WHERE ${where} LIMIT ${PRUNE_CHUNK})`,
    );
    while (this.db.open && statement.run(...params).changes === PRUNE_CHUNK)
      await new Promise((resolve) => setImmediate(resolve));
  }
  async getMeta(key: string) {
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as
      { value: string } | undefined;
    return row?.value;
  }
  async putMeta(key: string, value: string) {
    this.stmt('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }
  async close() {
    clearTimeout(this.retryTimer);
    // What is queued is written first.
    if (this.pending.length && this.db.open) this.flush();
    if (this.db.open) this.db.close();
  }
}

class VersionConflict extends Error {}

/** An idempotency record written before fingerprints were keyed or answers sealed. */
const LEGACY_IDEMPOTENCY =
  "(instr(fingerprint, ' ') > 0 OR (body IS NOT NULL AND substr(body, 1, 3) <> 'v1.'))";

interface Reader {
  statement: Database.Statement;
  read: (values: unknown[]) => Record<string, unknown>;
}

const EVENT_COLUMNS =
  'id, merchant_id, type, created_at, body, delivery, attempts, next_attempt_at';

interface Pending {
  run: () => unknown;
  /**
   * The write makes more than one change, undone together by a savepoint if one fails. A single
   * statement needs none: SQLite undoes a failed statement alone.
   */
  several: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  result?: { ok: true; value: unknown } | { ok: false; error: unknown };
  /** When it first found the database locked by another process. */
  lockedSince?: number;
  /** `performance.now()` when it was queued, when someone is told of waits. */
  queuedAt: number;
}

/** How long one try may wait inside SQLite for another process's lock, blocking the event loop. */
const BUSY_STEP_MS = 20;
/** Rows deleted in one statement when pruning: a few milliseconds' work (see `deleteInChunks`). */
const PRUNE_CHUNK = 256;

/** A terminal's sessions made since ?, open (before processing) and unexpired at ?. */
const OPEN_SESSIONS = `SELECT COUNT(*) AS n FROM sessions WHERE terminal_id = ? AND created_at >= ?
  AND state IN ('awaiting_order', 'awaiting_confirmation', 'awaiting_authentication') AND expires_at > ?`;

/** A request's answer onto its idempotency record (alone, or as a commit's `answer` write). */
const FINISH_IDEMPOTENT =
  'UPDATE idempotency SET status = ?, body = ? WHERE terminal_id = ? AND key = ?';

/** SQLite's "another connection holds the lock" (SQLITE_BUSY and its extended codes). */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
