import type { CreateRefundRequest, MerchantOrder, Refund } from 'cardpay';
import { neverReceivedAfterMs, type MerchantConfig } from '../infra/config';
import { ApiError } from '../infra/errors';
import type { RefundOutcome } from '../connectors/payments';
import { sha256 } from '../infra/secrets';
import type { MerchantOrderRow, RefundRow, Write } from '../store/types';
import { eventWrite } from './notifications';
import { orderViewOf, refundView } from './views';
import type { Ctx } from './context';

// Refunds (PROTOCOL.md §7.2). What a refund may take is set aside on the order in the same
// transaction that records the refund, by a conditional update: however many refunds race (on
// however many instances), the sum of those not failed never passes what the card paid.

const PAID = ['paid', 'partially_refunded', 'refunded'];

/** The order as the merchant API shows it: with its payment, what was refunded, and each refund. */
export async function orderView(ctx: Ctx, row: MerchantOrderRow): Promise<MerchantOrder> {
  const p = row.paymentId ? await ctx.store.getPayment(row.paymentId) : undefined;
  const last =
    row.status === 'failed' ? await ctx.store.lastPaymentOfOrder(row.orderRef) : undefined;
  return orderViewOf(row, p, p ? await ctx.store.listRefunds(p.id) : [], last);
}

async function ownOrder(ctx: Ctx, merchant: MerchantConfig, orderRef: string) {
  const order = await ctx.store.getMerchantOrder(orderRef);
  if (!order || order.merchantId !== merchant.id)
    throw new ApiError(404, 'order_unknown', 'no such order for this merchant');
  return order;
}

/**
 * A refund's id follows from the merchant's Idempotency-Key: a request that acts again on a key
 * (its first attempt's process died after recording the refund) finds that refund, never a second.
 */
export function refundIdFor(merchantId: string, key: string): string {
  return `rfd_${sha256(`${merchantId}\n${key}`).slice(0, 32)}`;
}

/** `POST /v1/merchant/orders/{orderRef}/refunds`: records the refund, then asks the payment platform. */
export async function createRefund(
  ctx: Ctx,
  merchant: MerchantConfig,
  orderRef: string,
  body: CreateRefundRequest,
  key: string,
): Promise<Refund> {
  const order = await ownOrder(ctx, merchant, orderRef);
  const id = refundIdFor(merchant.id, key);
  const earlier = await ctx.store.getRefund(id);
  if (earlier) {
    if (earlier.orderRef !== orderRef)
      throw new ApiError(409, 'idempotency_conflict', 'this Idempotency-Key made another refund');
    return finishRefund(ctx, await announceResend(ctx, earlier));
  }
  const payment = order.paymentId ? await ctx.store.getPayment(order.paymentId) : undefined;
  if (!PAID.includes(order.status) || !payment || payment.status !== 'succeeded')
    throw new ApiError(
      409,
      'order_not_paid',
      `order ${orderRef} is ${order.status}: nothing to refund`,
    );
  const exceeds = (refundable: number) =>
    new ApiError(422, 'refund_exceeds_charge', `at most ${refundable} can still be refunded`, {
      refundable,
    });
  const refundable = payment.charged - order.refundReserved;
  const amount = body.amount ?? refundable;
  if (amount < 1 || amount > refundable) throw exceeds(refundable);
  const now = ctx.now();
  const row: RefundRow = {
    id,
    orderRef,
    paymentId: payment.id,
    merchantId: merchant.id,
    terminalId: payment.terminalId,
    amount,
    currency: payment.currency,
    reason: body.reason ?? null,
    status: 'pending',
    failureCode: null,
    createdAt: new Date(now).toISOString(),
    nextCheckAt: now + ctx.config.paymentTimeoutMs,
    checks: 0,
    version: 0,
  };
  const recorded = await ctx.store.commit([
    { kind: 'reserveRefund', orderRef, amount, limit: payment.charged },
    { kind: 'insertRefund', row },
  ]);
  if (!recorded) {
    const now = (await ctx.store.getMerchantOrder(orderRef))!;
    throw exceeds(payment.charged - now.refundReserved);
  }
  return finishRefund(ctx, row);
}

/**
 * Before a pending refund is sent again (a retry of a request cut off before or while it was
 * sent: the database went away, the process was killed), the row is moved, versioned: the
 * reconciler leaves it until a request sent now has surely arrived, and one that had already
 * judged it never received finds the row moved and records nothing. Without this, a retry could
 * read the refund as pending, the reconciler record it as failed, and the retry's request then
 * make it: money refunded while the books say it was not. Returns the row as it now stands.
 */
async function announceResend(ctx: Ctx, row: RefundRow): Promise<RefundRow> {
  let r: RefundRow | undefined = row;
  while (r && r.status === 'pending') {
    const patch = { nextCheckAt: ctx.now() + neverReceivedAfterMs(ctx.config) };
    if (await ctx.store.commit([{ kind: 'updateRefund', id: r.id, version: r.version, patch }]))
      return { ...r, ...patch, version: r.version + 1 };
    r = await ctx.store.getRefund(r.id);
  }
  return r ?? row;
}

/** Asks the payment platform (again, under the same refund id) and records what it says. */
async function finishRefund(ctx: Ctx, row: RefundRow): Promise<Refund> {
  if (row.status === 'pending') {
    const payment = (await ctx.store.getPayment(row.paymentId))!;
    const outcome = await ctx.payments.refund({
      refundId: row.id,
      chargeId: payment.chargeId,
      amount: row.amount,
      currency: row.currency,
    });
    await settleRefund(ctx, row.id, outcome);
  }
  return refundView((await ctx.store.getRefund(row.id))!);
}

/** `GET /v1/merchant/refunds/{refundId}`. */
export async function viewRefund(ctx: Ctx, merchant: MerchantConfig, id: string): Promise<Refund> {
  const r = await ctx.store.getRefund(id);
  if (!r || r.merchantId !== merchant.id)
    throw new ApiError(404, 'not_found', 'no such refund for this merchant');
  return refundView(r);
}

/**
 * Records a refund's final outcome (shared with the reconciler): a success moves the order to
 * `partially_refunded` or `refunded`; a failure gives back what the refund had set aside.
 */
export async function settleRefund(
  ctx: Ctx,
  id: string,
  outcome: RefundOutcome | { status: 'failed'; failureCode: string },
  settledBy: 'request' | 'reconciler' = 'request',
  /** Record nothing unless the refund is still at this version (what a verdict was based on). */
  expectedVersion?: number,
): Promise<void> {
  const r = await ctx.store.getRefund(id);
  if (!r || r.status !== 'pending' || outcome.status === 'unknown') return;
  if (expectedVersion !== undefined && r.version !== expectedVersion) return;
  const writes: Write[] = [];
  const payment = (await ctx.store.getPayment(r.paymentId))!;
  const order = (await ctx.store.getMerchantOrder(r.orderRef))!;
  const others = (await ctx.store.listRefunds(r.paymentId)).filter((x) => x.id !== r.id);
  // The event shows the order and the refund as this decision leaves them.
  const event = (status: RefundRow['status'], patch: Partial<RefundRow>, orderStatus?: string) => {
    const settled = { ...r, ...patch, status };
    const refunds = [...others, settled].sort((a, b) =>
      a.createdAt === b.createdAt
        ? a.id.localeCompare(b.id)
        : a.createdAt.localeCompare(b.createdAt),
    );
    const view = orderViewOf(
      { ...order, status: (orderStatus ?? order.status) as MerchantOrderRow['status'] },
      payment,
      refunds,
    );
    return eventWrite(
      ctx,
      r.merchantId,
      status === 'succeeded' ? 'refund.succeeded' : 'refund.failed',
      {
        order: view,
        refund: refundView(settled),
      },
    );
  };
  if (outcome.status === 'succeeded') {
    const done = others
      .filter((x) => x.status === 'succeeded')
      .reduce((n, x) => n + x.amount, r.amount);
    const orderStatus = done >= payment.charged ? 'refunded' : 'partially_refunded';
    writes.push(
      event('succeeded', { nextCheckAt: null }, orderStatus),
      {
        kind: 'updateRefund',
        id,
        version: r.version,
        patch: { status: 'succeeded', nextCheckAt: null, decidedAt: ctx.now() },
      },
      { kind: 'updateOrder', orderRef: r.orderRef, patch: { status: orderStatus } },
      // A refunded purchase earns no discount.
      { kind: 'addHistory', terminalId: r.terminalId, currency: r.currency, amount: -r.amount },
    );
  } else {
    writes.push(
      event('failed', { failureCode: outcome.failureCode, nextCheckAt: null }),
      {
        kind: 'updateRefund',
        id,
        version: r.version,
        patch: {
          status: 'failed',
          failureCode: outcome.failureCode,
          nextCheckAt: null,
          decidedAt: ctx.now(),
        },
      },
      { kind: 'releaseRefund', orderRef: r.orderRef, amount: r.amount },
    );
  }
  // A lost race means another instance settled it first (and logged it).
  if (!(await ctx.store.commit(writes))) return;
  ctx.log.info(
    {
      event: outcome.status === 'succeeded' ? 'refund_succeeded' : 'refund_failed',
      refundId: r.id,
      orderRef: r.orderRef,
      merchantId: r.merchantId,
      amount: r.amount,
      settledBy,
      ...(outcome.status === 'failed' ? { failureCode: outcome.failureCode } : {}),
    },
    outcome.status === 'succeeded' ? 'refund made' : 'refund not made',
  );
  if (outcome.status === 'succeeded') await syncOrderStatus(ctx, r.orderRef, r.paymentId);
}

/**
 * Two refunds of one order that succeed at once each see the other still pending: whichever
 * commits last reads both and puts the order's status right.
 */
async function syncOrderStatus(ctx: Ctx, orderRef: string, paymentId: string): Promise<void> {
  const payment = (await ctx.store.getPayment(paymentId))!;
  const done = (await ctx.store.listRefunds(paymentId))
    .filter((x) => x.status === 'succeeded')
    .reduce((n, x) => n + x.amount, 0);
  const status = done >= payment.charged ? 'refunded' : 'partially_refunded';
  const order = await ctx.store.getMerchantOrder(orderRef);
  if (order && order.status !== status)
    await ctx.store.commit([{ kind: 'updateOrder', orderRef, patch: { status } }]);
}
