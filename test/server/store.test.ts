import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresStore, PRUNE_LOCK } from '../../packages/platform/src/store/postgres';
import { SqliteStore } from '../../packages/platform/src/store/sqlite';
import type {
  MerchantOrderRow,
  PaymentRow,
  SessionRow,
  Store,
} from '../../packages/platform/src/store/types';
import { describePg, freshDatabase } from '../support/postgres';

// One suite, both stores: the rules several requests (or instances) race for are decided by the
// database, the same way on each.

const NOW = 1_800_000_000_000;
let n = 0;
const id = (prefix: string) => `${prefix}_${Date.now()}${++n}`;

function terminal(store: Store) {
  const row = {
    id: id('trm'),
    secretSealed: 'v1.x',
    pinKeySealed: 'v1.y',
    salt: '00'.repeat(16),
    iterations: 10000,
    biometricScheme: null,
    biometricPublicKey: null,
    deviceLabel: null,
    createdAt: new Date(NOW).toISOString(),
    authFailures: 0,
    lockedUntil: 0,
    authLeaseUntil: 0,
    hostAppId: null,
    openidSealed: null,
    openpidHash: null,
    suite: null,
  };
  return store.insertTerminal(row).then(() => row);
}

function session(terminalId: string, orderRef: string | null = null): SessionRow {
  return {
    id: id('ses'),
    terminalId,
    merchantId: 'mch_sandbox',
    orderRef,
    state: 'awaiting_authentication',
    createdAt: NOW,
    expiresAt: NOW + 900000,
    orderId: id('ord'),
    amount: 1999,
    currency: 'CNY',
    description: null,
    cardBrand: 'visa',
    cardLast4: '4242',
    cardMasked: '424242******4242',
    panSealed: 'v1.z',
    cardHash: 'ab'.repeat(32),
    confirmToken: null,
    challenge: 'cd'.repeat(32),
    methods: ['password', 'cvv'],
    required: 1,
    mandatory: null,
    paymentId: null,
    error: null,
    version: 0,
  };
}

function payment(s: SessionRow): PaymentRow {
  return {
    id: id('pay'),
    sessionId: s.id,
    terminalId: s.terminalId,
    merchantId: s.merchantId,
    orderId: s.orderId!,
    orderRef: s.orderRef,
    amount: 1999,
    rateBps: 0,
    amountOff: 0,
    charged: 1999,
    currency: 'CNY',
    status: 'pending',
    chargeId: id('chg'),
    declineCode: null,
    cardHash: s.cardHash,
    cvvGiven: true,
    cardBrand: 'visa',
    cardLast4: '4242',
    decidedAt: null,
    createdAt: NOW,
    nextCheckAt: NOW,
    checks: 0,
    version: 0,
  };
}

function order(): MerchantOrderRow {
  return {
    orderRef: id('mor'),
    merchantId: 'mch_sandbox',
    merchantOrderId: id('cart'),
    amount: 1999,
    currency: 'CNY',
    description: null,
    status: 'open',
    createdAt: new Date(NOW).toISOString(),
    paymentId: null,
    claimPaymentId: null,
    refundReserved: 0,
  };
}

/** A signed POST's begin at NOW: its nonce for a second, its key for a minute (lease 5 s). */
const requestBegin = (terminalId: string, nonce: string, key: string, fingerprint = 'fp') => ({
  terminalId,
  nonce,
  nonceExpiresAt: NOW + 1000,
  key,
  fingerprint,
  now: NOW,
  ttlMs: 60000,
  leaseMs: 5000,
});

/** The cap on a terminal's open sessions, as a commit's condition (sessions of the last 15 minutes). */
const capOpen = (terminalId: string, limit: number) => ({
  kind: 'capOpenSessions' as const,
  terminalId,
  since: NOW - 900000,
  now: NOW,
  limit,
});

/** Undoes SQLite migration 15: the full indexes of payments and sessions, as before it. */
const BEFORE_SQLITE_15 = `DROP INDEX payments_attempts_terminal; DROP INDEX payments_attempts_card;
  DROP INDEX sessions_open_terminal;
  CREATE INDEX payments_terminal ON payments (terminal_id, status);
  CREATE INDEX payments_card ON payments (card_hash, status, created_at);
  CREATE INDEX payments_terminal_time ON payments (terminal_id, status, created_at);
  CREATE INDEX sessions_terminal ON sessions (terminal_id, created_at);`;

function storeSuite(open: () => Promise<Store>, close: (s: Store) => Promise<void>) {
  let store: Store;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(() => close(store));

  it('prunes: an open session past its expiry becomes expired without its card, a finished one past retention goes, a live one stays', async () => {
    const t = await terminal(store);
    const stale = { ...session(t.id), expiresAt: NOW + 1000 };
    const live = { ...session(t.id), expiresAt: NOW + 1e9 };
    const finished = { ...session(t.id), state: 'cancelled' as const, expiresAt: NOW - 5000 };
    for (const row of [stale, live, finished]) await store.commit([{ kind: 'insertSession', row }]);
    const pass = await store.prune(NOW + 2000, NOW);
    expect(pass.pruned).toBe(true);
    expect(pass.expired).toBeGreaterThanOrEqual(1);
    expect(await store.getSession(stale.id)).toMatchObject({ state: 'expired', panSealed: null });
    expect((await store.getSession(live.id))?.state).toBe('awaiting_authentication');
    expect(await store.getSession(finished.id)).toBeUndefined();
  });

  it('lets exactly one of eight concurrent first uses of an idempotency key act', async () => {
    const t = await terminal(store);
    const seen = await Promise.all(
      Array.from({ length: 8 }, () =>
        store.beginIdempotent(t.id, 'key-12345678', 'f', NOW, 1000, 500),
      ),
    );
    expect(seen.filter((s) => s.kind === 'new')).toHaveLength(1);
    expect(seen.filter((s) => s.kind === 'in_progress')).toHaveLength(7);
    await store.finishIdempotent(t.id, 'key-12345678', 200, '{"ok":1}');
    expect(await store.beginIdempotent(t.id, 'key-12345678', 'f', NOW, 1000, 500)).toEqual({
      kind: 'replay',
      status: 200,
      body: '{"ok":1}',
    });
    expect(await store.beginIdempotent(t.id, 'key-12345678', 'g', NOW, 1000, 500)).toEqual({
      kind: 'conflict',
    });
    // Expired: the key may act again.
    expect(await store.beginIdempotent(t.id, 'key-12345678', 'g', NOW + 2000, 1000, 500)).toEqual({
      kind: 'new',
    });
  });

  it('begins a request with the commit of its change, all of it or nothing, one of concurrent twins', async () => {
    const t = await terminal(store);
    const opening = () => ({ ...session(t.id), state: 'awaiting_order' as const });
    const begin = (key: string, nonce = id('n')) => requestBegin(t.id, nonce, key);
    const cap = (limit: number) => capOpen(t.id, limit);
    const answer = (key: string) => ({
      kind: 'answer' as const,
      scope: t.id,
      key,
      status: 201,
      body: '{"opened":1}',
    });
    const first = opening();
    expect(
      await store.beginWithCommit(begin('key-open-1'), [
        cap(5),
        { kind: 'insertSession', row: first },
        answer('key-open-1'),
      ]),
    ).toBe(true);
    expect(await store.getSession(first.id)).toEqual(first);
    // The key is taken with its answer: a repeat is a replay, not a second act.
    expect(await store.beginIdempotent(t.id, 'key-open-1', 'fp', NOW, 60000, 5000)).toEqual({
      kind: 'replay',
      status: 201,
      body: '{"opened":1}',
    });
    // Refused, each leaves nothing: a key not new, a nonce used, a condition unmet.
    const used = id('n');
    expect(await store.useNonce(t.id, used, NOW, NOW + 1000)).toBe(true);
    const refused = [
      { begin: begin('key-open-1'), cap: 5 },
      { begin: begin('key-open-2', used), cap: 5 },
      { begin: begin('key-open-3'), cap: 1 },
    ];
    for (const r of refused) {
      const row = opening();
      expect(
        await store.beginWithCommit(r.begin, [
          cap(r.cap),
          { kind: 'insertSession', row },
          answer(r.begin.key),
        ]),
      ).toBe(false);
      expect(await store.getSession(row.id)).toBeUndefined();
      // Neither its nonce nor its key was kept.
      if (r.begin.nonce !== used)
        expect(await store.nonceSeen(t.id, r.begin.nonce, NOW)).toBe(false);
    }
    expect(await store.beginIdempotent(t.id, 'key-open-3', 'fp', NOW, 60000, 5000)).toEqual({
      kind: 'new',
    });
    // Twins with one key, each with a nonce of its own: one writes.
    const twins = Array.from({ length: 6 }, opening);
    const written = await Promise.all(
      twins.map((row) =>
        store.beginWithCommit(begin('key-open-twins'), [
          cap(50),
          { kind: 'insertSession', row },
          answer('key-open-twins'),
        ]),
      ),
    );
    expect(written.filter(Boolean)).toHaveLength(1);
    for (const [i, row] of twins.entries())
      expect(await store.getSession(row.id)).toEqual(written[i] ? row : undefined);
  });

  it('lets a key left in progress past its lease (its process died) act again, once', async () => {
    const t = await terminal(store);
    const key = 'key-abandoned';
    expect(await store.beginIdempotent(t.id, key, 'f', NOW, 60000, 5000)).toEqual({ kind: 'new' });
    // Within the lease: someone is still acting on it.
    expect(await store.beginIdempotent(t.id, key, 'f', NOW + 4000, 60000, 5000)).toEqual({
      kind: 'in_progress',
    });
    // Another request's fingerprint never takes it over.
    expect(await store.beginIdempotent(t.id, key, 'g', NOW + 6000, 60000, 5000)).toEqual({
      kind: 'conflict',
    });
    const after = await Promise.all(
      Array.from({ length: 5 }, () =>
        store.beginIdempotent(t.id, key, 'f', NOW + 6000, 60000, 5000),
      ),
    );
    expect(after.filter((s) => s.kind === 'new')).toHaveLength(1);
    expect(after.filter((s) => s.kind === 'in_progress')).toHaveLength(4);
  });

  it('accepts a nonce once among concurrent uses, and again once it expired', async () => {
    const t = await terminal(store);
    const used = await Promise.all(
      Array.from({ length: 6 }, () => store.useNonce(t.id, 'ab'.repeat(16), NOW, NOW + 600000)),
    );
    expect(used.filter(Boolean)).toHaveLength(1);
    expect(await store.nonceSeen(t.id, 'ab'.repeat(16), NOW)).toBe(true);
    expect(await store.useNonce(t.id, 'ab'.repeat(16), NOW + 600000, NOW + 1200000)).toBe(true);
  });

  it('claims a merchant order for one of several concurrent payments, releasing it after a decline', async () => {
    const t = await terminal(store);
    const o = order();
    await store.putMerchantOrder(o);
    const sessions = Array.from({ length: 5 }, () => session(t.id, o.orderRef));
    for (const s of sessions) await store.commit([{ kind: 'insertSession', row: s }]);
    const payments = sessions.map(payment);
    const results = await Promise.all(
      sessions.map((s, i) =>
        store.commit([
          { kind: 'insertPayment', row: payments[i] },
          { kind: 'claimOrder', orderRef: o.orderRef, paymentId: payments[i].id },
          { kind: 'updateSession', id: s.id, version: 0, patch: { state: 'processing' } },
        ]),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = payments[results.indexOf(true)];
    // The losers left nothing behind: no payment row, the session untouched.
    for (const [i, p] of payments.entries())
      if (p !== winner) {
        expect(await store.getPayment(p.id)).toBeUndefined();
        expect((await store.getSession(sessions[i].id))!.state).toBe('awaiting_authentication');
      }
    expect((await store.getMerchantOrder(o.orderRef))!.claimPaymentId).toBe(winner.id);
    await store.commit([{ kind: 'releaseOrder', orderRef: o.orderRef, paymentId: winner.id }]);
    expect(await store.getMerchantOrder(o.orderRef)).toMatchObject({
      status: 'failed',
      claimPaymentId: null,
    });
  });

  it('gives the authentication lease to one request at a time, and says when the terminal is locked', async () => {
    const t = await terminal(store);
    const leases = await Promise.all(
      Array.from({ length: 6 }, () => store.acquireAuthLease(t.id, NOW, NOW + 30000)),
    );
    expect(leases.filter((l) => l.kind === 'ok')).toHaveLength(1);
    expect(leases.filter((l) => l.kind === 'busy')).toHaveLength(5);
    // Each failure counted under the lease it was judged under, which it ends.
    for (let i = 0; i < 2; i++) {
      await store.commit([
        {
          kind: 'authFailure',
          terminalId: t.id,
          max: 2,
          lockUntil: NOW + 900000,
          lease: NOW + 30000,
        },
      ]);
      if (i === 0) expect((await store.acquireAuthLease(t.id, NOW, NOW + 30000)).kind).toBe('ok');
    }
    expect(await store.acquireAuthLease(t.id, NOW, NOW + 30000)).toEqual({
      kind: 'locked',
      lockedUntil: NOW + 900000,
    });
  });

  it('ends a lease only for its holder: what was judged under a lease no longer held writes nothing', async () => {
    const t = await terminal(store);
    const ours = await store.acquireAuthLease(t.id, NOW, NOW + 30000);
    expect(ours).toEqual({ kind: 'ok', failures: 0, until: NOW + 30000 });
    // Lost (a crash of the database) and taken by another request after it.
    const other = { kind: 'releaseAuthLease' as const, terminalId: t.id, lease: NOW + 30000 };
    await store.commit([other]);
    expect(await store.acquireAuthLease(t.id, NOW + 1000, NOW + 31000)).toMatchObject({
      kind: 'ok',
    });
    const s = session(t.id);
    await store.commit([{ kind: 'insertSession', row: s }]);
    const move = {
      kind: 'updateSession' as const,
      id: s.id,
      version: 0,
      patch: { challenge: 'ab' },
    };
    const failure = {
      kind: 'authFailure' as const,
      terminalId: t.id,
      max: 5,
      lockUntil: NOW + 900000,
      lease: NOW + 30000,
    };
    // Neither a payment's record nor a failure made under the lost lease is written.
    expect(
      await store.commit([{ kind: 'endAuthLease', terminalId: t.id, lease: NOW + 30000 }, move]),
    ).toBe(false);
    expect(await store.commit([failure, move])).toBe(false);
    expect(await store.getSession(s.id)).toMatchObject({ version: 0, challenge: s.challenge });
    // Giving the lost lease back leaves the other's alone.
    expect(await store.commit([other, move])).toBe(true);
    expect(await store.getTerminal(t.id)).toMatchObject({
      authFailures: 0,
      authLeaseUntil: NOW + 31000,
    });
    // A failure counted without a lease (a password reset's card check) leaves the lease alone.
    await store.commit([{ ...failure, lease: undefined }]);
    expect(await store.getTerminal(t.id)).toMatchObject({
      authFailures: 1,
      authLeaseUntil: NOW + 31000,
    });
    // The holder's own: ended, and the next request may take it.
    expect(
      await store.commit([{ kind: 'endAuthLease', terminalId: t.id, lease: NOW + 31000 }]),
    ).toBe(true);
    expect((await store.acquireAuthLease(t.id, NOW + 2000, NOW + 32000)).kind).toBe('ok');
  });

  it('forgets failed authentications with a payment made, in a commit that holds whether there were any or not', async () => {
    const t = await terminal(store);
    const failure = { kind: 'authFailure' as const, terminalId: t.id, max: 5, lockUntil: NOW };
    await store.commit([failure, failure]);
    expect((await store.getTerminal(t.id))!.authFailures).toBe(2);
    const clear = { kind: 'clearAuthFailures' as const, terminalId: t.id };
    expect(await store.commit([clear])).toBe(true);
    expect((await store.getTerminal(t.id))!.authFailures).toBe(0);
    // None to forget: the commit holds all the same, with its other writes.
    const s = session(t.id);
    expect(await store.commit([clear, { kind: 'insertSession', row: s }])).toBe(true);
    expect(await store.getSession(s.id)).toBeDefined();
  });

  it('takes the lease with a begin asking for it, before the session is read, and only for a request that may act', async () => {
    const t = await terminal(store);
    const s = session(t.id);
    await store.commit([{ kind: 'insertSession', row: s }]);
    const release = { kind: 'releaseAuthLease' as const, terminalId: t.id, lease: NOW + 30000 };
    const read = { session: s.id, want: { terminal: true }, lease: { until: NOW + 30000 } };
    const begin = (key: string) => store.useNonceAndBegin(requestBegin(t.id, id('n'), key), read);
    const first = await begin(id('key'));
    expect(first).toMatchObject({
      kind: 'new',
      read: { lease: { kind: 'ok', failures: 0 }, session: { session: { version: 0 } } },
    });
    // Held: another request is told so.
    expect(await begin(id('key'))).toMatchObject({ read: { lease: { kind: 'busy' } } });
    // The holder fails and moves the session in the commit that gives the lease back; the next
    // holder's read, made after its lease, sees both.
    await store.commit([
      {
        kind: 'authFailure',
        terminalId: t.id,
        max: 5,
        lockUntil: NOW + 900000,
        lease: NOW + 30000,
      },
      { kind: 'updateSession', id: s.id, version: 0, patch: { challenge: 'ef'.repeat(32) } },
    ]);
    const key = id('key');
    const next = await begin(key);
    expect(next).toMatchObject({
      kind: 'new',
      read: {
        lease: { kind: 'ok', failures: 1 },
        session: { session: { version: 1 }, facts: { terminal: { authFailures: 1 } } },
      },
    });
    await store.commit([release]);
    // A repeat of a request in progress takes no lease: the next one still gets it.
    expect(await begin(key)).toEqual({ kind: 'in_progress' });
    expect(await store.acquireAuthLease(t.id, NOW, NOW + 30000)).toEqual({
      kind: 'ok',
      failures: 1,
      until: NOW + 30000,
    });
    await store.commit([release]);
    // Locked: said with the lock's end.
    await store.commit([
      { kind: 'authFailure', terminalId: t.id, max: 2, lockUntil: NOW + 900000 },
    ]);
    expect(await begin(id('key'))).toMatchObject({
      read: { lease: { kind: 'locked', lockedUntil: NOW + 900000 } },
    });
  });

  it('counts a rate limit across concurrent hits and windows', async () => {
    const key = id('register');
    const hits = await Promise.all(
      Array.from({ length: 5 }, () => store.takeRateLimit(key, NOW + 10, 3, 60000)),
    );
    expect(hits.filter((h) => h.allowed)).toHaveLength(3);
    expect(hits.find((h) => !h.allowed)!.retryAfterMs).toBeGreaterThan(0);
    expect((await store.takeRateLimit(key, NOW + 60000, 3, 60000)).allowed).toBe(true);
  });

  it('leases each due payment to one of two concurrent reconcilers', async () => {
    const t = await terminal(store);
    const due: string[] = [];
    for (let i = 0; i < 6; i++) {
      const s = session(t.id);
      const p = payment(s);
      await store.commit([
        { kind: 'insertSession', row: s },
        { kind: 'insertPayment', row: p },
      ]);
      due.push(p.id);
    }
    const [a, b] = await Promise.all([
      store.claimDuePayments(NOW, 60000, 100),
      store.claimDuePayments(NOW, 60000, 100),
    ]);
    const mine = (rows: PaymentRow[]) => rows.map((r) => r.id).filter((x) => due.includes(x));
    expect([...mine(a), ...mine(b)].sort()).toEqual([...due].sort());
    expect(mine(a).filter((x) => mine(b).includes(x))).toEqual([]);
    expect(mine(await store.claimDuePayments(NOW + 1000, 60000, 100))).toEqual([]);
    expect(mine(await store.claimDuePayments(NOW + 61000, 60000, 100)).sort()).toEqual(
      [...due].sort(),
    );
  });

  it('commits all of a request’s writes or none', async () => {
    const t = await terminal(store);
    const s = session(t.id);
    await store.commit([{ kind: 'insertSession', row: s }]);
    const p = payment(s);
    const ok = await store.commit([
      { kind: 'insertPayment', row: p },
      { kind: 'updateSession', id: s.id, version: 99, patch: { state: 'processing' } },
    ]);
    expect(ok).toBe(false);
    expect(await store.getPayment(p.id)).toBeUndefined();
  });

  it('keeps any text exactly through a commit of several writes: quotes, backslashes, placeholders, Unicode', async () => {
    const t = await terminal(store);
    const text = `O'Brien's \\ "latte" $1 $$ E'\\x41' -- ; DROP TABLE sessions; 拿铁 × 2 🧾 \\'`;
    const s = { ...session(t.id), description: text };
    const p = payment(s);
    const ok = await store.commit([
      { kind: 'insertSession', row: s },
      { kind: 'insertPayment', row: { ...p, declineCode: text } },
      { kind: 'updateSession', id: s.id, version: 0, patch: { description: `${text}!` } },
    ]);
    expect(ok).toBe(true);
    expect((await store.getSession(s.id))?.description).toBe(`${text}!`);
    expect((await store.getPayment(p.id))?.declineCode).toBe(text);
  });

  it('undoes every write of a commit whose count condition fails, and takes it when it holds', async () => {
    const t = await terminal(store);
    const check = (status: 'pending' | 'verified') => ({
      kind: 'insertCardCheck' as const,
      row: { id: id('chk'), terminalId: t.id, cardHash: 'ef'.repeat(32), status, createdAt: NOW },
    });
    const cap = { kind: 'capResets' as const, terminalId: t.id, since: NOW - 1000, limit: 2 };
    const first = check('verified');
    expect(await store.commit([cap, first])).toBe(true);
    expect(await store.commit([cap, check('pending')])).toBe(true);
    // Two checks count now: a third, with a payment beside it, is refused and leaves nothing.
    const s = session(t.id);
    await store.commit([{ kind: 'insertSession', row: s }]);
    const p = payment(s);
    expect(await store.commit([{ kind: 'insertPayment', row: p }, cap, check('pending')])).toBe(
      false,
    );
    expect(await store.getPayment(p.id)).toBeUndefined();
  });

  it('keeps rows as the domain wrote them: JSON, booleans and numbers', async () => {
    const t = await terminal(store);
    const s = { ...session(t.id), mandatory: ['cvv' as const], error: null };
    await store.commit([{ kind: 'insertSession', row: s }]);
    expect(await store.getSession(s.id)).toEqual(s);
    const p = payment(s);
    await store.commit([{ kind: 'insertPayment', row: p }]);
    expect(await store.getPayment(p.id)).toEqual(p);
    expect(await store.getTerminal(t.id)).toEqual(t);
  });

  it('opens no more sessions than the cap when eight arrive at once, and one more once one ends', async () => {
    const t = await terminal(store);
    const cap = capOpen(t.id, 3);
    const opening = Array.from({ length: 8 }, () => ({
      ...session(t.id),
      state: 'awaiting_order' as const,
    }));
    const opened = await Promise.all(
      opening.map((row) => store.commit([cap, { kind: 'insertSession', row }])),
    );
    expect(opened.filter(Boolean)).toHaveLength(3);
    // Nothing of a refused commit stays.
    const kept = opening.filter((_, i) => opened[i]);
    for (const [i, row] of opening.entries())
      expect(await store.getSession(row.id)).toEqual(opened[i] ? row : undefined);
    await store.commit([
      { kind: 'updateSession', id: kept[0].id, version: 0, patch: { state: 'cancelled' } },
    ]);
    const another = { ...session(t.id), state: 'awaiting_order' as const };
    expect(await store.commit([cap, { kind: 'insertSession', row: another }])).toBe(true);
    expect(
      await store.commit([cap, { kind: 'insertSession', row: { ...another, id: id('ses') } }]),
    ).toBe(false);
  });

  it('reads a session with the facts its step asks for, as the single reads give them', async () => {
    const t = await terminal(store);
    // A card of its own: the other tests' payments are attempts of the shared one.
    const s = { ...session(t.id), cardHash: id('card') };
    await store.commit([
      { kind: 'insertSession', row: s },
      { kind: 'insertPayment', row: payment(s) },
      { kind: 'bindCard', terminalId: t.id, cardHash: s.cardHash!, at: NOW },
      { kind: 'addHistory', terminalId: t.id, currency: 'CNY', amount: 1234 },
      { kind: 'addHistory', terminalId: t.id, currency: 'VND', amount: 50000 },
    ]);
    const all = {
      terminal: true,
      cardBound: true,
      attemptsSince: NOW - 1000,
      history: true as const,
    };
    expect(await store.sessionWith(s.id, all)).toEqual({
      session: await store.getSession(s.id),
      facts: {
        terminal: await store.getTerminal(t.id),
        cardBound: true,
        attempts: await store.recentAttempts(t.id, s.cardHash!, NOW - 1000),
        history: 1234,
      },
    });
    expect((await store.sessionWith(s.id, all))!.facts.attempts).toEqual({
      card: 1,
      cardOldest: NOW,
      terminal: 1,
      terminalOldest: NOW,
    });
    // Only what is asked; a currency named rather than the session's.
    expect((await store.sessionWith(s.id, {}))!.facts).toEqual({});
    expect((await store.sessionWith(s.id, { history: 'VND' }))!.facts).toEqual({ history: 50000 });
    // A session with no card and no currency yet has no binding, attempts or history to give.
    const bare = { ...session(t.id), cardHash: null, currency: null, amount: null };
    await store.commit([{ kind: 'insertSession', row: bare }]);
    expect((await store.sessionWith(bare.id, all))!.facts).toEqual({
      terminal: await store.getTerminal(t.id),
    });
    expect(await store.sessionWith('ses_none', all)).toBeUndefined();
    // The merchant order a session pays, with its description and refunds as the order read has
    // them; none for an open amount.
    const o = { ...order(), description: 'two "coffees", 中杯', refundReserved: 500 };
    await store.putMerchantOrder(o);
    const paying = session(t.id, o.orderRef);
    await store.commit([{ kind: 'insertSession', row: paying }]);
    expect((await store.sessionWith(paying.id, { order: true }))!.facts).toEqual({
      order: await store.getMerchantOrder(o.orderRef),
    });
    expect((await store.sessionWith(paying.id, { order: true }))!.facts.order).toMatchObject(o);
    expect((await store.sessionWith(s.id, { order: true }))!.facts).toEqual({});
  });

  it('reads a session with a request begun, only when the request may act', async () => {
    const t = await terminal(store);
    const s = { ...session(t.id), cardHash: id('card') };
    await store.commit([
      { kind: 'insertSession', row: s },
      { kind: 'addHistory', terminalId: t.id, currency: 'CNY', amount: 700 },
    ]);
    const want = { terminal: true, attemptsSince: NOW - 1000, history: true as const };
    const read = { session: s.id, want };
    const begin = (nonce: string, key: string, fingerprint = 'fp', r = read) =>
      store.useNonceAndBegin(requestBegin(t.id, nonce, key, fingerprint), r);
    const key = id('key');
    expect(await begin(id('n'), key)).toEqual({
      kind: 'new',
      read: { session: await store.sessionWith(s.id, want) },
    });
    // A second request with the key, the first still in progress: no read to give.
    expect(await begin(id('n'), key)).toEqual({ kind: 'in_progress' });
    expect(await begin(id('n'), key, 'other')).toEqual({ kind: 'conflict' });
    await store.finishIdempotent(t.id, key, 200, '{"ok":true}');
    expect(await begin(id('n'), key)).toEqual({ kind: 'replay', status: 200, body: '{"ok":true}' });
    // A nonce used before: neither a begin nor a read.
    const nonce = id('n');
    await begin(nonce, id('key'));
    expect(await begin(nonce, id('key'))).toEqual({ kind: 'nonce_reused' });
    // No such session: the request may act, and is told there is none. No read asked: none made.
    expect(await begin(id('n'), id('key'), 'fp', { session: 'ses_none', want })).toEqual({
      kind: 'new',
      read: { session: undefined },
    });
    expect(await store.useNonceAndBegin(requestBegin(t.id, id('n'), id('key')))).toEqual({
      kind: 'new',
    });
  });

  it('reads the merchant order a session opens for with its begin, only when the request may act', async () => {
    const t = await terminal(store);
    const o = order();
    await store.putMerchantOrder(o);
    const begin = (nonce: string, key: string, orderRef = o.orderRef) =>
      store.useNonceAndBegin(requestBegin(t.id, nonce, key), { order: orderRef });
    const key = id('key');
    expect(await begin(id('n'), key)).toEqual({
      kind: 'new',
      read: { order: await store.getMerchantOrder(o.orderRef) },
    });
    expect(await begin(id('n'), key)).toEqual({ kind: 'in_progress' });
    const nonce = id('n');
    await begin(nonce, id('key'));
    expect(await begin(nonce, id('key'))).toEqual({ kind: 'nonce_reused' });
    // No such order: the request may act, and is told there is none.
    expect(await begin(id('n'), id('key'), 'mor_none')).toEqual({
      kind: 'new',
      read: { order: undefined },
    });
  });

  it('moves the loyalty history of one currency with each decided payment and refund, in their transaction', async () => {
    const t = await terminal(store);
    const add = (amount: number, currency = 'CNY') => ({
      kind: 'addHistory' as const,
      terminalId: t.id,
      currency,
      amount,
    });
    await store.commit([add(1999)]);
    await store.commit([add(3000), add(-500)]);
    // Another currency's history is its own.
    await store.commit([add(500000, 'VND')]);
    // A commit that fails moves nothing.
    const s = session(t.id);
    await store.commit([{ kind: 'insertSession', row: s }]);
    await store.commit([
      add(700),
      { kind: 'updateSession', id: s.id, version: 99, patch: { state: 'processing' } },
    ]);
    expect(await store.historyTotal(t.id, 'CNY')).toBe(4499);
    expect(await store.historyTotal(t.id, 'VND')).toBe(500000);
    expect(await store.historyTotal(t.id, 'USD')).toBe(0);
  });
}

describe('the SQLite store', () => {
  storeSuite(
    async () => new SqliteStore(join(mkdtempSync(join(tmpdir(), 'cardpay-store-')), 'c.db')),
    (s) => s.close(),
  );

  it('prunes a backlog of expired nonces and idempotency records a few hundred at a time, letting the event loop run between, and keeps what has not expired', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cardpay-store-')), 'prune.db');
    const store = new SqliteStore(file);
    const t = await terminal(store);
    const later = { nonceExpiresAt: NOW + 1e7, ttlMs: 1e7 };
    await Promise.all(
      Array.from({ length: 12000 }, (_, i) =>
        store.useNonceAndBegin({
          ...requestBegin(t.id, `n${i}`, `k${i}`),
          ...(i % 12 === 0 ? later : {}),
        }),
      ),
    );
    // Something else waiting to run, as requests are: it runs at each turn of the event loop.
    let turns = 0;
    let pruning = true;
    const other = () => {
      turns++;
      if (pruning) setImmediate(other);
    };
    setImmediate(other);
    await store.prune(NOW + 120000, NOW - 86400000);
    pruning = false;
    await store.close();
    // 22,000 rows deleted: in one statement, nothing else ran meanwhile; in chunks of a few
    // hundred, the other work ran between every two (at least once for every 500 rows).
    expect(turns).toBeGreaterThanOrEqual(22000 / 500);
    const db = new Database(file, { readonly: true });
    const count = (table: string) =>
      (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    expect(count('nonces')).toBe(1000);
    expect(count('idempotency')).toBe(1000);
    db.close();
  });

  it('applies writes made at once together, undoing only those that lost a race, answers once they are committed, and tells what each commit made', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cardpay-store-')), 'group.db');
    const store = new SqliteStore(file);
    const t = await terminal(store);
    const commits: number[] = [];
    store.onCommit = (writes) => commits.push(writes);
    const sessions = Array.from({ length: 12 }, () => session(t.id));
    await Promise.all(sessions.map((s) => store.commit([{ kind: 'insertSession', row: s }])));
    // Twelve requests in one turn: every third holds a stale version, and its payment must go too.
    const payments = sessions.map((s) => payment(s));
    const results = await Promise.all(
      sessions.map((s, i) =>
        store.commit([
          { kind: 'insertPayment', row: payments[i] },
          {
            kind: 'updateSession',
            id: s.id,
            version: i % 3 === 0 ? 7 : 0,
            patch: { state: 'processing', paymentId: payments[i].id },
          },
        ]),
      ),
    );
    expect(results).toEqual(sessions.map((_, i) => i % 3 !== 0));
    // Read through a connection of its own: what was answered is committed.
    const other = new Database(file, { readonly: true });
    const stored = other.prepare('SELECT id FROM payments ORDER BY id').all() as { id: string }[];
    other.close();
    expect(stored.map((r) => r.id)).toEqual(
      payments
        .filter((_, i) => i % 3 !== 0)
        .map((p) => p.id)
        .sort(),
    );
    // Twins of one nonce in one turn: one is accepted.
    const twins = await Promise.all(
      [1, 2, 3].map(() => store.useNonce(t.id, 'ef'.repeat(16), NOW, NOW + 1000)),
    );
    expect(twins.filter(Boolean)).toHaveLength(1);
    // Three commits, each telling the writes it made: twelve sessions, eight payments, one nonce.
    expect(commits).toEqual([12, 8, 1]);
    await store.close();
  });

  it('keeps the idempotency records, and their answers, when it moves them to a table with row ids', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cardpay-store-')), 'idem.db');
    const store = new SqliteStore(file);
    // As a database of schema 7 was.
    store.db.exec(`${BEFORE_SQLITE_15}
      DROP TABLE terminal_history;
      DROP INDEX sessions_terminal;
      DROP TABLE card_checks;
      DROP INDEX terminals_openpid; ALTER TABLE terminals DROP COLUMN host_app_id; ALTER TABLE terminals DROP COLUMN openid_sealed; ALTER TABLE terminals DROP COLUMN openpid_hash; DROP TABLE event_deliveries; DROP INDEX payments_statement; DROP INDEX refunds_statement; ALTER TABLE refunds DROP COLUMN decided_at; ALTER TABLE terminals DROP COLUMN suite;
      ALTER TABLE terminals ADD COLUMN history_total INTEGER NOT NULL DEFAULT 0;
      DROP TABLE idempotency;
      CREATE TABLE idempotency (terminal_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
        status INTEGER, body TEXT, expires_at INTEGER NOT NULL, PRIMARY KEY (terminal_id, key)) WITHOUT ROWID;
      PRAGMA user_version = 7`);
    store.db
      .prepare(
        "INSERT INTO idempotency VALUES ('trm_a', 'key-0001', 'POST /x h', 201, '{\"ok\":1}', ?)",
      )
      .run(NOW + 1000);
    await store.close();
    const upgraded = new SqliteStore(file);
    expect(
      await upgraded.beginIdempotent('trm_a', 'key-0001', 'POST /x h', NOW, 1000, 500),
    ).toEqual({ kind: 'replay', status: 201, body: '{"ok":1}' });
    expect(
      await upgraded.beginIdempotent('trm_a', 'key-0002', 'POST /x h', NOW, 1000, 500),
    ).toEqual({ kind: 'new' });
    await upgraded.close();
  });

  it('sums the history of payments made before the running total existed when it upgrades', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cardpay-store-')), 'old.db');
    const store = new SqliteStore(file);
    const t = await terminal(store);
    const paid = [2500, 1500, 999];
    for (const [i, charged] of paid.entries()) {
      const s = session(t.id);
      const p = {
        ...payment(s),
        charged,
        status: i === 2 ? ('declined' as const) : ('succeeded' as const),
      };
      await store.commit([
        { kind: 'insertSession', row: s },
        { kind: 'insertPayment', row: p },
      ]);
      if (i === 0)
        store.db
          .prepare(
            `INSERT INTO refunds (id, order_ref, payment_id, merchant_id, terminal_id, amount, currency,
               status, created_at, version) VALUES (?, 'mor_x', ?, 'mch_sandbox', ?, 400, 'CNY', 'succeeded', ?, 0)`,
          )
          .run(id('rfd'), p.id, t.id, new Date(NOW).toISOString());
    }
    // As a database of schema 6 was: no running total, no history per currency.
    store.db.exec(
      BEFORE_SQLITE_15 +
        'DROP TABLE terminal_history; DROP INDEX sessions_terminal; DROP TABLE card_checks; DROP INDEX terminals_openpid; ALTER TABLE terminals DROP COLUMN host_app_id; ALTER TABLE terminals DROP COLUMN openid_sealed; ALTER TABLE terminals DROP COLUMN openpid_hash; DROP TABLE event_deliveries; DROP INDEX payments_statement; DROP INDEX refunds_statement; ALTER TABLE refunds DROP COLUMN decided_at; ALTER TABLE terminals DROP COLUMN suite; PRAGMA user_version = 6',
    );
    await store.close();
    const upgraded = new SqliteStore(file);
    expect(await upgraded.historyTotal(t.id, 'CNY')).toBe(2500 + 1500 - 400);
    expect(await upgraded.historyTotal(t.id, 'USD')).toBe(0);
    await upgraded.close();
  });
  it('counts card-testing attempts and open sessions from indexes of those alone, the same counts as before its upgrade', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cardpay-store-')), 'attempts.db');
    const store = new SqliteStore(file);
    const t = await terminal(store);
    const cap = (limit: number) => capOpen(t.id, limit);
    // Twelve payments of one card: four declined, two pending, six succeeded; and one open session.
    const statuses = ['declined', 'pending', 'succeeded'] as const;
    for (let i = 0; i < 12; i++) {
      const s = { ...session(t.id), state: 'processing' as const, createdAt: NOW + i };
      const p = {
        ...payment(s),
        createdAt: NOW + i,
        status: i < 4 ? statuses[0] : i < 6 ? statuses[1] : statuses[2],
      };
      await store.commit([
        { kind: 'insertSession', row: s },
        { kind: 'insertPayment', row: p },
      ]);
    }
    const open = { ...session(t.id), state: 'awaiting_order' as const };
    expect(await store.commit([cap(2), { kind: 'insertSession', row: open }])).toBe(true);
    const counted = await store.recentAttempts(t.id, 'ab'.repeat(32), NOW + 1);
    expect(counted).toEqual({ card: 5, cardOldest: NOW + 1, terminal: 5, terminalOldest: NOW + 1 });
    // Each statement reads its partial index, never a table or an index of every payment.
    const plans = [...(store as unknown as { stmts: Map<string, unknown> }).stmts.keys()]
      .filter((sql) => /FROM (payments|sessions)\s+WHERE (card_hash|terminal_id) = \?/.test(sql))
      .map((sql) =>
        (
          store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(
            ...Array(12)
              .fill(0)
              .slice(0, (sql.match(/\?/g) ?? []).length),
          ) as { detail: string }[]
        )
          .map((r) => r.detail)
          .filter((d) => /payments|sessions/.test(d)),
      );
    expect(plans.flat().sort()).toEqual([
      'SEARCH payments USING INDEX payments_attempts_card (card_hash=? AND created_at>?)',
      'SEARCH payments USING INDEX payments_attempts_terminal (terminal_id=? AND created_at>?)',
      'SEARCH sessions USING INDEX sessions_open_terminal (terminal_id=? AND created_at>?)',
    ]);
    // The same database as it was before migration 15, upgraded: the same counts and the same cap.
    store.db.exec(`${BEFORE_SQLITE_15} PRAGMA user_version = 14`);
    await store.close();
    const upgraded = new SqliteStore(file);
    expect(await upgraded.recentAttempts(t.id, 'ab'.repeat(32), NOW + 1)).toEqual(counted);
    const another = { ...session(t.id), state: 'awaiting_order' as const };
    expect(await upgraded.commit([cap(1), { kind: 'insertSession', row: another }])).toBe(false);
    expect(await upgraded.commit([cap(2), { kind: 'insertSession', row: another }])).toBe(true);
    await upgraded.close();
  });
});

describePg('the PostgreSQL store', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db.drop());

  storeSuite(
    () => PostgresStore.open(db.url),
    (s) => s.close(),
  );

  it('prunes on one instance at a time: a pass that finds another pruning does nothing', async () => {
    const store = await PostgresStore.open(db.url);
    const t = await terminal(store);
    const stale = { ...session(t.id), expiresAt: NOW + 1000 };
    await store.commit([{ kind: 'insertSession', row: stale }]);
    // Another instance's pass, holding the prune's lock in its transaction.
    const other = await store.pool.connect();
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock($1)', [PRUNE_LOCK]);
    try {
      expect(await store.prune(NOW + 2000, NOW)).toEqual({ expired: 0, pruned: false });
      expect((await store.getSession(stale.id))?.state).toBe('awaiting_authentication');
    } finally {
      await other.query('COMMIT');
      other.release();
    }
    expect((await store.prune(NOW + 2000, NOW)).pruned).toBe(true);
    expect((await store.getSession(stale.id))?.state).toBe('expired');
    await store.close();
  });

  it('migrates an empty database exactly once when three instances start at the same moment', async () => {
    const fresh = await freshDatabase();
    try {
      const stores = await Promise.all([1, 2, 3].map(() => PostgresStore.open(fresh.url)));
      const versions = await Promise.all(stores.map((s) => s.schemaVersion()));
      expect(versions[0]).toBeGreaterThan(0);
      expect(new Set(versions).size).toBe(1);
      // Each migration recorded once: applied by exactly one of the three.
      const rows = await stores[0].pool.query('SELECT COUNT(*)::int AS n FROM schema_migrations');
      expect(rows.rows[0].n).toBe(versions[0]);
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await fresh.drop();
    }
  });

  it('leaves a terminal with no failed authentications as it is when a payment made clears them: no new row version', async () => {
    const store = await PostgresStore.open(db.url);
    try {
      const t = await terminal(store);
      const version = async () =>
        (await store.pool.query('SELECT xmin::text AS v FROM terminals WHERE id = $1', [t.id]))
          .rows[0].v as string;
      const before = await version();
      expect(await store.commit([{ kind: 'clearAuthFailures', terminalId: t.id }])).toBe(true);
      expect(await version()).toBe(before);
    } finally {
      await store.close();
    }
  });

  it('commits twelve requests that come at once in two transactions: the first alone, then the eleven that came while it was on its way', async () => {
    // One connection: one transaction on its way at a time.
    const store = await PostgresStore.open(db.url, { max: 1 });
    try {
      const t = await terminal(store);
      const commits: number[] = [];
      store.onCommit = (writes) => commits.push(writes);
      const rows = Array.from({ length: 12 }, () => session(t.id));
      const made = await Promise.all(
        rows.map((row) => store.commit([{ kind: 'insertSession', row }])),
      );
      expect(made).toEqual(rows.map(() => true));
      // As the metric of commits tells them.
      expect(commits).toEqual([1, 11]);
      // Rows inserted by one transaction carry its id.
      const { rows: found } = await store.pool.query(
        'SELECT COUNT(*)::int AS n, COUNT(DISTINCT xmin::text)::int AS transactions FROM sessions WHERE id = ANY($1)',
        [rows.map((r) => r.id)],
      );
      expect(found[0]).toEqual({ n: 12, transactions: 2 });
    } finally {
      await store.close();
    }
  });

  it('refuses, of requests committed together, only the one whose condition fails, and makes the others', async () => {
    const store = await PostgresStore.open(db.url, { max: 1 });
    try {
      const [t, other, third] = [
        await terminal(store),
        await terminal(store),
        await terminal(store),
      ];
      const open = (terminalId: string) => ({
        ...session(terminalId),
        state: 'awaiting_order' as const,
      });
      const [first, second, elsewhere] = [open(t.id), open(t.id), open(other.id)];
      const commits: number[] = [];
      store.onCommit = (writes) => commits.push(writes);
      // The first commit goes alone; the three after it wait for it, and go together.
      const made = await Promise.all([
        store.commit([{ kind: 'insertSession', row: session(third.id) }]),
        store.commit([capOpen(t.id, 1), { kind: 'insertSession', row: first }]),
        store.commit([capOpen(t.id, 1), { kind: 'insertSession', row: second }]),
        store.commit([capOpen(other.id, 1), { kind: 'insertSession', row: elsewhere }]),
      ]);
      // One open session allowed on t: one of its two is made, whichever got there first alone.
      expect(made[0]).toBe(true);
      expect([made[1], made[2]].sort()).toEqual([false, true]);
      expect(made[3]).toBe(true);
      // Three commits of one write each: the group undone is none, nor the request refused.
      expect(commits).toEqual([1, 1, 1]);
      const kept = await Promise.all([first, second, elsewhere].map((r) => store.getSession(r.id)));
      expect(kept.filter(Boolean).map((r) => r!.id)).toEqual([
        made[1] ? first.id : second.id,
        elsewhere.id,
      ]);
    } finally {
      await store.close();
    }
  });

  it('answers each request begun together with its own outcome', async () => {
    const store = await PostgresStore.open(db.url, { max: 1 });
    try {
      const t = await terminal(store);
      const begins = ['a', 'b', 'c', 'd'].map((n) => requestBegin(t.id, `nonce-${n}`, `key-${n}`));
      // The second of each pair reuses its nonce: in a group, after the first's insert.
      const outcomes = await Promise.all(
        [...begins, ...begins.map((b) => ({ ...b, key: `${b.key}-again` }))].map((b) =>
          store.useNonceAndBegin(b),
        ),
      );
      expect(outcomes).toEqual([
        ...begins.map(() => ({ kind: 'new' })),
        ...begins.map(() => ({ kind: 'nonce_reused' })),
      ]);
    } finally {
      await store.close();
    }
  });

  it('lets a begin commit without waiting for the disk, and no other transaction after it on its connection', async () => {
    const store = await PostgresStore.open(db.url, { max: 1 });
    try {
      const setting = "SELECT current_setting('synchronous_commit') AS v";
      const sees = async (flush: boolean) =>
        (
          (await (
            store as unknown as {
              run(s: unknown[], o: object): Promise<{ v: string }[][]>;
            }
          ).run([{ sql: setting, params: [] }], { rows: true, flush })) as { v: string }[][]
        )[0][0].v;
      expect(await sees(false)).toBe('off');
      // The same (only) connection: a commit after it waits for the disk again.
      expect(await sees(true)).toBe('on');
      const t = await terminal(store);
      const began = await store.useNonceAndBegin(requestBegin(t.id, 'n-1', 'k-1'));
      expect(began).toEqual({ kind: 'new' });
      expect((await store.pool.query(setting)).rows[0].v).toBe('on');
      expect(await sees(true)).toBe('on');
    } finally {
      await store.close();
    }
  });
});
