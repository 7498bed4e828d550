import type { CardBrand, MerchantOrder, Payment, Refund } from 'cardpay';
import type { MerchantOrderRow, PaymentRow, RefundRow } from '../store/types';

// How the domain's rows are shown on the wire: by the session and merchant APIs and in events.

export function paymentView(p: PaymentRow): Payment {
  return {
    paymentId: p.id,
    orderId: p.orderId,
    amount: p.amount,
    discount: { rateBps: p.rateBps, amountOff: p.amountOff },
    charged: p.charged,
    currency: p.currency,
    createdAt: new Date(p.createdAt).toISOString(),
    ...(p.decidedAt ? { decidedAt: new Date(p.decidedAt).toISOString() } : {}),
    ...(p.cardBrand && p.cardLast4
      ? { card: { brand: p.cardBrand as CardBrand, last4: p.cardLast4 } }
      : {}),
  };
}

export function refundView(r: RefundRow): Refund {
  return {
    refundId: r.id,
    orderRef: r.orderRef,
    paymentId: r.paymentId,
    amount: r.amount,
    currency: r.currency,
    ...(r.reason ? { reason: r.reason } : {}),
    status: r.status,
    ...(r.failureCode ? { failureCode: r.failureCode } : {}),
    createdAt: r.createdAt,
  };
}

/** The same view from rows at hand: what an event shows of the order at the moment it decides. */
export function orderViewOf(
  row: MerchantOrderRow,
  payment: PaymentRow | undefined,
  refunds: RefundRow[],
  /** The order's latest attempt: a `failed` order says why. */
  lastAttempt?: PaymentRow,
): MerchantOrder {
  return {
    orderRef: row.orderRef,
    merchantId: row.merchantId,
    merchantOrderId: row.merchantOrderId,
    amount: row.amount,
    currency: row.currency,
    status: row.status,
    createdAt: row.createdAt,
    ...(row.description ? { description: row.description } : {}),
    ...(row.status === 'failed' && lastAttempt && lastAttempt.status !== 'pending'
      ? {
          failure: {
            paymentId: lastAttempt.id,
            code: lastAttempt.declineCode ?? 'never_received',
            ...(lastAttempt.decidedAt ? { at: new Date(lastAttempt.decidedAt).toISOString() } : {}),
          },
        }
      : {}),
    ...(payment && row.paymentId === payment.id
      ? {
          payment: {
            ...paymentView(payment),
            refunded: refunds
              .filter((r) => r.status === 'succeeded')
              .reduce((n, r) => n + r.amount, 0),
            refunds: refunds.map(refundView),
          },
        }
      : {}),
  };
}
