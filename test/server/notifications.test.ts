import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyWebhook, type WebhookEvent } from '../../packages/sdk/src/node';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { factorsFor, pay, raw, terminal, toPrompt } from '../support/server-harness';

// PROTOCOL.md §7.3: events written with the outcome that caused them, delivered signed, retried,
// kept across restarts, and readable back.

const SECRET = 'whsec_notifications_test_secret_1';

/** A merchant's receiver: answers with what `answer` says, records what it got. */
class Receiver {
  got: { body: Buffer; signature: string; at: number }[] = [];
  answer: () => number | 'hang' = () => 200;
  private server!: Server;
  url = '';
  async start(port = 0) {
    this.server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.got.push({
          body: Buffer.concat(chunks),
          signature: String(req.headers['cardpay-signature']),
          at: Date.now(),
        });
        const a = this.answer();
        if (a === 'hang') return; // never answers
        res.statusCode = a;
        res.end();
      });
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/cardpay`;
  }
  events(): WebhookEvent[] {
    return this.got.map((g) => verifyWebhook(g.body, g.signature, SECRET));
  }
  async stop() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

async function until(what: string, predicate: () => boolean | Promise<boolean>, ms = 8000) {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('notifications', () => {
  let receiver: Receiver;
  let platform: SandboxPlatform;
  beforeAll(async () => {
    receiver = new Receiver();
    await receiver.start();
    platform = await startSandboxPlatform({
      sandboxWebhookUrl: receiver.url,
      sandboxWebhookSecret: SECRET,
      webhookRetryBaseMs: 50,
      webhookTimeoutMs: 300,
      reconcileEveryMs: 50,
    });
  });
  afterAll(async () => {
    await platform.close();
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.got = [];
    receiver.answer = () => 200;
  });

  it('delivers a signed payment.succeeded with the order as it then stood', async () => {
    const o = await raw(platform, {
      method: 'POST',
      path: '/v1/merchant/orders',
      body: JSON.stringify({ merchantOrderId: 'hook-1', amount: 2500, currency: 'CNY' }),
      headers: { authorization: `Bearer ${platform.merchantKey}` },
    });
    const t = await terminal(platform);
    const at = await toPrompt(t, '4242424242424242', 2500, o.json.orderRef);
    await t.client.authenticate(
      at.sessionId,
      {
        challenge: at.prompt.challenge,
        factors: factorsFor(at.sessionId, at.prompt, at.confirmation),
      },
      await t.client.newIdempotencyKey(),
    );
    await until('the notification', () => receiver.got.length >= 1);
    const [event] = receiver.events();
    expect(event).toMatchObject({
      type: 'payment.succeeded',
      data: {
        order: {
          orderRef: o.json.orderRef,
          status: 'paid',
          payment: { amount: 2500, refunded: 0 },
        },
      },
    });
    // An independent check of the signature: HMAC-SHA256(secret, t + "." + body).
    const { body, signature } = receiver.got[0];
    const [, ts, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature)!;
    expect(createHmac('sha256', SECRET).update(`${ts}.`).update(body).digest('hex')).toBe(v1);
    expect(() => verifyWebhook(body, signature, 'whsec_wrong_secret_0000000')).toThrow(
      expect.objectContaining({ code: 'webhook_signature_invalid' }),
    );
    expect(() => verifyWebhook(body, signature, SECRET, { now: Date.now() + 301000 })).toThrow(
      expect.objectContaining({ code: 'webhook_timestamp_skew' }),
    );

    // A refund is notified too, with the refund and the order it leaves.
    receiver.got = [];
    const refund = await raw(platform, {
      method: 'POST',
      path: `/v1/merchant/orders/${o.json.orderRef}/refunds`,
      body: JSON.stringify({ amount: 500 }),
      headers: {
        authorization: `Bearer ${platform.merchantKey}`,
        'idempotency-key': 'hook-refund-1',
      },
    });
    expect(refund.status).toBe(201);
    await until('the refund notification', () => receiver.got.length >= 1);
    expect(receiver.events()[0]).toMatchObject({
      type: 'refund.succeeded',
      data: {
        refund: { refundId: refund.json.refundId, amount: 500, status: 'succeeded' },
        order: { status: 'partially_refunded', payment: { refunded: 500 } },
      },
    });
  });

  it('reports open-amount payments and declines with the payment and its session', async () => {
    const t = await terminal(platform);
    const r = (await pay(t, '4000000000000002')) as { code: string };
    expect(r.code).toBe('payment_declined');
    await until('the notification', () => receiver.got.length >= 1);
    expect(receiver.events()[0]).toMatchObject({
      type: 'payment.failed',
      data: { payment: { sessionId: expect.stringMatching(/^ses_/) } },
    });
  });

  it('retries a receiver that fails twice, then answers, and delivers once more at most', async () => {
    let calls = 0;
    receiver.answer = () => (++calls <= 2 ? 500 : 200);
    const t = await terminal(platform);
    await pay(t, '4242424242424242');
    await until('three attempts', () => receiver.got.length >= 3);
    await new Promise((r) => setTimeout(r, 400));
    expect(receiver.got).toHaveLength(3);
    const ids = receiver.events().map((e) => e.id);
    expect(new Set(ids).size).toBe(1);
    // Growing delays: the second wait is longer than the first.
    const [a, b, c] = receiver.got.map((g) => g.at);
    expect(c - b).toBeGreaterThan(b - a);
  });

  it('gives a receiver that never answers its time-out, and does not hold up checkouts', async () => {
    receiver.answer = () => 'hang';
    const t = await terminal(platform);
    const started = Date.now();
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
    expect(Date.now() - started).toBeLessThan(2000);
    await until('a retry after the time-out', () => receiver.got.length >= 3);
  });

  it('lists events in the order they were made, page by page', async () => {
    const all: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 100; i++) {
      const r = await raw(platform, {
        method: 'GET',
        path: `/v1/merchant/events?limit=2${after ? `&after=${after}` : ''}`,
        headers: { authorization: `Bearer ${platform.merchantKey}` },
      });
      expect(r.status).toBe(200);
      all.push(...r.json.events.map((e: { id: string }) => e.id));
      after = r.json.nextCursor;
      if (!after) break;
    }
    expect(all.length).toBeGreaterThanOrEqual(5);
    expect(new Set(all).size).toBe(all.length);
    const bad = await raw(platform, {
      method: 'GET',
      path: '/v1/merchant/events?limit=500',
      headers: { authorization: `Bearer ${platform.merchantKey}` },
    });
    expect(bad.json.error.message).toContain('limit');
  });
});

describe('notifications across a restart', () => {
  it('delivers after a restart what a receiver that was down could not take', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'cardpay-hooks-')), 'cardpay.db');
    const receiver = new Receiver();
    await receiver.start();
    const url = receiver.url;
    await receiver.stop(); // down
    const options = {
      db,
      sandboxWebhookUrl: url,
      sandboxWebhookSecret: SECRET,
      sandboxMerchantKey: 'sk_sandbox_hooks_restart',
      webhookRetryBaseMs: 50,
      webhookTimeoutMs: 300,
    };
    const first = await startSandboxPlatform(options);
    const t = await terminal(first);
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
    await new Promise((r) => setTimeout(r, 300)); // attempts fail while the receiver is down
    await first.close();

    await receiver.start(Number(new URL(url).port)); // back, on the same address
    const second = await startSandboxPlatform(options);
    try {
      await until('the delivery', () => receiver.got.length >= 1);
      expect(receiver.events()[0].type).toBe('payment.succeeded');
    } finally {
      await second.close();
      await receiver.stop();
    }
  });
});
