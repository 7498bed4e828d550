import Database from 'better-sqlite3';
import type { AuthMethod, CardBrand, MerchantOrderStatus, SessionState } from '../core/protocol';

// The platform's storage. Every state change is one `commit` of a list of writes, applied in one
// transaction; session and payment updates are conditional on the row's version, so two
// instances (or two requests) cannot both move the same session. A PostgreSQL store implements
// the same interface with BEGIN/COMMIT and `UPDATE … WHERE version = $n`.

export interface TerminalRow {
  id: string;
  secretSealed: string;
  pinKeySealed: string;
  salt: string;
  iterations: number;
  biometricScheme: string | null;
  biometricPublicKey: string | null;
  deviceLabel: string | null;
  createdAt: string;
  authFailures: number;
  lockedUntil: number;
}

export interface SessionRow {
  id: string;
  terminalId: string;
  merchantId: string;
  orderRef: string | null;
  state: SessionState;
  createdAt: number;
  expiresAt: number;
  orderId: string | null;
  amount: number | null;
  currency: string | null;
  description: string | null;
  cardBrand: CardBrand | null;
  cardLast4: string | null;
  cardMasked: string | null;
  /** The PAN, sealed, only until the charge is final. */
  panSealed: string | null;
  confirmToken: string | null;
  challenge: string | null;
  methods: AuthMethod[] | null;
  required: number | null;
  paymentId: string | null;
  error: { code: string; message: string; retryable: boolean; declineCode?: string } | null;
  version: number;
}

export type PaymentStatus = 'pending' | 'succeeded' | 'declined' | 'failed';

export interface PaymentRow {
  id: string;
  sessionId: string;
  terminalId: string;
  merchantId: string;
  orderId: string;
  orderRef: string | null;
  amount: number;
  rateBps: number;
  amountOff: number;
  charged: number;
  currency: string;
  status: PaymentStatus;
  chargeId: string;
  declineCode: string | null;
  createdAt: number;
  /** When the reconciler should next ask the payment platform (pending only). */
  nextCheckAt: number | null;
  checks: number;
  version: number;
}

export interface MerchantOrderRow {
  orderRef: string;
  merchantId: string;
  merchantOrderId: string;
  amount: number;
  currency: string;
  description: string | null;
  status: MerchantOrderStatus;
  createdAt: string;
  paymentId: string | null;
}

export type Write =
  | { kind: 'insertSession'; row: SessionRow }
  | { kind: 'updateSession'; id: string; version: number; patch: Partial<SessionRow> }
  | { kind: 'insertPayment'; row: PaymentRow }
  | { kind: 'updatePayment'; id: string; version: number; patch: Partial<PaymentRow> }
  | {
      kind: 'updateTerminal';
      id: string;
      patch: Partial<Pick<TerminalRow, 'authFailures' | 'lockedUntil'>>;
    }
  | {
      kind: 'updateOrder';
      orderRef: string;
      patch: Partial<Pick<MerchantOrderRow, 'status' | 'paymentId'>>;
    };

export type IdempotencyBegin =
  | { kind: 'new' }
  | { kind: 'replay'; status: number; body: string }
  | { kind: 'conflict' }
  | { kind: 'in_progress' };

export interface Store {
  insertTerminal(row: TerminalRow): Promise<void>;
  getTerminal(id: string): Promise<TerminalRow | undefined>;
  /** Counts a failed authentication; locks at `max`. Returns the new count and lock time, atomically. */
  recordAuthFailure(
    id: string,
    max: number,
    lockUntil: number,
  ): Promise<{ failures: number; lockedUntil: number }>;
  /** Records a nonce; false when this terminal used it before and it has not expired. */
  useNonce(terminalId: string, nonce: string, now: number, expiresAt: number): Promise<boolean>;
  nonceSeen(terminalId: string, nonce: string, now: number): Promise<boolean>;
  beginIdempotent(
    terminalId: string,
    key: string,
    fingerprint: string,
    now: number,
    ttlMs: number,
  ): Promise<IdempotencyBegin>;
  finishIdempotent(terminalId: string, key: string, status: number, body: string): Promise<void>;
  abandonIdempotent(terminalId: string, key: string): Promise<void>;
  getSession(id: string): Promise<SessionRow | undefined>;
  getPayment(id: string): Promise<PaymentRow | undefined>;
  /** Pending payments due a check by the reconciler. */
  duePayments(now: number, limit: number): Promise<PaymentRow[]>;
  /** The sum of `charged` over a terminal's succeeded payments (the loyalty history). */
  historyTotal(terminalId: string): Promise<number>;
  /** Inserts a merchant order, or returns the existing one with the same merchant order id. */
  putMerchantOrder(row: MerchantOrderRow): Promise<{ row: MerchantOrderRow; created: boolean }>;
  getMerchantOrder(orderRef: string): Promise<MerchantOrderRow | undefined>;
  /** Applies all writes in one transaction; false (and nothing written) when a versioned update found another version. */
  commit(writes: Write[]): Promise<boolean>;
  /** Drops expired nonces and idempotency records. */
  prune(now: number): Promise<void>;
  close(): Promise<void>;
}

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
const JSON_COLUMNS = new Set(['methods', 'error']);

function toRow<T>(record: Record<string, unknown> | undefined): T | undefined {
  if (!record) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    const key = CAMEL(k);
    out[key] = JSON_COLUMNS.has(key) && typeof v === 'string' ? JSON.parse(v) : v;
  }
  return out as T;
}

function toColumns(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    out[SNAKE(k)] = JSON_COLUMNS.has(k) && v !== null && v !== undefined ? JSON.stringify(v) : v;
  }
  return out;
}

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
];

export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** The embedded default: better-sqlite3 (v12) in WAL mode, a file or `:memory:`. */
export class SqliteStore implements Store {
  readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly beginTx: SqliteStore['beginIdempotentTx'];
  private readonly commitTx: SqliteStore['commitTxBody'];

  constructor(readonly location: string) {
    try {
      this.db = new Database(location, { fileMustExist: false });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
      // Made once: better-sqlite3 builds a new wrapper function on every `transaction()` call.
      this.beginTx = this.db.transaction(this.beginIdempotentTx.bind(this));
      this.commitTx = this.db.transaction(this.commitTxBody.bind(this));
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

  private insert(table: string, record: Record<string, unknown>): void {
    const cols = toColumns(record);
    const names = Object.keys(cols);
    this.stmt(
      `INSERT INTO ${table} (${names.join(',')}) VALUES (${names.map((n) => '@' + n).join(',')})`,
    ).run(cols);
  }

  /** UPDATE … SET patch WHERE key = ? [AND version = ?], bumping the version when versioned. */
  private update(
    table: string,
    keyColumn: string,
    key: string,
    patch: Record<string, unknown>,
    version?: number,
  ): boolean {
    const cols = toColumns(patch);
    const sets = Object.keys(cols).map((n) => `${n} = @${n}`);
    if (version !== undefined) sets.push('version = version + 1');
    const where =
      version !== undefined
        ? `${keyColumn} = @__key AND version = @__version`
        : `${keyColumn} = @__key`;
    const sql = `UPDATE ${table} SET ${sets.join(', ')} WHERE ${where}`;
    return this.stmt(sql).run({ ...cols, __key: key, __version: version ?? null }).changes === 1;
  }

  async insertTerminal(row: TerminalRow) {
    this.insert('terminals', { ...row });
  }
  async getTerminal(id: string) {
    return toRow<TerminalRow>(
      this.stmt('SELECT * FROM terminals WHERE id = ?').get(id) as Record<string, unknown>,
    );
  }
  async recordAuthFailure(id: string, max: number, lockUntil: number) {
    return this.db.transaction(() => {
      const row = this.stmt(
        'UPDATE terminals SET auth_failures = auth_failures + 1 WHERE id = ? RETURNING auth_failures',
      ).get(id) as { auth_failures: number };
      let lockedUntil = 0;
      if (row.auth_failures >= max) {
        lockedUntil = lockUntil;
        this.stmt('UPDATE terminals SET locked_until = ?, auth_failures = 0 WHERE id = ?').run(
          lockUntil,
          id,
        );
      }
      return { failures: row.auth_failures, lockedUntil };
    })();
  }
  async useNonce(terminalId: string, nonce: string, now: number, expiresAt: number) {
    // One statement: a new nonce is inserted, an expired one taken over, a live one refused.
    const sql =
      'INSERT INTO nonces (terminal_id, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT (terminal_id, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?';
    return this.stmt(sql).run(terminalId, nonce, expiresAt, now).changes === 1;
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
  ): Promise<IdempotencyBegin> {
    return this.beginTx(terminalId, key, fingerprint, now, ttlMs);
  }
  private beginIdempotentTx(
    terminalId: string,
    key: string,
    fingerprint: string,
    now: number,
    ttlMs: number,
  ): IdempotencyBegin {
    const row = this.stmt(
      'SELECT fingerprint, status, body, expires_at FROM idempotency WHERE terminal_id = ? AND key = ?',
    ).get(terminalId, key) as
      | { fingerprint: string; status: number | null; body: string | null; expires_at: number }
      | undefined;
    if (row && row.expires_at > now) {
      if (row.fingerprint !== fingerprint) return { kind: 'conflict' };
      if (row.status === null || row.body === null) return { kind: 'in_progress' };
      return { kind: 'replay', status: row.status, body: row.body };
    }
    this.stmt(
      'INSERT OR REPLACE INTO idempotency (terminal_id, key, fingerprint, status, body, expires_at) VALUES (?, ?, ?, NULL, NULL, ?)',
    ).run(terminalId, key, fingerprint, now + ttlMs);
    return { kind: 'new' };
  }
  async finishIdempotent(terminalId: string, key: string, status: number, body: string) {
    this.stmt('UPDATE idempotency SET status = ?, body = ? WHERE terminal_id = ? AND key = ?').run(
      status,
      body,
      terminalId,
      key,
    );
  }
  async abandonIdempotent(terminalId: string, key: string) {
    this.stmt('DELETE FROM idempotency WHERE terminal_id = ? AND key = ? AND status IS NULL').run(
      terminalId,
      key,
    );
  }
  async getSession(id: string) {
    return toRow<SessionRow>(
      this.stmt('SELECT * FROM sessions WHERE id = ?').get(id) as Record<string, unknown>,
    );
  }
  async getPayment(id: string) {
    return toRow<PaymentRow>(
      this.stmt('SELECT * FROM payments WHERE id = ?').get(id) as Record<string, unknown>,
    );
  }
  async duePayments(now: number, limit: number) {
    const rows = this.stmt(
      "SELECT * FROM payments WHERE status = 'pending' AND next_check_at <= ? ORDER BY next_check_at LIMIT ?",
    ).all(now, limit) as Record<string, unknown>[];
    return rows.map((r) => toRow<PaymentRow>(r)!);
  }
  async historyTotal(terminalId: string) {
    const row = this.stmt(
      "SELECT COALESCE(SUM(charged), 0) AS total FROM payments WHERE terminal_id = ? AND status = 'succeeded'",
    ).get(terminalId) as { total: number };
    return row.total;
  }
  async putMerchantOrder(row: MerchantOrderRow) {
    return this.db.transaction(() => {
      const existing = this.stmt(
        'SELECT * FROM merchant_orders WHERE merchant_id = ? AND merchant_order_id = ?',
      ).get(row.merchantId, row.merchantOrderId) as Record<string, unknown> | undefined;
      if (existing) return { row: toRow<MerchantOrderRow>(existing)!, created: false };
      this.insert('merchant_orders', { ...row });
      return { row, created: true };
    })();
  }
  async getMerchantOrder(orderRef: string) {
    return toRow<MerchantOrderRow>(
      this.stmt('SELECT * FROM merchant_orders WHERE order_ref = ?').get(orderRef) as Record<
        string,
        unknown
      >,
    );
  }
  async commit(writes: Write[]) {
    try {
      return this.commitTx(writes);
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
        case 'updateOrder':
          ok = this.update('merchant_orders', 'order_ref', w.orderRef, w.patch);
          break;
      }
      if (!ok) throw new VersionConflict();
    }
    return true;
  }
  async prune(now: number) {
    this.stmt('DELETE FROM nonces WHERE expires_at <= ?').run(now);
    this.stmt('DELETE FROM idempotency WHERE expires_at <= ?').run(now);
  }
  async close() {
    if (this.db.open) this.db.close();
  }
}

class VersionConflict extends Error {}
