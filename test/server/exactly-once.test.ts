import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import { StoreUnavailable } from '../../packages/platform/src/store/types';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { factorsFor, proof, terminal, toPrompt } from '../support/server-harness';

let platform: SandboxPlatform;
beforeAll(async () => {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  platform = await startSandboxPlatform({
    configObject: {
      merchants: [
        {
          id: 'mch_strict',
          apiKeySha256: sha('strict-key-123'),
          openAmounts: true,
          acceptedBrands: ['visa'],
          auth: { methods: ['password', 'cvv'], twoFactorsFrom: 10000 },
        },
      ],
    },
  });
});
afterAll(() => platform.close());

async function charges(orderId: string) {
  return (
    (await (await fetch(`${platform.sandbox!.url}/v1/charges?orderId=${orderId}`)).json()) as {
      charges: unknown[];
    }
  ).charges;
}

/** Spies on the platform's store methods, by the names a test gives them. */
function spyOnStore<K extends string>(methods: Record<K, keyof SandboxPlatform['store']>) {
  const store = platform.store;
  return Object.fromEntries(
    Object.entries(methods).map(([name, method]) => [
      name,
      jest.spyOn(store, method as 'commit') as jest.SpyInstance,
    ]),
  ) as Record<K, jest.SpyInstance>;
}
const restore = (spies: Record<string, jest.SpyInstance>) =>
  Object.values(spies).forEach((s) => s.mockRestore());

describe('the sandbox payment platform', () => {
  it('answers a charge retried under its key with its first answer, and keeps one charge', async () => {
    const charge = {
      chargeId: 'chg_sandbox_retry_1',
      orderId: 'ord_sandbox_retry_1',
      merchantId: 'mch_sandbox',
      pan: '4242424242424242',
      amount: 1000,
      discount: { rateBps: 0, amountOff: 0 },
      charged: 1000,
      currency: 'CNY',
    };
    const post = () =>
      fetch(`${platform.sandbox!.url}/v1/charges`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': charge.chargeId },
        body: JSON.stringify(charge),
      });
    const first = await post();
    const again = await post();
    expect([first.status, again.status]).toEqual([201, 200]);
    const answer = await first.json();
    expect(answer).toMatchObject({
      chargeId: charge.chargeId,
      status: 'succeeded',
      discount: charge.discount,
      card: { brand: 'visa', last4: '4242' },
    });
    expect(answer).not.toHaveProperty('declineCode');
    expect(await again.json()).toEqual(answer);
    expect(await charges(charge.orderId)).toEqual([answer]);
  });
});

describe('exactly one charge per order', () => {
  it('answers a retried authenticate from its record: one payment, one charge', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
    const body = {
      challenge: prompt.challenge,
      factors: factorsFor(sessionId, prompt, confirmation),
    };
    const first = await t.client.authenticate(sessionId, body, 'pay-once-key-1');
    const again = await t.client.authenticate(sessionId, body, 'pay-once-key-1');
    expect(again).toEqual(first);
    expect(await charges(first.payment.orderId)).toHaveLength(1);
  });

  it('charges once when the same authenticate arrives ten times at once', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
    const body = {
      challenge: prompt.challenge,
      factors: factorsFor(sessionId, prompt, confirmation),
    };
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        t.client.authenticate(sessionId, body, i % 2 ? 'burst-a-key-1' : 'burst-b-key-1'),
      ),
    );
    const paid = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{
      payment: { orderId: string; paymentId: string };
    }>[];
    expect(paid.length).toBeGreaterThan(0);
    expect(new Set(paid.map((r) => r.value.payment.paymentId)).size).toBe(1);
    expect(await charges(paid[0].value.payment.orderId)).toHaveLength(1);
  });
});

describe('an answer kept with the change it reports', () => {
  it('is what a retry gets, even when the reply never got to record it', async () => {
    const t = await terminal(platform);
    // As if each reply were lost with its process: the answer's own record never lands.
    const finish = jest.spyOn(platform.store, 'finishIdempotent').mockResolvedValue();
    try {
      const session = await t.client.createSession({ merchantId: 'mch_strict' }, 'kept-open-key');
      expect(await t.client.createSession({ merchantId: 'mch_strict' }, 'kept-open-key')).toEqual(
        session,
      );
      const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
      const body = {
        challenge: prompt.challenge,
        factors: factorsFor(sessionId, prompt, confirmation),
      };
      const first = await t.client.authenticate(sessionId, body, 'kept-pay-key');
      expect(first.state).toBe('succeeded');
      // Without the answer in the payment's commit, the key would stay in progress.
      expect(await t.client.authenticate(sessionId, body, 'kept-pay-key')).toEqual(first);
      expect(await charges(first.payment.orderId)).toHaveLength(1);
      expect(finish).not.toHaveBeenCalled();
    } finally {
      finish.mockRestore();
    }
  });
});

describe('a step’s session, read with its request’s begin', () => {
  it('is what the step decides on: order, confirm and authenticate read nothing of it again', async () => {
    const t = await terminal(platform);
    const reads = jest.spyOn(platform.store, 'sessionWith');
    try {
      const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
      const paid = await t.client.authenticate(
        sessionId,
        { challenge: prompt.challenge, factors: factorsFor(sessionId, prompt, confirmation) },
        'read-ahead-key',
      );
      expect(paid.state).toBe('succeeded');
      expect(reads).not.toHaveBeenCalled();
      // What is read ahead is the session as it stands: a step already taken is refused.
      await expect(
        t.client.confirm(
          sessionId,
          { confirmToken: confirmation.confirmToken, accept: true },
          await t.client.newIdempotencyKey(),
        ),
      ).rejects.toMatchObject({ code: 'invalid_state' });
    } finally {
      reads.mockRestore();
    }
  });
});

describe('a session opened without a merchant order', () => {
  it('is begun with its commit, one write for both, and a repeat still gets the first answer', async () => {
    const t = await terminal(platform);
    const spies = spyOnStore({
      withCommit: 'beginWithCommit',
      alone: 'useNonceAndBegin',
      commit: 'commit',
    });
    try {
      const opened = await t.client.createSession({ merchantId: 'mch_strict' }, 'open-once-key');
      expect(spies.withCommit).toHaveBeenCalledTimes(1);
      expect(spies.alone).not.toHaveBeenCalled();
      expect(spies.commit).not.toHaveBeenCalled();
      // A repeat's begin with the commit does not hold (the key is taken): begun alone, it is
      // answered from the record, and nothing more is written.
      const again = await t.client.createSession({ merchantId: 'mch_strict' }, 'open-once-key');
      expect(again).toEqual(opened);
      expect(await spies.withCommit.mock.results[1].value).toBe(false);
      expect(spies.alone).toHaveBeenCalledTimes(1);
      expect(spies.commit).not.toHaveBeenCalled();
      // Another key opens another session.
      const other = await t.client.createSession({ merchantId: 'mch_strict' }, 'open-twice-key');
      expect(other.sessionId).not.toBe(opened.sessionId);
    } finally {
      restore(spies);
    }
  });

  it('when its commit with the begin fails (the database gone), is begun alone, answered 503 and opened once by the retry', async () => {
    const t = await terminal(platform);
    const spies = spyOnStore({ withCommit: 'beginWithCommit', alone: 'useNonceAndBegin' });
    spies.withCommit.mockRejectedValueOnce(new StoreUnavailable('the database is unavailable'));
    const noRetry = new PlatformClient({ baseUrl: platform.url, host: t.host, maxAttempts: 1 });
    noRetry.identity = t.client.identity;
    try {
      await expect(
        noRetry.createSession({ merchantId: 'mch_strict' }, 'open-after-outage'),
      ).rejects.toMatchObject({ status: 503, retryable: true });
      // Begun alone before the error was answered; the 503 gave the key back.
      expect(spies.alone).toHaveBeenCalledTimes(1);
      const opened = await noRetry.createSession({ merchantId: 'mch_strict' }, 'open-after-outage');
      expect(opened.state).toBe('awaiting_order');
      expect(
        await noRetry.createSession({ merchantId: 'mch_strict' }, 'open-after-outage'),
      ).toEqual(opened);
      expect(spies.withCommit).toHaveBeenCalledTimes(3);
    } finally {
      restore(spies);
    }
  });
});

describe('a session opened for a merchant order', () => {
  it('reads the order with its request’s begin, and nothing of it again', async () => {
    const t = await terminal(platform);
    const res = await fetch(`${platform.url}/v1/merchant/orders`, {
      method: 'POST',
      headers: { authorization: 'Bearer strict-key-123', 'content-type': 'application/json' },
      body: JSON.stringify({ merchantOrderId: 'read-ahead-order', amount: 2500, currency: 'CNY' }),
    });
    const { orderRef } = (await res.json()) as { orderRef: string };
    const spies = spyOnStore({
      order: 'getMerchantOrder',
      begin: 'useNonceAndBegin',
      withCommit: 'beginWithCommit',
    });
    try {
      const opened = await t.client.createSession(
        { merchantId: 'mch_strict', orderRef },
        'open-for-order-key',
      );
      expect(opened.order).toMatchObject({ orderRef, amount: 2500, currency: 'CNY' });
      expect(spies.begin).toHaveBeenCalledTimes(1);
      expect(spies.begin.mock.calls[0][1]).toEqual({ order: orderRef });
      expect(spies.order).not.toHaveBeenCalled();
      expect(spies.withCommit).not.toHaveBeenCalled();
      // An order the read found none of is refused as before.
      await expect(
        t.client.createSession(
          { merchantId: 'mch_strict', orderRef: 'mor_nobody' },
          await t.client.newIdempotencyKey(),
        ),
      ).rejects.toMatchObject({ code: 'order_unknown', status: 404 });
    } finally {
      restore(spies);
    }
  });
});

describe('a repeat while the first is still being processed', () => {
  it('is answered idempotency_in_progress, retryable, and the first outcome stands', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation, prompt } = await toPrompt(t, '6222021000000000017');
    const body = {
      challenge: prompt.challenge,
      factors: factorsFor(sessionId, prompt, confirmation),
    };
    const noRetry = new PlatformClient({ baseUrl: platform.url, host: t.host, maxAttempts: 1 });
    noRetry.identity = t.client.identity;
    // The slow card keeps the first request waiting on the payment platform.
    const first = noRetry.authenticate(sessionId, body, 'in-flight-key-1');
    await new Promise((r) => setTimeout(r, 100));
    await expect(noRetry.authenticate(sessionId, body, 'in-flight-key-1')).rejects.toMatchObject({
      code: 'idempotency_in_progress',
      status: 409,
      retryable: true,
    });
    expect((await first).state).toBe('processing');
    expect(await noRetry.authenticate(sessionId, body, 'in-flight-key-1')).toMatchObject({
      state: 'processing',
    });
  });
});

describe('merchant policy', () => {
  it('asks for two different methods above the merchant’s threshold, and refuses one', async () => {
    const t = await terminal(platform);
    const s = await t.client.createSession({ merchantId: 'mch_strict' }, 'strict-key-01');
    const o = await t.client.submitOrder(
      s.sessionId,
      { amount: 25000, currency: 'CNY', card: { source: 'manual', payload: '4242424242424242' } },
      'strict-key-02',
    );
    const c = await t.client.confirm(
      s.sessionId,
      { confirmToken: o.confirmation.confirmToken, accept: true },
      'strict-key-03',
    );
    expect(c.authPrompt).toMatchObject({ methods: ['password', 'cvv'], required: 2 });
    const password = {
      method: 'password' as const,
      proof: proof(s.sessionId, c.authPrompt!, o.confirmation),
    };
    await expect(
      t.client.authenticate(
        s.sessionId,
        { challenge: c.authPrompt!.challenge, factors: [password] },
        'strict-key-04',
      ),
    ).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
    const r = await t.client.authenticate(
      s.sessionId,
      { challenge: c.authPrompt!.challenge, factors: [password, { method: 'cvv', value: '123' }] },
      'strict-key-05',
    );
    expect(r.state).toBe('succeeded');
  });

  it('refuses a brand the merchant does not take', async () => {
    const t = await terminal(platform);
    const s = await t.client.createSession({ merchantId: 'mch_strict' }, 'brand-key-01');
    await expect(
      t.client.submitOrder(
        s.sessionId,
        {
          amount: 100,
          currency: 'CNY',
          card: { source: 'manual', payload: '6222021000000000009' },
        },
        'brand-key-02',
      ),
    ).rejects.toMatchObject({ code: 'unsupported_card', status: 422 });
  });
});

describe('the cancel extension', () => {
  it('ends a session before processing and refuses to cancel after', async () => {
    const t = await terminal(platform);
    const { sessionId } = await toPrompt(t, '4242424242424242');
    expect(await t.client.cancel(sessionId, 'cancel-key-01')).toMatchObject({ state: 'cancelled' });
    await expect(t.client.cancel(sessionId, 'cancel-key-02')).rejects.toMatchObject({
      code: 'invalid_state',
      details: { state: 'cancelled' },
    });
  });
});

describe('the reconciler', () => {
  it('fails a payment the payment platform never received, once the grace period has passed', async () => {
    // A payment platform that accepts connections and never answers a charge, and knows none.
    const silent = Fastify({ forceCloseConnections: true });
    silent.post('/v1/charges', () => new Promise(() => undefined));
    silent.get('/v1/charges/:id', async (_req, reply) =>
      reply
        .code(404)
        .send({ error: { code: 'not_found', message: 'no such charge', retryable: false } }),
    );
    const url = await silent.listen({ port: 0, host: '127.0.0.1' });
    let now = Date.now();
    // Production mode (a payment URL): merchants come from the config only.
    const merchants = [
      {
        id: 'mch_sandbox',
        apiKeySha256: createHash('sha256').update('k').digest('hex'),
        openAmounts: true,
      },
    ];
    const p = await startSandboxPlatform({
      paymentUrl: url,
      paymentTimeoutMs: 200,
      clock: () => now,
      reconcileEveryMs: 600000,
      configObject: { merchants },
    });
    try {
      const t = await terminal(p as SandboxPlatform);
      const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
      const r = await t.client.authenticate(
        sessionId,
        {
          challenge: prompt.challenge,
          factors: factorsFor(sessionId, prompt, confirmation),
        },
        'silent-key-01',
      );
      expect(r.state).toBe('processing');
      await p.ctx.reconciler.tick();
      expect((await t.client.getSession(sessionId)).state).toBe('processing');
      now += 60000;
      await p.ctx.reconciler.tick();
      const view = await t.client.getSession(sessionId);
      expect(view).toMatchObject({
        state: 'failed',
        error: { code: 'payment_unavailable', retryable: true },
      });
    } finally {
      await p.close();
      await silent.close();
    }
  });
});
