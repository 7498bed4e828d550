import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { digestOf, hmacHex } from '../infra/suites';
import {
  readCard,
  authMessage,
  type AuthenticateRequest,
  type ConfirmRequest,
  type CreateSessionRequest,
  type Factor,
  type OrderRequest,
  type SessionView,
} from 'cardpay';
import { NO_ANSWER, type Ahead, type Answer, type Ctx, type OrderAhead } from './context';
import { securityEvent } from './security-events';
import { settle } from './settle';
import { paymentView } from './views';
import { issuerOf } from './card-ranges';
import { discountFor, type MerchantConfig } from '../infra/config';
import { ApiError, invalid } from '../infra/errors';
import { hexEqual, newId, randomHex } from '../infra/secrets';
import type {
  Attempts,
  MerchantOrderRow,
  PaymentRow,
  SessionRead,
  SessionFacts,
  SessionFactsWanted,
  SessionRow,
  TerminalRow,
  Write,
} from '../store/types';

const INPUT_PORT = {
  methods: ['scan', 'manual'],
  scanTypes: ['qrCode', 'barCode'],
  formats: ['pan', 'emv-cpm'],
};
const BEFORE_PROCESSING = ['awaiting_order', 'awaiting_confirmation', 'awaiting_authentication'];
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The session as the status endpoint shows it (PROTOCOL.md §5.5). `known`: what the caller has
 * read already (the merchant order; the loyalty history in the session's currency), not read again.
 */
export async function sessionView(
  ctx: Ctx,
  s: SessionRow,
  known: { order?: MerchantOrderRow; history?: number } = {},
): Promise<SessionView> {
  const view: SessionView = { sessionId: s.id, state: s.state, expiresAt: iso(s.expiresAt) };
  if (s.state === 'awaiting_order') view.inputPort = INPUT_PORT as SessionView['inputPort'];
  if (s.orderRef) {
    const order = known.order ?? (await ctx.store.getMerchantOrder(s.orderRef));
    if (order)
      view.order = {
        orderRef: order.orderRef,
        amount: order.amount,
        currency: order.currency,
        ...(order.description ? { description: order.description } : {}),
      };
  }
  if (s.orderId && s.cardMasked) {
    const issuer = issuerOf(ctx.config.cardRanges, s.cardMasked);
    view.confirmation = {
      orderId: s.orderId,
      amount: s.amount!,
      currency: s.currency!,
      card: {
        brand: s.cardBrand!,
        last4: s.cardLast4!,
        masked: s.cardMasked,
        ...(issuer ? { issuer } : {}),
      },
      merchant: {
        id: s.merchantId,
        name: ctx.config.merchants.find((m) => m.id === s.merchantId)?.name ?? s.merchantId,
      },
      // The token only while it can still be used.
      ...(s.state === 'awaiting_confirmation' ? { confirmToken: s.confirmToken! } : {}),
      ...(s.description ? { description: s.description } : {}),
    };
    // What the shopper will pay, while there is still a choice to make (§5.2).
    if (s.state === 'awaiting_confirmation' || s.state === 'awaiting_authentication') {
      const history = known.history ?? (await ctx.store.historyTotal(s.terminalId, s.currency!));
      const d = discountFor(history, s.amount!, ctx.config.discounts[s.currency!] ?? []);
      view.confirmation.discount = { ...d, charged: s.amount! - d.amountOff };
    }
  }
  if (s.state === 'awaiting_authentication' && s.challenge) {
    // Read now: the attempts left change with every failed authentication.
    const terminal = await ctx.store.getTerminal(s.terminalId);
    view.authPrompt = prompt(ctx, s, s.challenge, terminal!);
  }
  if (s.paymentId) {
    const p = await ctx.store.getPayment(s.paymentId);
    if (p) view.payment = paymentView(p);
  }
  if (s.error) view.error = s.error;
  return view;
}

function prompt(ctx: Ctx, s: SessionRow, challenge: string, terminal: TerminalRow) {
  return {
    challenge,
    methods: s.methods ?? [],
    required: s.required ?? 1,
    ...(s.mandatory?.length ? { mandatory: s.mandatory } : {}),
    attemptsLeft: Math.max(0, ctx.config.maxAuthFailures - terminal.authFailures),
    expiresAt: iso(s.expiresAt),
  };
}

/** The payment-platform's reason inside `error`, as the session view and the 402 carry it. */
function failureError(error: NonNullable<SessionRow['error']>): ApiError {
  const { code, message, retryable, ...inner } = error;
  const status = code === 'payment_declined' ? 402 : code === 'order_already_paid' ? 409 : 503;
  return new ApiError(status, code as 'payment_declined', message, {}, retryable, inner);
}

const ORDER_ALREADY_PAID = {
  code: 'order_already_paid',
  message: 'the merchant order is already paid; nothing was charged',
  retryable: false,
};

const merchantById = (ctx: Ctx, id: string) => ctx.config.merchants.find((x) => x.id === id);

function merchantOf(ctx: Ctx, id: string): MerchantConfig {
  const m = merchantById(ctx, id);
  if (!m) throw new ApiError(404, 'merchant_unknown', `no merchant ${id}`);
  return m;
}

/** Loads a session of this terminal, marking it expired when its time has passed. */
async function owned(ctx: Ctx, terminal: TerminalRow, id: string): Promise<SessionRow> {
  return (await ownedWith(ctx, terminal, id, {})).s;
}

/**
 * What each step reads with its session, as of its moment `at` (and the lease it takes first).
 * A route reads it ahead with its request's begin ({@link Ahead}); the step reads it itself when
 * that was not done.
 */
export const stepReads = {
  /** The history in the order's currency, for the price the confirmation shows. */
  order: (body: Pick<OrderRequest, 'currency'>) => ({
    want: { history: body.currency, order: true },
  }),
  /** The binding decides the methods; the terminal's row, the attempts the prompt shows. */
  confirm: () => ({ want: { cardBound: true, terminal: true } }),
  /**
   * The terminal's lease, then: the terminal (its lock, failures and pin key as they stand under
   * the lease), the card-testing attempts (a first look, before the slot), the loyalty history.
   */
  authenticate: (at: number) => ({
    want: { terminal: true, attemptsSince: at - HOUR, history: true as const, order: true },
    lease: { until: at + LEASE_MS },
  }),
} satisfies Record<string, (...args: never[]) => Omit<SessionRead, 'session'>>;

const sameWant = (a: SessionFactsWanted, b: SessionFactsWanted) =>
  !!a.terminal === !!b.terminal &&
  !!a.cardBound === !!b.cardBound &&
  a.attemptsSince === b.attemptsSince &&
  a.history === b.history &&
  !!a.order === !!b.order;

/**
 * {@link owned}, with the facts the step decides on read in the same round trip: the read made
 * ahead when it is this one, or a read of its own.
 */
async function ownedWith(
  ctx: Ctx,
  terminal: TerminalRow,
  id: string,
  want: SessionFactsWanted,
  ahead?: Ahead,
): Promise<{ s: SessionRow; facts: SessionFacts }> {
  const read =
    ahead && ahead.read.session === id && sameWant(ahead.read.want, want)
      ? ahead.found
      : await ctx.store.sessionWith(id, want);
  const s = read?.session;
  if (!read || !s || s.terminalId !== terminal.id)
    throw new ApiError(404, 'session_not_found', `no session ${id} for this terminal`);
  if (BEFORE_PROCESSING.includes(s.state) && ctx.now() > s.expiresAt) {
    if (
      await ctx.store.commit([
        {
          kind: 'updateSession',
          id: s.id,
          version: s.version,
          patch: { state: 'expired', panSealed: null, challenge: null },
        },
      ])
    ) {
      const expired = { state: 'expired', panSealed: null, challenge: null } as const;
      return { s: { ...s, ...expired, version: s.version + 1 }, facts: read.facts };
    }
    return ownedWith(ctx, terminal, id, want);
  }
  return { s, facts: read.facts };
}

function expect(s: SessionRow, state: SessionRow['state']): void {
  if (s.state === 'expired')
    throw new ApiError(410, 'session_expired', 'the session has expired; open a new one');
  if (s.state !== state)
    throw new ApiError(409, 'invalid_state', `the session is ${s.state}, not ${state}`, {
      state: s.state,
    });
}

/** Applies writes conditional on the session's version; a lost race is reported as a state conflict. */
async function commit(ctx: Ctx, s: SessionRow, writes: Write[]): Promise<void> {
  if (!(await ctx.store.commit(writes))) throw moved(s, await ctx.store.getSession(s.id));
}

/** Moves the session by `patch` with `result` recorded as the request's answer; returns it. */
async function moveAndAnswer<T extends object>(
  ctx: Ctx,
  s: SessionRow,
  patch: Partial<SessionRow>,
  answer: Answer,
  result: T,
): Promise<T> {
  await commit(ctx, s, [
    { kind: 'updateSession', id: s.id, version: s.version, patch },
    ...answer(200, result),
  ]);
  return result;
}

/** The session changed while this request was processed: says where it stands now. */
function moved(s: SessionRow, now: SessionRow | undefined): ApiError {
  return new ApiError(
    409,
    'invalid_state',
    'the session changed while this request was processed',
    { state: now?.state ?? s.state },
    true,
  );
}

/**
 * Whether a session opens without reading the database before its commit: no merchant order to
 * read, and nothing to refuse before the cap (the merchant known and taking open amounts). Then
 * its request's begin can go with that commit ({@link openSession}'s `withBegin`).
 */
export function opensWithoutReads(ctx: Ctx, body: CreateSessionRequest): boolean {
  return !body.orderRef && !!merchantById(ctx, body.merchantId)?.openAmounts;
}

/**
 * `POST /v1/sessions`: the card-number input port (PROTOCOL.md §5.1). With `withBegin`, its
 * commit is made with its request's begin ({@link Store.beginWithCommit}); undefined then says
 * only that something did not hold (the nonce, the key, the cap), and the request is made again
 * the usual way, which says which. With `order`, its merchant order as read with the begin.
 */
export async function openSession(
  ctx: Ctx,
  terminal: TerminalRow,
  body: CreateSessionRequest,
  answer: Answer,
  ahead: { withBegin: (writes: Write[]) => Promise<boolean> },
): Promise<SessionView | undefined>;
export async function openSession(
  ctx: Ctx,
  terminal: TerminalRow,
  body: CreateSessionRequest,
  answer?: Answer,
  ahead?: { order?: OrderAhead },
): Promise<SessionView>;
export async function openSession(
  ctx: Ctx,
  terminal: TerminalRow,
  body: CreateSessionRequest,
  answer: Answer = NO_ANSWER,
  ahead: { withBegin?: (writes: Write[]) => Promise<boolean>; order?: OrderAhead } = {},
): Promise<SessionView | undefined> {
  const { withBegin } = ahead;
  const merchant = merchantOf(ctx, body.merchantId);
  let order;
  if (body.orderRef) {
    order =
      ahead.order?.orderRef === body.orderRef
        ? ahead.order.found
        : await ctx.store.getMerchantOrder(body.orderRef);
    if (!order || order.merchantId !== merchant.id)
      throw new ApiError(404, 'order_unknown', `no order ${body.orderRef} for ${merchant.id}`);
    if (isPaid(order))
      throw new ApiError(409, 'order_already_paid', `order ${order.orderRef} is already paid`);
  } else if (!merchant.openAmounts) {
    throw invalid(`orderRef is required: merchant ${merchant.id} does not take open amounts`);
  }
  const now = ctx.now();
  const row: SessionRow = {
    id: newId('ses'),
    terminalId: terminal.id,
    merchantId: merchant.id,
    orderRef: order?.orderRef ?? null,
    state: 'awaiting_order',
    createdAt: now,
    expiresAt: now + ctx.config.sessionTtlMs,
    orderId: null,
    amount: null,
    currency: null,
    description: order?.description ?? null,
    cardBrand: null,
    cardLast4: null,
    cardMasked: null,
    panSealed: null,
    cardHash: null,
    confirmToken: null,
    challenge: null,
    methods: null,
    required: null,
    mandatory: null,
    paymentId: null,
    error: null,
    version: 0,
  };
  const view = await sessionView(ctx, row, { order });
  // Sessions are rows: a terminal opening them without end would grow the database without end.
  const cap = ctx.config.throttle.openSessionsPerTerminal;
  const writes: Write[] = [
    {
      kind: 'capOpenSessions',
      terminalId: terminal.id,
      since: now - ctx.config.sessionTtlMs,
      now,
      limit: cap,
    },
    { kind: 'insertSession', row },
    ...answer(201, view),
  ];
  if (withBegin) return (await withBegin(writes)) ? view : undefined;
  const opened = await ctx.store.commit(writes);
  if (!opened) {
    securityEvent(ctx, 'open_sessions_capped', { terminalId: terminal.id });
    throw new ApiError(
      429,
      'rate_limited',
      `this terminal has ${cap} sessions open; finish or cancel one first`,
      { retryAfter: 60 },
      true,
    );
  }
  return view;
}

/** `GET /v1/sessions/{id}`: the session as it stands (PROTOCOL.md §5.5). */
export async function viewSession(ctx: Ctx, terminal: TerminalRow, id: string) {
  return sessionView(ctx, await owned(ctx, terminal, id));
}

/** `POST /v1/sessions/{id}/order`: amount and card, answered with the confirmation (§5.2). */
export async function submitOrder(
  ctx: Ctx,
  terminal: TerminalRow,
  id: string,
  body: OrderRequest,
  answer: Answer = NO_ANSWER,
  ahead?: Ahead,
) {
  const { s, facts } = await ownedWith(ctx, terminal, id, stepReads.order(body).want, ahead);
  expect(s, 'awaiting_order');
  const merchant = merchantOf(ctx, s.merchantId);
  const order = await orderOf(ctx, s, facts);
  if (order && (order.amount !== body.amount || order.currency !== body.currency)) {
    throw new ApiError(
      422,
      'amount_mismatch',
      `the order is ${order.amount} ${order.currency}, the request says ${body.amount} ${body.currency}`,
    );
  }
  if (!merchant.currencies.includes(body.currency))
    throw invalid(`currency ${body.currency} is not accepted by ${merchant.id}`);
  const read = readCard(body.card.payload);
  if (!read.ok)
    throw new ApiError(422, 'invalid_card', read.message, {
      reason: read.reason,
      ...(read.detected ? { detected: read.detected } : {}),
    });
  const card = read.card;
  if (!merchant.acceptedBrands.includes(card.brand))
    throw new ApiError(422, 'unsupported_card', `${merchant.id} does not take ${card.brand} cards`);
  const patch: Partial<SessionRow> = {
    state: 'awaiting_confirmation',
    orderId: newId('ord'),
    amount: body.amount,
    currency: body.currency,
    cardBrand: card.brand,
    cardLast4: card.last4,
    cardMasked: card.masked,
    panSealed: ctx.sealer.seal(card.pan, `pan:${s.id}`),
    cardHash: ctx.sealer.cardHash(card.pan),
    confirmToken: randomHex(16),
  };
  const view = await sessionView(ctx, { ...s, ...patch }, { order, history: facts.history });
  const result = { sessionId: s.id, state: view.state, confirmation: view.confirmation };
  return moveAndAnswer(ctx, s, patch, answer, result);
}

/** `POST /v1/sessions/{id}/confirm`: the shopper's answer to the confirmation (§5.3). */
export async function confirmOrder(
  ctx: Ctx,
  terminal: TerminalRow,
  id: string,
  body: ConfirmRequest,
  answer: Answer = NO_ANSWER,
  ahead?: Ahead,
) {
  const { s, facts } = await ownedWith(ctx, terminal, id, stepReads.confirm().want, ahead);
  expect(s, 'awaiting_confirmation');
  if (!hexEqual(s.confirmToken!, body.confirmToken))
    throw new ApiError(
      422,
      'confirm_token_invalid',
      'confirmToken does not match this confirmation',
    );
  if (!body.accept) {
    const result = { sessionId: s.id, state: 'cancelled' };
    return moveAndAnswer(ctx, s, { state: 'cancelled', panSealed: null }, answer, result);
  }
  const policy = merchantOf(ctx, s.merchantId).auth;
  // Biometrics only where this platform can check them: a sandbox key always, SOTER with a verifier.
  const canVerifyBiometric =
    terminal.biometricScheme === 'sandbox-p256' ||
    (terminal.biometricScheme === 'soter' && !!ctx.soter);
  const methods = policy.methods.filter((m) => m !== 'biometric' || canVerifyBiometric);
  let required =
    policy.twoFactorsFrom && s.amount! >= policy.twoFactorsFrom && methods.length >= 2 ? 2 : 1;
  // A card not yet bound to this terminal must be proven with its CVV, on top of the
  // terminal's own factor, whatever the merchant's policy (PROTOCOL.md §5.3).
  const bound = facts.cardBound === true;
  if (!bound) {
    if (!methods.includes('cvv')) methods.push('cvv');
    required = Math.max(required, 2);
  }
  const challenge = randomHex(32);
  const patch: Partial<SessionRow> = {
    state: 'awaiting_authentication',
    methods,
    required,
    mandatory: bound ? null : ['cvv'],
    challenge,
  };
  // The attempts left as they stand (the request's terminal row is its identity only).
  const fresh = facts.terminal ?? terminal;
  return moveAndAnswer(ctx, s, patch, answer, {
    sessionId: s.id,
    state: 'awaiting_authentication',
    authPrompt: prompt(ctx, { ...s, ...patch }, challenge, fresh),
  });
}

/** `POST /v1/sessions/{id}/cancel` (an extension): ends a session before `processing`. */
export async function cancelSession(
  ctx: Ctx,
  terminal: TerminalRow,
  id: string,
  answer: Answer = NO_ANSWER,
) {
  const s = await owned(ctx, terminal, id);
  if (s.state === 'expired') throw new ApiError(410, 'session_expired', 'the session has expired');
  if (!BEFORE_PROCESSING.includes(s.state))
    throw new ApiError(
      409,
      'invalid_state',
      `the session is ${s.state} and can no longer be cancelled`,
      { state: s.state },
    );
  const view = await sessionView(ctx, { ...s, state: 'cancelled', challenge: null });
  return moveAndAnswer(
    ctx,
    s,
    { state: 'cancelled', panSealed: null, challenge: null },
    answer,
    view,
  );
}

/**
 * `POST /v1/sessions/{id}/authenticate` (§5.4): judges the factors under the terminal's lease,
 * claims the merchant order in the transaction that records the payment, charges, settles.
 * `terminal` is the terminal's identity (its keys); its lock and failures are read here.
 */
export async function authenticate(
  ctx: Ctx,
  terminal: TerminalRow,
  id: string,
  body: AuthenticateRequest,
  answer: Answer = NO_ANSWER,
  ahead?: Ahead,
) {
  const now = ahead?.at ?? ctx.now();
  // The terminal's lease first (taken with the request's begin), then the session read under it:
  // however many authentications arrive at once, they are judged one at a time against the live
  // count of failures, and a challenge answered or replaced by the previous holder is seen as
  // stale, not as a failed attempt.
  const lease =
    ahead?.lease ?? (await ctx.store.acquireAuthLease(terminal.id, now, now + LEASE_MS));
  let s: SessionRow;
  let facts: SessionFacts;
  let state: TerminalRow;
  let order: MerchantOrderRow | undefined;
  let matches: boolean[];
  try {
    const read = await ownedWith(ctx, terminal, id, stepReads.authenticate(now).want, ahead);
    s = read.s;
    facts = read.facts;
    // The row read with the session, not the request's cached identity: its lock, its failures,
    // and its pin key, which a password reset (§5.7) on any instance replaces.
    state = facts.terminal ?? terminal;
    expect(s, 'awaiting_authentication');
    if (state.lockedUntil > ctx.now()) throw locked(state.lockedUntil);
    if (!s.challenge || !hexEqual(s.challenge, body.challenge)) {
      throw new ApiError(
        422,
        'challenge_stale',
        'this challenge is no longer live; use the latest prompt',
      );
    }
    const methods = body.factors.map((f) => f.method);
    const offered = s.methods ?? [];
    const stray = methods.find((m) => !offered.includes(m));
    if (stray)
      throw invalid(`factors: method ${stray} was not offered (offered: ${offered.join(', ')})`);
    if (new Set(methods).size !== methods.length)
      throw invalid('factors: each method may appear once');
    const missing = (s.mandatory ?? []).find((m) => !methods.includes(m));
    if (missing)
      throw invalid(`factors: ${missing} is required: this card is not yet bound to this terminal`);
    if (methods.length < (s.required ?? 1))
      throw invalid(`factors: ${s.required} different methods are required`);
    if (!methods.some((m) => m === 'password' || m === 'biometric'))
      throw invalid('factors: a password or biometric factor is required');

    // A merchant order already paid: say so before anything is judged or charged.
    order = await orderOf(ctx, s, facts);
    if (order && isPaid(order)) await orderAlreadyPaid(ctx, s);

    // Card testing: too many attempts with this card, or on this terminal, in the last hour. A
    // first, cheap look; the slot reserved with the payment below is what decides.
    refuseCardTesting(
      ctx,
      terminal.id,
      facts.attempts ?? (await ctx.store.recentAttempts(terminal.id, s.cardHash!, now - HOUR)),
      now,
    );

    if (lease.kind === 'locked') throw locked(lease.lockedUntil);
    if (lease.kind === 'busy') {
      securityEvent(ctx, 'auth_lease_busy', { terminalId: terminal.id });
      throw leaseBusy();
    }
    matches = await Promise.all(body.factors.map((f) => checkFactor(ctx, f, s, state)));
  } catch (error) {
    if (lease.kind === 'ok')
      await ctx.store.commit([
        { kind: 'releaseAuthLease', terminalId: terminal.id, lease: lease.until },
      ]);
    throw error;
  }
  if (matches.includes(false)) {
    const failures = lease.failures + 1;
    const lockNow = failures >= ctx.config.maxAuthFailures;
    const lockedUntil = ctx.now() + ctx.config.lockMs;
    const challenge = randomHex(32);
    const error = {
      code: 'auth_locked',
      message: 'too many failed authentications',
      retryable: false,
    };
    // Counted under the lease it was judged under, which it ends.
    const failure: Write = {
      kind: 'authFailure',
      terminalId: terminal.id,
      max: ctx.config.maxAuthFailures,
      lockUntil: lockedUntil,
      lease: lease.until,
    };
    const recorded = await ctx.store
      .commit([
        failure,
        {
          kind: 'updateSession',
          id: s.id,
          version: s.version,
          patch: lockNow
            ? { state: 'failed', panSealed: null, challenge: null, error }
            : { challenge },
        },
      ])
      .catch(async (e) => {
        // The failure still counts if it can (the database may be gone).
        await ctx.store.commit([failure]);
        throw e;
      });
    if (!recorded) {
      // Which condition failed: the lease (no longer held, so nothing judged is told or counted),
      // or the session (it moved on meanwhile: the failure still counts).
      if (!(await ctx.store.commit([failure]))) throw leaseLost(ctx, terminal.id);
      throw moved(s, await ctx.store.getSession(s.id));
    }
    if (lockNow) {
      securityEvent(
        ctx,
        'terminal_locked',
        { terminalId: terminal.id, until: iso(lockedUntil) },
        'terminal locked after repeated failed authentications',
      );
      throw new ApiError(
        423,
        'auth_locked',
        `${ctx.config.maxAuthFailures} failed authentications: locked until ${iso(lockedUntil)}`,
      );
    }
    throw new ApiError(
      422,
      'auth_failed',
      'the authentication did not match',
      {
        state: 'awaiting_authentication',
        authPrompt: prompt(ctx, s, challenge, { ...terminal, authFailures: failures }),
      },
      true,
    );
  }

  // Authenticated: discount from history; the payment recorded as pending with its charge id,
  // the merchant order claimed for it, the session in processing and the lease given back —
  // one transaction — before the payment platform hears of it.
  const history = facts.history ?? (await ctx.store.historyTotal(terminal.id, s.currency!));
  const discount = discountFor(history, s.amount!, ctx.config.discounts[s.currency!] ?? []);
  const cvv = body.factors.find(
    (f): f is Extract<Factor, { method: 'cvv' }> => f.method === 'cvv',
  )?.value;
  const payment: PaymentRow = {
    id: newId('pay'),
    sessionId: s.id,
    terminalId: terminal.id,
    merchantId: s.merchantId,
    orderId: s.orderId!,
    orderRef: s.orderRef,
    amount: s.amount!,
    rateBps: discount.rateBps,
    amountOff: discount.amountOff,
    charged: s.amount! - discount.amountOff,
    currency: s.currency!,
    status: 'pending',
    chargeId: newId('chg'),
    declineCode: null,
    cardHash: s.cardHash,
    cvvGiven: !!cvv,
    cardBrand: s.cardBrand,
    cardLast4: s.cardLast4,
    createdAt: now,
    decidedAt: null,
    nextCheckAt: now + ctx.config.paymentTimeoutMs,
    checks: 0,
    version: 0,
  };
  const { cardDeclinesPerHour, terminalDeclinesPerHour } = ctx.config.velocity;
  const recorded = await ctx.store.commit([
    // First, so that its per-card and per-terminal order is the only one any commit waits in.
    {
      kind: 'reserveAttempt',
      terminalId: terminal.id,
      cardHash: s.cardHash!,
      since: now - HOUR,
      cardLimit: cardDeclinesPerHour,
      terminalLimit: terminalDeclinesPerHour,
    },
    // Ended, not merely given back: a payment judged under a lease no longer held is not made.
    { kind: 'endAuthLease', terminalId: terminal.id, lease: lease.until },
    { kind: 'insertPayment', row: payment },
    ...(s.orderRef
      ? [{ kind: 'claimOrder' as const, orderRef: s.orderRef, paymentId: payment.id }]
      : []),
    {
      kind: 'updateSession',
      id: s.id,
      version: s.version,
      patch: { state: 'processing', challenge: null, paymentId: payment.id },
    },
  ]);
  if (!recorded) {
    // Which condition failed. The lease first: no longer held, the factors that matched are told
    // as one that did not would be under a lost lease (the same answer, nothing counted).
    if ((await ctx.store.getTerminal(terminal.id))?.authLeaseUntil !== lease.until)
      throw leaseLost(ctx, terminal.id);
    await ctx.store.commit([
      { kind: 'releaseAuthLease', terminalId: terminal.id, lease: lease.until },
    ]);
    // Then the slot (others' attempts filled it meanwhile), the order, the session.
    const at = ctx.now();
    refuseCardTesting(
      ctx,
      terminal.id,
      await ctx.store.recentAttempts(terminal.id, s.cardHash!, at - HOUR),
      at,
    );
    await orderTaken(ctx, s, terminal);
  }
  const outcome = await ctx.payments.charge({
    chargeId: payment.chargeId,
    orderId: payment.orderId,
    merchantId: payment.merchantId,
    pan: ctx.sealer.open(s.panSealed!, `pan:${s.id}`).toString('utf8'),
    ...(cvv ? { cvv } : {}),
    amount: payment.amount,
    discount,
    charged: payment.charged,
    currency: payment.currency,
  });
  if (outcome.status === 'unknown')
    ctx.log?.warn(
      { event: 'payment_platform_unanswered', paymentId: payment.id, reason: outcome.reason },
      'the payment platform did not answer in time; the reconciler will settle the charge',
    );
  // As recorded just now; read again only if something else (the reconciler) got there first.
  const processing: SessionRow = {
    ...s,
    state: 'processing',
    challenge: null,
    paymentId: payment.id,
    version: s.version + 1,
  };
  // A payment made is answered in the commit that records it; a failure, as its error is sent.
  const settled = await settle(
    ctx,
    payment.id,
    outcome,
    'request',
    { payment, session: processing, order },
    (paid, final) => (final.state === 'succeeded' ? answer(200, paidView(final, paid)) : []),
  );
  const final = settled?.session ?? (await ctx.store.getSession(s.id))!;
  if (final.state === 'failed' && final.error) throw failureError(final.error);
  return paidView(final, settled?.payment ?? (await ctx.store.getPayment(payment.id))!);
}

/** The answer to an authentication that got as far as the charge. */
const paidView = (final: SessionRow, paid: PaymentRow) => ({
  sessionId: final.id,
  state: final.state,
  payment: paymentView(paid),
});

/** How long one authentication may hold its terminal's lease (a crashed request frees it then). */
const LEASE_MS = 30000;
const HOUR = 3600 * 1000;

/**
 * Card testing (PROTOCOL.md §5.3): `429` when this card, or this terminal, has had its limit of
 * attempts in the last hour (declined, or still waiting for the payment platform).
 */
function refuseCardTesting(ctx: Ctx, terminalId: string, n: Attempts, now: number): void {
  const { cardDeclinesPerHour, terminalDeclinesPerHour } = ctx.config.velocity;
  const byCard = n.card >= cardDeclinesPerHour;
  if (!byCard && n.terminal < terminalDeclinesPerHour) return;
  securityEvent(ctx, 'velocity_limited', { terminalId, by: byCard ? 'card' : 'terminal' });
  const oldest = byCard ? n.cardOldest : n.terminalOldest;
  throw new ApiError(
    429,
    'rate_limited',
    'too many declined payments with this card or on this terminal; try again later',
    { retryAfter: Math.max(1, Math.ceil((oldest + HOUR - now) / 1000)) },
    true,
  );
}

/**
 * The authentication's lease is no longer its own: held past its time and taken by another
 * request, or lost. What was judged under it is not told, whichever way it went, and not
 * counted: the answer is the one a request gets while another holds the lease.
 */
function leaseLost(ctx: Ctx, terminalId: string): ApiError {
  securityEvent(ctx, 'auth_lease_lost', { terminalId });
  return leaseBusy();
}

const leaseBusy = () =>
  new ApiError(
    429,
    'rate_limited',
    'another authentication of this terminal is being checked',
    { retryAfter: 1 },
    true,
  );

const locked = (until: number) =>
  new ApiError(423, 'auth_locked', `authentication is locked until ${iso(until)}`);

/** The merchant order the session pays, as read with it when the step asked; none for an open amount. */
async function orderOf(ctx: Ctx, s: SessionRow, facts: SessionFacts) {
  if (!s.orderRef) return undefined;
  return facts.order ?? (await ctx.store.getMerchantOrder(s.orderRef));
}

function isPaid(order: MerchantOrderRow): boolean {
  return order.status !== 'open' && order.status !== 'failed';
}

/** Ends the session: the order was paid by another session. Nothing is charged. */
async function orderAlreadyPaid(ctx: Ctx, s: SessionRow): Promise<never> {
  await commit(ctx, s, [
    {
      kind: 'updateSession',
      id: s.id,
      version: s.version,
      patch: { state: 'failed', panSealed: null, challenge: null, error: ORDER_ALREADY_PAID },
    },
  ]);
  throw failureError(ORDER_ALREADY_PAID);
}

/**
 * The payment could not be recorded: the order is held by another session's payment, or the
 * session itself moved. Says which, leaving the session as the protocol wants it.
 */
async function orderTaken(ctx: Ctx, s: SessionRow, terminal: TerminalRow): Promise<never> {
  const order = s.orderRef ? await ctx.store.getMerchantOrder(s.orderRef) : undefined;
  const now = await ctx.store.getSession(s.id);
  if (order && now && now.version === s.version) {
    if (isPaid(order)) return orderAlreadyPaid(ctx, s);
    if (order.claimPaymentId) {
      // Another session's payment is still being decided: this one may try again afterwards,
      // with a fresh challenge; it is not a failed attempt.
      const challenge = randomHex(32);
      await commit(ctx, s, [
        { kind: 'updateSession', id: s.id, version: s.version, patch: { challenge } },
      ]);
      const fresh = (await ctx.store.getTerminal(terminal.id)) ?? terminal;
      throw new ApiError(
        409,
        'order_payment_in_progress',
        'another payment for this order is being confirmed; check again shortly',
        { state: 'awaiting_authentication', authPrompt: prompt(ctx, s, challenge, fresh) },
        true,
      );
    }
  }
  throw moved(s, now);
}

async function checkFactor(
  ctx: Ctx,
  factor: Factor,
  s: SessionRow,
  terminal: TerminalRow,
): Promise<boolean> {
  switch (factor.method) {
    case 'password': {
      const pinKey = ctx.sealer.open(terminal.pinKeySealed, `pin-key:${terminal.id}`);
      const message = authMessage({
        sessionId: s.id,
        challenge: s.challenge!,
        orderId: s.orderId!,
        amount: s.amount!,
        currency: s.currency!,
      });
      // The proof is HMAC in the terminal's suite (PROTOCOL.md §3.1).
      const expected = hmacHex(digestOf(terminal), pinKey, message);
      pinKey.fill(0);
      return hexEqual(expected, factor.proof);
    }
    case 'cvv':
      // Not judged here: the payment platform checks it with the charge; never stored or logged.
      // It cannot fail this step, and it is never what clears the failure count.
      return true;
    case 'biometric': {
      let assertion: { challenge?: unknown; raw?: unknown } | null;
      try {
        assertion = JSON.parse(factor.resultJSON) as typeof assertion;
      } catch {
        return false;
      }
      if (!assertion || typeof assertion !== 'object') return false;
      // SOTER carries the caller's challenge as `raw` (its resultJSON has no `challenge` field);
      // PROTOCOL.md §5.4 names it `challenge`. A SOTER assertion may bind through either.
      const claimed =
        terminal.biometricScheme === 'soter'
          ? (assertion.raw ?? assertion.challenge)
          : assertion.challenge;
      if (typeof claimed !== 'string' || !hexEqual(s.challenge!, claimed)) return false;
      if (terminal.biometricScheme === 'sandbox-p256' && terminal.biometricPublicKey) {
        try {
          const key = createPublicKey({
            key: Buffer.from(terminal.biometricPublicKey, 'hex'),
            format: 'der',
            type: 'spki',
          });
          return verifySignature(
            'sha256',
            Buffer.from(factor.resultJSON, 'utf8'),
            key,
            Buffer.from(factor.signature, 'hex'),
          );
        } catch {
          return false;
        }
      }
      if (terminal.biometricScheme === 'soter' && ctx.soter) {
        // WeChat checks a SOTER signature only for a shopper it knows in the app (§2.1).
        if (ctx.soter.needsIdentity && (!terminal.openidSealed || !terminal.hostAppId))
          throw new ApiError(
            422,
            'identity_required',
            'this terminal has not told who the shopper is in WeChat (POST /v1/terminals/{id}/identity); use the password',
          );
        // The untouched base64 goes to WeChat, but only when it says what `signature` says.
        const untouched = factor.resultJSONSignature;
        if (
          untouched !== undefined &&
          Buffer.from(untouched, 'base64').toString('hex') !== factor.signature
        )
          return false;
        const openid = terminal.openidSealed
          ? ctx.sealer.open(terminal.openidSealed, `openid:${terminal.id}`).toString('utf8')
          : undefined;
        return ctx.soter.verify({
          terminalId: terminal.id,
          ...(terminal.hostAppId ? { hostAppId: terminal.hostAppId } : {}),
          ...(openid ? { openid } : {}),
          resultJSON: factor.resultJSON,
          signatureHex: factor.signature,
          ...(untouched !== undefined ? { signatureBase64: untouched } : {}),
        });
      }
      return false;
    }
  }
}
