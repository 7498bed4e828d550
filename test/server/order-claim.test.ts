import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { factorsFor, raw, terminal, toPrompt } from '../support/server-harness';

// PROTOCOL.md §5.4: a merchant order is paid at most once, however many sessions are opened for
// it. Every test counts the payment platform's own charges.

let platform: SandboxPlatform;
beforeAll(async () => {
  // The reconciler is driven by hand (settled() below), so a test decides when an unknown
  // outcome is settled rather than racing it.
  platform = await startSandboxPlatform({ reconcileEveryMs: 600000 });
});
afterAll(() => platform.close());

let orders = 0;
type Terminal = Awaited<ReturnType<typeof terminal>>;

async function newOrder(p: SandboxPlatform, amount = 2500) {
  const r = await raw(p, {
    method: 'POST',
    path: '/v1/merchant/orders',
    body: JSON.stringify({
      merchantOrderId: `shop-${Date.now()}-${++orders}`,
      amount,
      currency: 'CNY',
    }),
    headers: { authorization: `Bearer ${p.merchantKey}` },
  });
  expect(r.status).toBe(201);
  return r.json as { orderRef: string; amount: number };
}

async function orderOf(p: SandboxPlatform, orderRef: string) {
  return (
    await raw(p, {
      method: 'GET',
      path: `/v1/merchant/orders/${orderRef}`,
      headers: { authorization: `Bearer ${p.merchantKey}` },
    })
  ).json as { status: string; payment?: { paymentId: string; orderId: string } };
}

/** Every charge the payment platform made for these sessions' order ids. */
async function charges(p: SandboxPlatform, orderIds: string[]) {
  const all: { status: string }[] = [];
  for (const id of orderIds) {
    const res = await fetch(`${p.sandbox!.url}/v1/charges?orderId=${id}`);
    all.push(...((await res.json()) as { charges: { status: string }[] }).charges);
  }
  return all;
}

/** A terminal at the authentication prompt of a session for the order, with its card. */
async function atPrompt(p: SandboxPlatform, orderRef: string, amount: number, card: string) {
  const t = await terminal(p);
  const at = await toPrompt(t, card, amount, orderRef);
  return { t, ...at };
}

function authenticate(
  s: Awaited<ReturnType<typeof atPrompt>>,
  prompt = s.prompt,
  key?: string,
  client: PlatformClient = s.t.client,
) {
  // Either answer, loosely typed: the tests read whichever fields the outcome has.
  return (async () =>
    client.authenticate(
      s.sessionId,
      { challenge: prompt.challenge, factors: factorsFor(s.sessionId, prompt, s.confirmation) },
      key ?? (await client.newIdempotencyKey()),
    ))().catch((e) => e) as Promise<any>;
}

async function settled(t: Terminal, sessionId: string, on = platform) {
  for (let i = 0; i < 100; i++) {
    await on.ctx.reconciler.tick();
    const view = await t.client.getSession(sessionId);
    if (view.state !== 'processing') return view;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('still processing');
}

describe('a merchant order is paid at most once', () => {
  it('refuses the second of two sessions paid one after the other, charging nothing', async () => {
    const order = await newOrder(platform);
    const a = await atPrompt(platform, order.orderRef, 2500, '4242424242424242');
    const b = await atPrompt(platform, order.orderRef, 2500, '5555555555554444');
    const first = await authenticate(a, a.prompt, 'winning-key-1');
    expect(first).toMatchObject({ state: 'succeeded' });
    const second = await authenticate(b);
    expect(second).toMatchObject({ code: 'order_already_paid', status: 409, retryable: false });
    expect((await b.t.client.getSession(b.sessionId)).state).toBe('failed');
    expect((await b.t.client.getSession(b.sessionId)).error).toMatchObject({
      code: 'order_already_paid',
    });
    const paid = await orderOf(platform, order.orderRef);
    expect(paid).toMatchObject({ status: 'paid', payment: { paymentId: first.payment.paymentId } });
    expect(await charges(platform, [a.confirmation.orderId, b.confirmation.orderId])).toHaveLength(
      1,
    );
    // A replay of the winning call is still the same answer, and still one charge.
    expect(await authenticate(a, a.prompt, 'winning-key-1')).toEqual(first);
    expect(await charges(platform, [a.confirmation.orderId, b.confirmation.orderId])).toHaveLength(
      1,
    );
  });

  it('charges once when eight sessions of one order authenticate at the same moment', async () => {
    const order = await newOrder(platform);
    const cards = ['4242424242424242', '5555555555554444', '6200000000000005'];
    const sessions = await Promise.all(
      Array.from({ length: 8 }, (_, i) => atPrompt(platform, order.orderRef, 2500, cards[i % 3])),
    );
    const results = await Promise.all(sessions.map((s) => authenticate(s)));
    const won = results.filter((r) => r.state === 'succeeded');
    expect(won).toHaveLength(1);
    for (const r of results.filter((x) => x.state !== 'succeeded'))
      expect(['order_already_paid', 'order_payment_in_progress']).toContain(r.code);
    const made = await charges(
      platform,
      sessions.map((s) => s.confirmation.orderId),
    );
    expect(made).toHaveLength(1);
    expect(made[0].status).toBe('succeeded');
    expect(await orderOf(platform, order.orderRef)).toMatchObject({
      status: 'paid',
      payment: { paymentId: won[0].payment.paymentId },
    });
  });

  it('asks another session to check again while a payment for the order is processing', async () => {
    const order = await newOrder(platform);
    const slow = await atPrompt(platform, order.orderRef, 2500, '6222021000000000017');
    const other = await atPrompt(platform, order.orderRef, 2500, '4242424242424242');
    const first = await authenticate(slow);
    expect(first).toMatchObject({ state: 'processing' });

    const waiting = await authenticate(other);
    expect(waiting).toMatchObject({
      code: 'order_payment_in_progress',
      status: 409,
      retryable: true,
      details: { state: 'awaiting_authentication' },
    });
    // Not a failed attempt, and a fresh challenge to answer later.
    const fresh = waiting.details.authPrompt;
    expect(fresh.attemptsLeft).toBe(5);
    expect(fresh.challenge).not.toBe(other.prompt.challenge);
    expect((await other.t.client.getSession(other.sessionId)).state).toBe(
      'awaiting_authentication',
    );

    expect((await settled(slow.t, slow.sessionId)).state).toBe('succeeded');
    const after = await authenticate(other, fresh);
    expect(after).toMatchObject({ code: 'order_already_paid', status: 409 });
    const made = await charges(platform, [slow.confirmation.orderId, other.confirmation.orderId]);
    expect(made).toHaveLength(1);
    expect(await orderOf(platform, order.orderRef)).toMatchObject({ status: 'paid' });
  });

  it('frees the order after a decline, carrying the reason inside error, for another card to pay', async () => {
    const order = await newOrder(platform);
    const declined = await atPrompt(platform, order.orderRef, 2500, '4000000000000002');
    const paying = await atPrompt(platform, order.orderRef, 2500, '4242424242424242');
    const r = await authenticate(declined);
    expect(r).toMatchObject({
      code: 'payment_declined',
      status: 402,
      details: { declineCode: 'card_declined' },
    });
    expect(await orderOf(platform, order.orderRef)).toMatchObject({ status: 'failed' });
    expect(await authenticate(paying)).toMatchObject({ state: 'succeeded' });
    const made = await charges(platform, [
      declined.confirmation.orderId,
      paying.confirmation.orderId,
    ]);
    expect(made.map((c) => c.status).sort()).toEqual(['declined', 'succeeded']);
    expect(await orderOf(platform, order.orderRef)).toMatchObject({ status: 'paid' });
  });

  it('answers a 402 with declineCode inside error, as the session view does', async () => {
    const order = await newOrder(platform);
    const s = await atPrompt(platform, order.orderRef, 2500, '4000000000009995');
    const bodies: string[] = [];
    const send = s.t.host.request.bind(s.t.host);
    s.t.host.request = async (req) => {
      const res = await send(req);
      bodies.push(Buffer.from(res.body).toString('utf8'));
      return res;
    };
    expect(await authenticate(s)).toMatchObject({ status: 402 });
    const body = JSON.parse(bodies[bodies.length - 1]);
    expect(body).toEqual({
      error: {
        code: 'payment_declined',
        message: expect.any(String),
        retryable: false,
        declineCode: 'insufficient_funds',
      },
    });
    const view = await s.t.client.getSession(s.sessionId);
    expect(view.error).toEqual(body.error);
  });

  it('keeps the claim across a restart: a processing payment still holds the order', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'cardpay-claim-')), 'cardpay.db');
    const first = await startSandboxPlatform({ db, reconcileEveryMs: 600000 });
    const order = await newOrder(first);
    const slow = await atPrompt(first, order.orderRef, 2500, '6222021000000000017');
    const other = await atPrompt(first, order.orderRef, 2500, '4242424242424242');
    expect(await authenticate(slow)).toMatchObject({ state: 'processing' });
    await first.close();

    const second = await startSandboxPlatform({
      db,
      reconcileEveryMs: 600000,
      sandboxMerchantKey: first.merchantKey,
    });
    try {
      const client = new PlatformClient({ baseUrl: second.url, host: other.t.host });
      client.identity = other.t.client.identity;
      // The restarted server's reconciler looks at the processing payment at once, and may have
      // settled it by the time this arrives: either way the order is not paid again.
      const waiting = await authenticate(other, other.prompt, undefined, client);
      expect(['order_payment_in_progress', 'order_already_paid']).toContain(waiting.code);
      const slowClient = new PlatformClient({ baseUrl: second.url, host: slow.t.host });
      slowClient.identity = slow.t.client.identity;
      expect((await settled({ ...slow.t, client: slowClient }, slow.sessionId, second)).state).toBe(
        'succeeded',
      );
      if (waiting.code === 'order_payment_in_progress') {
        const after = await authenticate(other, waiting.details.authPrompt, undefined, client);
        expect(after).toMatchObject({ code: 'order_already_paid' });
      }
      const made = await charges(second, [slow.confirmation.orderId, other.confirmation.orderId]);
      expect(made).toHaveLength(1);
    } finally {
      await second.close();
    }
  });
});
