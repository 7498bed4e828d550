import type { AuthMethod, CardBrand, MerchantOrderStatus, SessionState } from 'cardpay';

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
  /** While an authentication of this terminal is being judged: one at a time (PROTOCOL.md §5.3). */
  authLeaseUntil: number;
  /** Who the shopper is in WeChat (PROTOCOL.md §2.1): the host app, the openid there (sealed). */
  hostAppId?: string | null;
  openidSealed?: string | null;
  /** A keyed hash of the openpid: the terminals of one shopper in one app share it. */
  openpidHash?: string | null;
  /** The cryptographic suite (PROTOCOL.md §3.1); null or absent is `cardpay-v1`. */
  suite?: string | null;
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
  /** Keyed hash of the PAN: card bindings and velocity, never the number. */
  cardHash: string | null;
  confirmToken: string | null;
  challenge: string | null;
  methods: AuthMethod[] | null;
  required: number | null;
  /** Methods the prompt makes mandatory (`cvv` until the card is bound to the terminal). */
  mandatory: AuthMethod[] | null;
  paymentId: string | null;
  error: { code: string; message: string; retryable: boolean; declineCode?: string } | null;
  version: number;
}

/**
 * A card's CVV checked with the payment platform without a charge, for a password reset. Like a
 * payment, it is a card-testing attempt while `pending` or `declined` (PROTOCOL.md §5.3, §5.7).
 */
export interface CardCheckRow {
  id: string;
  terminalId: string;
  cardHash: string;
  status: 'pending' | 'verified' | 'declined';
  createdAt: number;
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
  cardHash: string | null;
  /** A CVV went with the charge: a success binds the card to the terminal. */
  cvvGiven: boolean;
  cardBrand: string | null;
  cardLast4: string | null;
  createdAt: number;
  /** When the outcome was recorded (null while pending, and for payments older than the column). */
  decidedAt: number | null;
  /** When the reconciler should next ask the payment platform (pending only). */
  nextCheckAt: number | null;
  checks: number;
  version: number;
}

/** One line of a statement (PROTOCOL.md §7.4): a decided payment or a decided refund. */
export interface StatementRow {
  type: 'payment' | 'refund';
  /** When it was decided (ms). */
  at: number;
  id: string;
  orderRef: string | null;
  merchantOrderId: string | null;
  paymentId: string;
  refundId: string | null;
  currency: string;
  amount: number;
  discount: number;
  charged: number;
  cardBrand: string | null;
  cardLast4: string | null;
  status: string;
}

/** One delivery attempt of an event (PROTOCOL.md §7.3). */
export interface DeliveryRow {
  eventId: string;
  at: number;
  /** The receiver's HTTP status, or null when none came. */
  status: number | null;
  error: string | null;
  ms: number;
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
  /**
   * The payment that holds the order: set in the transaction that records a pending payment,
   * kept once it succeeds, released when it is declined or never arrives (PROTOCOL.md §5.4).
   */
  claimPaymentId: string | null;
  /** The sum of the payment's refunds that have not failed: what is no longer refundable. */
  refundReserved: number;
}

export interface RefundRow {
  id: string;
  orderRef: string;
  paymentId: string;
  merchantId: string;
  terminalId: string;
  amount: number;
  currency: string;
  reason: string | null;
  status: 'pending' | 'succeeded' | 'failed';
  failureCode: string | null;
  createdAt: string;
  /** When the reconciler should next ask the payment platform (pending only). */
  nextCheckAt: number | null;
  /** When its outcome was decided (ms): a statement's order (PROTOCOL.md §7.4). */
  decidedAt?: number | null;
  checks: number;
  version: number;
}

export interface OrderQuery {
  merchantId: string;
  status?: string;
  from?: string;
  to?: string;
  /** The last order of the previous page. */
  before?: { createdAt: string; orderRef: string };
  /** Only the order the merchant knows by this id (its search). */
  merchantOrderId?: string;
  limit: number;
}

/** A day's figures in one currency (the dashboard's): what was decided, charged and refunded. */
export interface DayFigures {
  currency: string;
  /** Payments decided (succeeded, declined or failed). */
  payments: number;
  succeeded: number;
  /** What succeeded payments charged, minor units. */
  charged: number;
  /** What succeeded refunds returned, minor units. */
  refunded: number;
}

/** A notification (PROTOCOL.md §7.3), written with the state change that caused it. */
export interface EventRow {
  id: string;
  merchantId: string;
  type: string;
  createdAt: string;
  /** The event exactly as delivered and listed: `{"id", "type", "createdAt", "data"}`. */
  body: string;
  /** `pending` while it is to be delivered, `delivered`, `failed` (given up), or `none` (no webhook). */
  delivery: 'pending' | 'delivered' | 'failed' | 'none';
  attempts: number;
  nextAttemptAt: number | null;
}

export type Write =
  | { kind: 'insertSession'; row: SessionRow }
  /** Past failed authentications forgotten (a payment made); writes nothing when there are none. */
  | { kind: 'clearAuthFailures'; terminalId: string }
  | { kind: 'updateSession'; id: string; version: number; patch: Partial<SessionRow> }
  | { kind: 'insertPayment'; row: PaymentRow }
  | { kind: 'updatePayment'; id: string; version: number; patch: Partial<PaymentRow> }
  | {
      kind: 'updateTerminal';
      id: string;
      patch: Partial<
        Pick<
          TerminalRow,
          | 'authFailures'
          | 'lockedUntil'
          | 'pinKeySealed'
          | 'salt'
          | 'iterations'
          | 'hostAppId'
          | 'openidSealed'
          | 'openpidHash'
        >
      >;
    }
  | {
      kind: 'updateOrder';
      orderRef: string;
      patch: Partial<Pick<MerchantOrderRow, 'status' | 'paymentId'>>;
    }
  /** Claims an open (or last declined) order for a payment; fails the commit when another holds it. */
  | { kind: 'claimOrder'; orderRef: string; paymentId: string }
  /** Gives the order back after a payment that did not succeed, if that payment still holds it. */
  | { kind: 'releaseOrder'; orderRef: string; paymentId: string }
  /**
   * Counts one failed authentication; locks the terminal at `max`. With `lease` (the lease the
   * failure was judged under, by its `until`), also ends that lease, and fails the commit when
   * it is no longer held: a judgment made under a lost lease is neither counted nor told.
   */
  | { kind: 'authFailure'; terminalId: string; max: number; lockUntil: number; lease?: number }
  /** Gives back the authentication lease taken until `lease`, if it is still held. */
  | { kind: 'releaseAuthLease'; terminalId: string; lease: number }
  /**
   * Gives back the authentication lease taken until `lease`, failing the commit when it is no
   * longer held (lost in a crash of the database, or held past its time and taken by another).
   */
  | { kind: 'endAuthLease'; terminalId: string; lease: number }
  /**
   * Takes a card-testing slot for a payment about to be inserted in the same commit: fails the
   * commit when the card or the terminal already has its limit of attempts (see
   * {@link Store.recentAttempts}) since `since`. Decided one at a time per card and per terminal,
   * across instances; the slot is the pending payment itself, given back when it succeeds.
   */
  | {
      kind: 'reserveAttempt';
      terminalId: string;
      cardHash: string;
      since: number;
      cardLimit: number;
      terminalLimit: number;
    }
  | { kind: 'bindCard'; terminalId: string; cardHash: string; at: number }
  /** A CVV sent to the payment platform without a charge (PROTOCOL.md §5.7): an attempt too. */
  | { kind: 'insertCardCheck'; row: CardCheckRow }
  /**
   * Fails the commit when the terminal has had `limit` password resets (CVV checks verified or
   * still pending) since `since`. Follows a `reserveAttempt` of the same terminal in one commit,
   * which decides it one at a time per terminal.
   */
  | { kind: 'capResets'; terminalId: string; since: number; limit: number }
  /**
   * Fails the commit when the terminal already has `limit` sessions open: made since `since`,
   * before processing, unexpired at `now`. Goes before the session it makes room for; decided
   * one at a time per terminal.
   */
  | { kind: 'capOpenSessions'; terminalId: string; since: number; now: number; limit: number }
  | { kind: 'updateCardCheck'; id: string; patch: Pick<CardCheckRow, 'status'> }
  /** Moves the terminal's loyalty history in a currency: a payment's charge in, a refund's out. */
  | { kind: 'addHistory'; terminalId: string; currency: string; amount: number }
  /** Sets aside `amount` of the order's payment for a refund; fails the commit past `limit`. */
  | { kind: 'reserveRefund'; orderRef: string; amount: number; limit: number }
  /** Gives back what a failed refund had set aside. */
  | { kind: 'releaseRefund'; orderRef: string; amount: number }
  | { kind: 'insertRefund'; row: RefundRow }
  | { kind: 'insertEvent'; row: EventRow }
  | { kind: 'updateEvent'; id: string; patch: Partial<EventRow> }
  | { kind: 'insertDelivery'; row: DeliveryRow }
  | { kind: 'updateRefund'; id: string; version: number; patch: Partial<RefundRow> }
  /**
   * A request's first answer (PROTOCOL.md §4), recorded in the commit of the state change it
   * reports: a retry finds the answer exactly when it finds the change. `scope` and `key` as
   * {@link Store.finishIdempotent} takes them; `body` sealed.
   */
  | { kind: 'answer'; scope: string; key: string; status: number; body: string };

/** Card-testing attempts since a moment, of a card and of a terminal (see {@link Store.recentAttempts}). */
export interface Attempts {
  card: number;
  cardOldest: number;
  terminal: number;
  terminalOldest: number;
}

/** What a checkout step asks to read with its session ({@link Store.sessionWith}). */
export interface SessionFactsWanted {
  /** The session's terminal as it stands: its failures, its lock, its pin key. */
  terminal?: boolean;
  /** Whether the session's card is bound to the shopper of the session's terminal. */
  cardBound?: boolean;
  /** The card-testing attempts of the session's card and terminal since this moment (ms). */
  attemptsSince?: number;
  /** The loyalty history of the session's shopper in this currency; `true`: the session's. */
  history?: string | true;
  /** The merchant order the session pays, when it pays one. */
  order?: boolean;
}

/** The facts asked for; one the session cannot have (no card yet, no currency) is left out. */
export interface SessionFacts {
  terminal?: TerminalRow;
  cardBound?: boolean;
  attempts?: Attempts;
  history?: number;
  order?: MerchantOrderRow;
}

/** A session with its facts as {@link Store.sessionWith} reads it; undefined when there is none. */
export type SessionWith = { session: SessionRow; facts: SessionFacts } | undefined;

/** What begins a signed POST: its nonce and its idempotency record ({@link Store.beginWithCommit}). */
export interface RequestBegin {
  terminalId: string;
  nonce: string;
  nonceExpiresAt: number;
  key: string;
  fingerprint: string;
  now: number;
  ttlMs: number;
  leaseMs: number;
}

/**
 * A read to make with a request's begin ({@link Store.useNonceAndBegin}), in its round trip: a
 * step's session with what the step asks ({@link SessionRead}), or the merchant order a session
 * opens for.
 */
export type ReadWithBegin = SessionRead | { order: string };

/** A step's session, with the facts it decides on, read with its request's begin. */
export interface SessionRead {
  session: string;
  want: SessionFactsWanted;
  /**
   * The terminal's authentication lease, to take until this moment before the session is read
   * ({@link Store.acquireAuthLease}): the read then sees what the lease's previous holder committed.
   */
  lease?: { until: number };
}

/** What asking for a terminal's authentication lease came to. */
export type AuthLease =
  | { kind: 'ok'; failures: number; until: number }
  | { kind: 'busy' }
  | { kind: 'locked'; lockedUntil: number };

export interface LegacyIdempotency {
  /** The terminal id, or `merchant:<id>` for a merchant's requests. */
  scope: string;
  key: string;
  fingerprint: string;
  body: string | null;
}

export type IdempotencyBegin =
  | { kind: 'new' }
  | { kind: 'replay'; status: number; body: string }
  | { kind: 'conflict' }
  | { kind: 'in_progress' };

/** A begin with the read asked for with it, when the request may act. */
export type BeginWithRead =
  | Exclude<IdempotencyBegin, { kind: 'new' }>
  | {
      kind: 'new';
      read?: { session: SessionWith; lease?: AuthLease } | { order: MerchantOrderRow | undefined };
    };

export interface Store {
  insertTerminal(row: TerminalRow): Promise<void>;
  getTerminal(id: string): Promise<TerminalRow | undefined>;
  /**
   * Takes the terminal's authentication lease until `until`, atomically with reading its lock:
   * `busy` when another authentication of it is being judged, `locked` when it is locked.
   */
  acquireAuthLease(id: string, now: number, until: number): Promise<AuthLease>;
  /** Whether the card (by its keyed hash) is bound to the terminal. */
  isCardBound(terminalId: string, cardHash: string): Promise<boolean>;
  /**
   * A session with what its checkout step decides on, read together: on PostgreSQL in one round
   * trip (one snapshot), where reading them one by one costs one each. Each fact is what
   * {@link getTerminal}, {@link isCardBound}, {@link recentAttempts} and {@link historyTotal} say
   * for the session's terminal and card.
   */
  sessionWith(id: string, want: SessionFactsWanted): Promise<SessionWith>;
  /**
   * Card-testing attempts since `since`, of this card and of this terminal, with the oldest of
   * each: declined payments, and payments still waiting for the payment platform, which count as
   * if they would be declined until they succeed (PROTOCOL.md §5.3); and CVV checks of password
   * resets the same way (§5.7).
   */
  recentAttempts(terminalId: string, cardHash: string, since: number): Promise<Attempts>;
  /** Records a nonce; false when this terminal used it before and it has not expired. */
  useNonce(terminalId: string, nonce: string, now: number, expiresAt: number): Promise<boolean>;
  nonceSeen(terminalId: string, nonce: string, now: number): Promise<boolean>;
  /**
   * Starts acting on a key: `new` (act), `replay` (answer what the first one answered), `conflict`
   * (another request used it) or `in_progress`. A record left in progress longer than `leaseMs`
   * (its process died mid-request) is taken over: the request acts again, and every handler is
   * written so that acting twice moves nothing twice.
   */
  beginIdempotent(
    terminalId: string,
    key: string,
    fingerprint: string,
    now: number,
    ttlMs: number,
    leaseMs: number,
  ): Promise<IdempotencyBegin>;
  /**
   * A signed POST's two first writes at once: records its nonce and, unless the nonce was used,
   * begins its idempotency record ({@link Store.useNonce}, then {@link Store.beginIdempotent}).
   * With `read`, a request that may act (`new`) comes with the session its step reads, as
   * {@link Store.sessionWith} reads it after the begin: on PostgreSQL in the same round trip. With
   * `read.lease`, such a request also takes its terminal's lease, before the session is read.
   */
  useNonceAndBegin(
    begin: RequestBegin,
    read?: ReadWithBegin,
  ): Promise<BeginWithRead | { kind: 'nonce_reused' }>;
  /**
   * A signed POST's begin and the commit of its change as one transaction (on PostgreSQL one round
   * trip): its nonce recorded and its idempotency record taken as {@link Store.useNonceAndBegin}
   * would, then `writes` as {@link Store.commit} makes them. True when all of it was written. False
   * when any of it did not hold (the nonce used, the key not new, a write's condition unmet), and
   * then nothing was: the request is made again the usual way, which says which.
   */
  beginWithCommit(begin: RequestBegin, writes: Write[]): Promise<boolean>;
  finishIdempotent(terminalId: string, key: string, status: number, body: string): Promise<void>;
  abandonIdempotent(terminalId: string, key: string): Promise<void>;
  /**
   * Up to `limit` idempotency records still in the form kept before fingerprints were keyed and
   * answers sealed (PROTOCOL.md §4): a fingerprint `METHOD path hex(SHA-256(body))`, an answer in
   * clear, in key order after `after`. The upgrade rewrites them with
   * {@link Store.rewriteIdempotency}.
   */
  legacyIdempotency(
    limit: number,
    after?: { scope: string; key: string },
  ): Promise<LegacyIdempotency[]>;
  /** Replaces legacy records' fingerprint and answer, each only if it is still as it was read. */
  rewriteIdempotency(
    rows: (LegacyIdempotency & { newFingerprint: string; newBody: string | null })[],
  ): Promise<void>;
  /**
   * Leaves nothing deleted or overwritten readable in the database's own files (SQLite keeps
   * freed pages and old page images in the WAL): after an upgrade that rewrote secrets away.
   */
  scrub(): Promise<void>;
  /** What is still in flight, for the metrics: unanswered payments and refunds, undelivered events. */
  backlog(
    now: number,
  ): Promise<{ payments: number; refunds: number; events: number; oldestEventAgeMs: number }>;
  /** The latest payment made for a merchant order (its last attempt). */
  lastPaymentOfOrder(orderRef: string): Promise<PaymentRow | undefined>;
  getSession(id: string): Promise<SessionRow | undefined>;
  getPayment(id: string): Promise<PaymentRow | undefined>;
  /**
   * Pending payments due a check by the reconciler, each leased to the caller until
   * `now + leaseMs` (its next check moves there), so that of several instances exactly one
   * checks a payment at a time; one that dies mid-check leaves it due again when the lease ends.
   */
  claimDuePayments(now: number, leaseMs: number, limit: number): Promise<PaymentRow[]>;
  /**
   * Counts one hit of `key` in the fixed window of `windowMs` that holds `now`: allowed while the
   * window has seen at most `limit`; otherwise how long until the window ends.
   */
  takeRateLimit(
    key: string,
    now: number,
    limit: number,
    windowMs: number,
  ): Promise<{ allowed: boolean; retryAfterMs: number }>;
  getRefund(id: string): Promise<RefundRow | undefined>;
  /** A merchant's events in the order they were made, after the event `after` (an id). */
  listEvents(merchantId: string, after: string | undefined, limit: number): Promise<EventRow[]>;
  getEvent(id: string): Promise<EventRow | undefined>;
  /** An event's last `limit` delivery attempts, newest first. */
  listDeliveries(eventId: string, limit: number): Promise<DeliveryRow[]>;
  /**
   * A merchant's decided payments and refunds with `from <= at < to`, in decision order, after
   * the line `after` (its time and id), at most `limit`: a statement is read page by page.
   */
  statementPage(
    merchantId: string,
    from: number,
    to: number,
    after: { at: number; id: string } | undefined,
    limit: number,
  ): Promise<StatementRow[]>;
  /** Events due a delivery attempt, each leased to the caller until `now + leaseMs`. */
  claimDueEvents(now: number, leaseMs: number, limit: number): Promise<EventRow[]>;
  /** A payment's refunds, oldest first. */
  listRefunds(paymentId: string): Promise<RefundRow[]>;
  /** Pending refunds due a check, leased like {@link Store.claimDuePayments}. */
  claimDueRefunds(now: number, leaseMs: number, limit: number): Promise<RefundRow[]>;
  /**
   * The loyalty history in one currency: the sum of `charged` over a terminal's succeeded
   * payments in it, less their succeeded refunds (a refunded purchase earns no discount). Kept as
   * a running total per currency that the `addHistory` write moves with each decision, so reading
   * it costs the same at any history.
   */
  historyTotal(terminalId: string, currency: string): Promise<number>;
  /** Inserts a merchant order, or returns the existing one with the same merchant order id. */
  putMerchantOrder(row: MerchantOrderRow): Promise<{ row: MerchantOrderRow; created: boolean }>;
  getMerchantOrder(orderRef: string): Promise<MerchantOrderRow | undefined>;
  /**
   * A merchant's orders, newest first (by creation time, then reference), after the position
   * `before` when paging; `from` inclusive, `to` exclusive (ISO times, compared as written).
   */
  listMerchantOrders(query: OrderQuery): Promise<MerchantOrderRow[]>;
  /** A merchant's figures of `[from, to)`, per currency (decided payments and refunds). */
  dayFigures(merchantId: string, from: number, to: number): Promise<DayFigures[]>;
  /** Applies all writes in one transaction; false (and nothing written) when a versioned update found another version. */
  commit(writes: Write[]): Promise<boolean>;
  /**
   * Background housekeeping: sessions past their expiry become `expired` and lose their sealed
   * card number; nonces and idempotency records past their time, and finished sessions without a
   * payment older than `retainBefore`, are deleted. Returns how many sessions it expired, and
   * whether it pruned at all: on PostgreSQL one instance prunes at a time, and a pass that finds
   * another pruning does nothing.
   */
  prune(now: number, retainBefore: number): Promise<{ expired: number; pruned: boolean }>;
  /** A small value kept by the platform itself (the master key's check value). */
  getMeta(key: string): Promise<string | undefined>;
  putMeta(key: string, value: string): Promise<void>;
  close(): Promise<void>;
  /**
   * Told when the database stops answering (`false`: the first failure to reach it) and when it
   * answers again (`true`: the first success after that). A store that cannot lose its database
   * (a SQLite file) never calls it.
   */
  onAvailability?: (available: boolean) => void;
  /**
   * Told the time of each wait for the database, in seconds (`cardpay_database_wait_seconds`).
   * PostgreSQL tells each round trip, from asking the pool for a connection to the answer. SQLite
   * tells each write, from its queueing to its batch's commit; its reads are calls within the
   * process, not waits.
   */
  onWait?: (kind: DatabaseWait, seconds: number) => void;
  /**
   * Told, at each commit of requests' writes, how many it carried
   * (`cardpay_database_commit_writes`): 1 when requests come one at a time, more when the writes
   * of requests that arrive together commit as one transaction (group commit). A write refused
   * (its condition, a lost race, a nonce already used) is not counted, and a transaction that
   * fails as a whole is not a commit.
   */
  onCommit?: (writes: number) => void;
}

/**
 * What a wait for the database was: a read; a write whose commit waits for the disk; or a
 * request's begin, whose commit does not (see `useNonceAndBegin`).
 */
export type DatabaseWait = 'read' | 'write' | 'write_unflushed';

/** The database cannot be opened or reached; the CLI reports it in one line (exit 2 at start). */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** The database cannot be reached just now (down, restarting): answered 503, retryable. */
export class StoreUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailable';
  }
}
