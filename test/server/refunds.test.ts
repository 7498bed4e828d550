import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRefund, refundIdFor } from '../../packages/platform/src/domain/refunds';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import type { AuthenticateResponse } from '../../packages/sdk/src/core/protocol';
import { StoreUnavailable } from '../../packages/platform/src/store/types';
import { factorsFor, PASSWORD, pay, raw, terminal, toPrompt } from '../support/server-harness';

// PROTOCOL.md §7.2 and §8: refunds, counted against the payment platform's own records.

let platform: SandboxPlatform;
const OTHER_KEY = 'refund-other-merchant';
beforeAll(async () => {
  platform = await startSandboxPlatform({
    configObject: {
      merchants: [
        {
          id: 'mch_other',
          apiKeySha256: createHash('sha256').update(OTHER_KEY).digest('hex'),
          openAmounts: true,
        },
      ],
    },
  });
});
afterAll(() => platform.close());

let made = 0;
const as = (key = platform.merchantKey) => ({ authorization: `Bearer ${key}` });

/** A merchant order paid with `card`; returns its reference and the payment. */
async function paidOrder(card = '4242424242424242', amount = 5000) {
  const o = await raw(platform, {
    method: 'POST',
    path: '/v1/merchant/orders',
    body: JSON.stringify({ merchantOrderId: `refund-${++made}`, amount, currency: 'CNY' }),
    headers: as(),
  });
  const orderRef = o.json.orderRef as string;
  const t = await terminal(platform);
  const paid = (await pay(t, card, amount, PASSWORD, orderRef)) as AuthenticateResponse;
  expect(paid.state).toBe('succeeded');
  return { orderRef, payment: paid.payment, terminal: t };
}

function refund(orderRef: string, body: unknown, key?: string, merchantKey?: string) {
  return raw(platform, {
    method: 'POST',
    path: `/v1/merchant/orders/${orderRef}/refunds`,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headers: { ...as(merchantKey), ...(key ? { 'idempotency-key': key } : {}) },
  });
}

async function order(orderRef: string) {
  return (
    await raw(platform, { method: 'GET', path: `/v1/merchant/orders/${orderRef}`, headers: as() })
  ).json;
}

async function sandboxRefund(refundId: string) {
  const r = await fetch(`${platform.sandbox!.url}/v1/refunds/${refundId}`);
  return r.status === 404 ? undefined : ((await r.json()) as { amount: number; status: string });
}

describe('refunds', () => {
  it('refunds part, then the rest, moving the order to partially_refunded and refunded', async () => {
    const { orderRef } = await paidOrder();
    const first = await refund(
      orderRef,
      { amount: 1500, reason: 'one coffee was cold' },
      'rf-part-0001',
    );
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({
      orderRef,
      amount: 1500,
      currency: 'CNY',
      status: 'succeeded',
      reason: 'one coffee was cold',
    });
    expect(await sandboxRefund(first.json.refundId)).toMatchObject({
      amount: 1500,
      status: 'succeeded',
    });
    expect(await order(orderRef)).toMatchObject({
      status: 'partially_refunded',
      payment: { refunded: 1500, refunds: [{ refundId: first.json.refundId }] },
    });
    const rest = await refund(orderRef, undefined, 'rf-rest-0001');
    expect(rest.json).toMatchObject({ amount: 3500, status: 'succeeded' });
    expect(await order(orderRef)).toMatchObject({
      status: 'refunded',
      payment: { refunded: 5000 },
    });
    const view = await raw(platform, {
      method: 'GET',
      path: `/v1/merchant/refunds/${rest.json.refundId}`,
      headers: as(),
    });
    expect(view.json).toEqual(rest.json);
  });

  it('refuses more than the card paid, saying what is still refundable', async () => {
    const { orderRef } = await paidOrder();
    await refund(orderRef, { amount: 4000 }, 'rf-over-0001');
    const over = await refund(orderRef, { amount: 1001 }, 'rf-over-0002');
    expect(over.status).toBe(422);
    expect(over.json).toMatchObject({ error: { code: 'refund_exceeds_charge' }, refundable: 1000 });
  });

  it('refunds once per key: a replay answers the same, another body under it is a conflict', async () => {
    const { orderRef } = await paidOrder();
    const a = await refund(orderRef, { amount: 100 }, 'rf-replay-001');
    const b = await refund(orderRef, { amount: 100 }, 'rf-replay-001');
    expect(b.status).toBe(201);
    expect(b.json).toEqual(a.json);
    expect((await refund(orderRef, { amount: 200 }, 'rf-replay-001')).status).toBe(409);
    expect((await order(orderRef)).payment.refunds).toHaveLength(1);
  });

  it('refunds once when the same key arrives six times at once', async () => {
    const { orderRef } = await paidOrder();
    const answers = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(() => refund(orderRef, { amount: 700 }, 'rf-same-key-01')),
    );
    for (const a of answers)
      if (a.status !== 201) expect(a.json.error).toMatchObject({ code: 'idempotency_in_progress' });
    const o = await order(orderRef);
    expect(o.payment.refunds).toHaveLength(1);
    expect(o.payment.refunded).toBe(700);
  });

  it('finds the refund its key made when a request acts again on a key abandoned mid-way', async () => {
    const { orderRef } = await paidOrder();
    const key = 'rf-abandoned-01';
    // The first attempt recorded the refund, then its process died before answering.
    expect((await refund(orderRef, { amount: 900 }, key)).status).toBe(201);
    const merchant = platform.ctx.config.merchants.find((m) => m.id === 'mch_sandbox')!;
    // Acting on the key again (as after the lease ran out) finds that refund.
    const again = await createRefund(platform.ctx, merchant, orderRef, { amount: 900 }, key);
    expect(again.refundId).toBe(refundIdFor('mch_sandbox', key));
    const o = await order(orderRef);
    expect(o.payment.refunds).toHaveLength(1);
    expect(o.payment.refunded).toBe(900);
    expect((await sandboxRefund(again.refundId))?.amount).toBe(900);
  });

  it('refunds the whole charge once when six different keys race for it', async () => {
    const { orderRef } = await paidOrder();
    const answers = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((i) => refund(orderRef, {}, `rf-race-000${i}`)),
    );
    const made = answers.filter((a) => a.status === 201);
    expect(made).toHaveLength(1);
    expect(answers.filter((a) => a.status === 422)).toHaveLength(5);
    const o = await order(orderRef);
    expect(o).toMatchObject({ status: 'refunded', payment: { refunded: 5000 } });
    let atPaymentPlatform = 0;
    for (const r of o.payment.refunds) if (await sandboxRefund(r.refundId)) atPaymentPlatform++;
    expect(atPaymentPlatform).toBe(1);
  });

  it('records a refund the payment platform refuses as failed, and keeps the amount refundable', async () => {
    const { orderRef } = await paidOrder('4000000000005126');
    const r = await refund(orderRef, {}, 'rf-fail-0001');
    expect(r.json).toMatchObject({ status: 'failed', failureCode: 'refund_failed', amount: 5000 });
    expect(await order(orderRef)).toMatchObject({ status: 'paid', payment: { refunded: 0 } });
    const again = await refund(orderRef, { amount: 6000 }, 'rf-fail-0002');
    expect(again.json).toMatchObject({ refundable: 5000 });
  });

  it('lowers the loyalty history by what was refunded', async () => {
    const { orderRef, terminal: t } = await paidOrder('4242424242424242', 5000);
    expect(await platform.store.historyTotal(t.id, 'CNY')).toBe(5000);
    await refund(orderRef, { amount: 2000 }, 'rf-hist-0001');
    expect(await platform.store.historyTotal(t.id, 'CNY')).toBe(3000);
  });

  it('refuses an order not paid, a missing key, bad fields, and another merchant’s order', async () => {
    const open = await raw(platform, {
      method: 'POST',
      path: '/v1/merchant/orders',
      body: JSON.stringify({
        merchantOrderId: `refund-open-${++made}`,
        amount: 100,
        currency: 'CNY',
      }),
      headers: as(),
    });
    expect((await refund(open.json.orderRef, {}, 'rf-open-0001')).json.error.code).toBe(
      'order_not_paid',
    );
    const { orderRef } = await paidOrder();
    const missing = await refund(orderRef, {});
    expect(missing.status).toBe(400);
    expect(missing.json.error.message).toContain('Idempotency-Key');
    const bad = await refund(orderRef, { amount: 1.5 }, 'rf-bad-00001');
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('amount');
    const long = await refund(orderRef, { reason: 'x'.repeat(201) }, 'rf-bad-00002');
    expect(long.json.error.message).toContain('reason');
    expect((await refund(orderRef, {}, 'rf-other-001', OTHER_KEY)).status).toBe(404);
  });
});

describe('a refund whose answer was lost', () => {
  it('never makes a refund the books call failed: one sent again is not given up meanwhile', async () => {
    const { orderRef } = await paidOrder();
    const payments = platform.ctx.payments;
    const real = payments.refund.bind(payments);
    const now = platform.ctx.now;
    // The first request is cut off before its refund is sent: the database went away.
    payments.refund = async () => {
      throw new StoreUnavailable('the database went away');
    };
    expect((await refund(orderRef, { amount: 1000 }, 'resent-key')).status).toBe(503);
    const refundId = refundIdFor('mch_sandbox', 'resent-key');
    expect(await sandboxRefund(refundId)).toBeUndefined();
    // Long after, when the reconciler would judge it never received, the merchant retries, and
    // the reconciler's pass runs just as the retry is about to send it.
    platform.ctx.now = () => now() + 120000;
    payments.refund = async (r) => {
      await platform.ctx.reconciler.tick();
      return real(r);
    };
    try {
      const again = await refund(orderRef, { amount: 1000 }, 'resent-key');
      expect(again.json).toMatchObject({ status: 'succeeded', amount: 1000 });
    } finally {
      payments.refund = real;
      platform.ctx.now = now;
    }
    expect(await sandboxRefund(refundId)).toMatchObject({ amount: 1000, status: 'succeeded' });
  });

  it('stays pending across a restart and is settled by the reconciler, refunded once', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'cardpay-refund-')), 'cardpay.db');
    const options = {
      db,
      sandboxMerchantKey: 'sk_sandbox_refund_restart',
      reconcileEveryMs: 600000,
    };
    const first = await startSandboxPlatform(options);
    const o = await raw(first, {
      method: 'POST',
      path: '/v1/merchant/orders',
      body: JSON.stringify({ merchantOrderId: 'lost-answer-1', amount: 3000, currency: 'CNY' }),
      headers: { authorization: 'Bearer sk_sandbox_refund_restart' },
    });
    const t = await terminal(first);
    const at = await toPrompt(t, '4242424242424242', 3000, o.json.orderRef);
    await t.client.authenticate(
      at.sessionId,
      {
        challenge: at.prompt.challenge,
        factors: factorsFor(at.sessionId, at.prompt, at.confirmation),
      },
      await t.client.newIdempotencyKey(),
    );
    // The payment platform refunds, but its answer never arrives.
    const payments = first.ctx.payments;
    const real = payments.refund.bind(payments);
    payments.refund = async (r) => {
      await real(r);
      return { status: 'unknown', reason: 'the answer was lost' };
    };
    const pending = await raw(first, {
      method: 'POST',
      path: `/v1/merchant/orders/${o.json.orderRef}/refunds`,
      body: JSON.stringify({ amount: 1000 }),
      headers: {
        authorization: 'Bearer sk_sandbox_refund_restart',
        'idempotency-key': 'lost-answer-key',
      },
    });
    expect(pending.json).toMatchObject({ status: 'pending', amount: 1000 });
    // Pending money is not refundable again.
    const more = await raw(first, {
      method: 'POST',
      path: `/v1/merchant/orders/${o.json.orderRef}/refunds`,
      body: JSON.stringify({ amount: 2001 }),
      headers: {
        authorization: 'Bearer sk_sandbox_refund_restart',
        'idempotency-key': 'lost-answer-key2',
      },
    });
    expect(more.json).toMatchObject({ refundable: 2000 });
    await first.close();

    const second = await startSandboxPlatform(options);
    try {
      second.ctx.now = () => Date.now() + 60000; // past the refund's first check
      await second.ctx.reconciler.tick();
      const view = await raw(second, {
        method: 'GET',
        path: `/v1/merchant/refunds/${pending.json.refundId}`,
        headers: { authorization: 'Bearer sk_sandbox_refund_restart' },
      });
      expect(view.json).toMatchObject({ status: 'succeeded', amount: 1000 });
      const r = await fetch(`${second.sandbox!.url}/v1/refunds/${pending.json.refundId}`);
      expect(((await r.json()) as { amount: number }).amount).toBe(1000);
      const order = await raw(second, {
        method: 'GET',
        path: `/v1/merchant/orders/${o.json.orderRef}`,
        headers: { authorization: 'Bearer sk_sandbox_refund_restart' },
      });
      expect(order.json).toMatchObject({
        status: 'partially_refunded',
        payment: { refunded: 1000 },
      });
    } finally {
      await second.close();
    }
  });
});
