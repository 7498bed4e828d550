import type { ChargeOutcome } from '../connectors/payments';
import type { MerchantOrderRow, PaymentRow, SessionRow, Write } from '../store/types';
import type { Ctx } from './context';
import { eventWrite } from './notifications';
import { orderViewOf, paymentView } from './views';

// How a charge's outcome is recorded, whoever learns it first: the shopper's own request, or the
// reconciler that asks the payment platform about a charge whose answer never came.

/**
 * Records the final outcome of a charge in one transaction: payment, session, merchant order;
 * the sealed card number is dropped, only the masked one stays. Shared with the reconciler.
 */
export async function settle(
  ctx: Ctx,
  paymentId: string,
  outcome: ChargeOutcome | { status: 'failed'; reason: string },
  /** Who decided: the shopper's request, or the reconciler after an unanswered charge. */
  settledBy: 'request' | 'reconciler' = 'request',
  /**
   * The payment and its session as the caller last wrote them, sparing their reads; if either
   * has moved on since, the versioned writes below find out and nothing is recorded.
   */
  known?: { payment: PaymentRow; session: SessionRow; order?: MerchantOrderRow },
  /** Writes that go with the outcome, given the payment and session as it leaves them. */
  withOutcome?: (payment: PaymentRow, session: SessionRow) => Write[],
): Promise<{ payment: PaymentRow; session: SessionRow } | undefined> {
  const p = known?.payment ?? (await ctx.store.getPayment(paymentId));
  if (!p || p.status !== 'pending' || outcome.status === 'unknown') return undefined;
  const s = known?.session ?? (await ctx.store.getSession(p.sessionId))!;
  const writes: Write[] = [];
  const decidedAt = ctx.now();
  let paymentPatch: Partial<PaymentRow>;
  let sessionPatch: Partial<SessionRow>;
  if (outcome.status === 'succeeded') {
    paymentPatch = { status: 'succeeded', nextCheckAt: null, decidedAt };
    sessionPatch = { state: 'succeeded', panSealed: null, challenge: null };
    writes.push(
      { kind: 'updatePayment', id: p.id, version: p.version, patch: paymentPatch },
      { kind: 'updateSession', id: s.id, version: s.version, patch: sessionPatch },
    );
    // The order stays claimed by this payment for good.
    if (p.orderRef)
      writes.push({
        kind: 'updateOrder',
        orderRef: p.orderRef,
        patch: { status: 'paid', paymentId: p.id },
      });
    // Every payment carries a password or biometric the platform verified (cvv alone is refused),
    // so a payment made clears past failures; a declined one leaves them as they were.
    writes.push(
      { kind: 'clearAuthFailures', terminalId: p.terminalId },
      { kind: 'addHistory', terminalId: p.terminalId, currency: p.currency, amount: p.charged },
    );
    // A CVV the payment platform accepted proves the card is at hand: bind it to this terminal.
    if (p.cvvGiven && p.cardHash)
      writes.push({
        kind: 'bindCard',
        terminalId: p.terminalId,
        cardHash: p.cardHash,
        at: ctx.now(),
      });
  } else {
    const declined = outcome.status === 'declined';
    const error = declined
      ? {
          code: 'payment_declined',
          message: 'the payment platform declined the charge',
          retryable: false,
          declineCode: outcome.declineCode,
        }
      : {
          code: 'payment_unavailable',
          message: 'the payment platform never received the charge',
          retryable: true,
        };
    paymentPatch = {
      status: declined ? 'declined' : 'failed',
      declineCode: declined ? outcome.declineCode : null,
      nextCheckAt: null,
      decidedAt,
    };
    sessionPatch = { state: 'failed', panSealed: null, challenge: null, error };
    writes.push(
      { kind: 'updatePayment', id: p.id, version: p.version, patch: paymentPatch },
      { kind: 'updateSession', id: s.id, version: s.version, patch: sessionPatch },
    );
    // No money moved: the order is free for another attempt.
    if (p.orderRef) writes.push({ kind: 'releaseOrder', orderRef: p.orderRef, paymentId: p.id });
  }
  // The notification, in the same transaction: the order (or, for an open amount, the payment)
  // as this outcome leaves it.
  const settledPayment: PaymentRow = {
    ...p,
    decidedAt,
    ...(outcome.status === 'succeeded'
      ? { status: 'succeeded' as const }
      : outcome.status === 'declined'
        ? { status: 'declined' as const, declineCode: outcome.declineCode }
        : { status: 'failed' as const }),
  };
  const type = outcome.status === 'succeeded' ? 'payment.succeeded' : 'payment.failed';
  // Claimed by this payment since it was read, the order changes by this settlement alone.
  const order = p.orderRef
    ? (known?.order ?? (await ctx.store.getMerchantOrder(p.orderRef)))
    : undefined;
  writes.push(
    eventWrite(
      ctx,
      p.merchantId,
      type,
      order
        ? {
            order: orderViewOf(
              outcome.status === 'succeeded'
                ? { ...order, status: 'paid', paymentId: p.id }
                : { ...order, status: 'failed' },
              settledPayment,
              [],
              settledPayment,
            ),
          }
        : { payment: { ...paymentView(settledPayment), sessionId: p.sessionId } },
    ),
  );
  const after = {
    payment: { ...p, ...paymentPatch, version: p.version + 1 },
    session: { ...s, ...sessionPatch, version: s.version + 1 },
  };
  if (withOutcome) writes.push(...withOutcome(after.payment, after.session));
  // A lost race means another instance settled it first (and logged it).
  if (!(await ctx.store.commit(writes))) return undefined;
  ctx.log?.info(
    {
      event: outcome.status === 'succeeded' ? 'payment_succeeded' : 'payment_failed',
      paymentId: p.id,
      terminalId: p.terminalId,
      merchantId: p.merchantId,
      charged: p.charged,
      settledBy,
      ...(outcome.status === 'declined' ? { declineCode: outcome.declineCode } : {}),
      ...(outcome.status === 'failed' ? { reason: outcome.reason } : {}),
    },
    outcome.status === 'succeeded' ? 'payment made' : 'payment not made',
  );
  return after;
}
