import { createHash, createHmac, randomBytes } from 'node:crypto';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { factorsFor, proof, raw, terminal, toPrompt } from '../support/server-harness';

let platform: SandboxPlatform;
let now = Date.now();
beforeAll(async () => {
  platform = await startSandboxPlatform({
    clock: () => now,
    configObject: { registrationsPerMinute: 1000 },
  });
});
afterAll(() => platform.close());

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Signs by hand, so a test can get any part wrong on purpose. */
function signed(
  t: { id: string; secret: string },
  method: string,
  path: string,
  body?: string,
  over: Record<string, string> = {},
) {
  const ts = over.ts ?? String(Math.floor(now / 1000));
  const nonce = over.nonce ?? randomBytes(16).toString('hex');
  const sig = createHmac('sha256', Buffer.from(t.secret, 'hex'))
    .update([method, path, ts, nonce, sha(body ?? '')].join('\n'))
    .digest('hex');
  return {
    method,
    path,
    body,
    headers: {
      'x-cardpay-terminal': t.id,
      'x-cardpay-timestamp': ts,
      'x-cardpay-nonce': nonce,
      'x-cardpay-signature': over.sig ?? sig,
      ...(method === 'POST'
        ? { 'idempotency-key': over.key ?? `k_${randomBytes(6).toString('hex')}` }
        : {}),
    },
  };
}

function responseSignatureHolds(
  t: { secret: string },
  res: { status: number; headers: Record<string, string>; text: string },
  nonce: string,
) {
  const expected = createHmac('sha256', Buffer.from(t.secret, 'hex'))
    .update([res.status, res.headers['x-cardpay-timestamp'], nonce, sha(res.text)].join('\n'))
    .digest('hex');
  return res.headers['x-cardpay-signature'] === expected;
}

const sessionBody = JSON.stringify({ merchantId: 'mch_sandbox' });

describe('request authentication (PROTOCOL.md §3)', () => {
  it('answers health unsigned', async () => {
    expect(await raw(platform, { method: 'GET', path: '/v1/health' })).toMatchObject({
      status: 200,
      json: { status: 'ok' },
    });
  });

  it('refuses an unknown terminal first, unsigned', async () => {
    const res = await raw(
      platform,
      signed({ id: 'trm_nobody', secret: '00'.repeat(32) }, 'POST', '/v1/sessions', sessionBody),
    );
    expect(res).toMatchObject({ status: 401, json: { error: { code: 'terminal_unknown' } } });
    expect(res.headers['x-cardpay-signature']).toBeUndefined();
  });

  it('checks the timestamp before the nonce and the nonce before the signature, signing every answer', async () => {
    const t = await terminal(platform);
    const nonce = randomBytes(16).toString('hex');
    const skewed = await raw(
      platform,
      signed(t, 'POST', '/v1/sessions', sessionBody, {
        ts: String(Math.floor(now / 1000) - 301),
        sig: '00'.repeat(32),
        nonce,
      }),
    );
    expect(skewed.json.error.code).toBe('timestamp_skew');
    expect(responseSignatureHolds(t, skewed, nonce)).toBe(true);
    const first = await raw(platform, signed(t, 'POST', '/v1/sessions', sessionBody, { nonce }));
    expect(first.status).toBe(201);
    const reused = await raw(
      platform,
      signed(t, 'POST', '/v1/sessions', sessionBody, { nonce, sig: '00'.repeat(32) }),
    );
    expect(reused.json.error.code).toBe('nonce_reused');
    const badSig = await raw(
      platform,
      signed(t, 'POST', '/v1/sessions', sessionBody, { sig: 'ab'.repeat(32) }),
    );
    expect(badSig).toMatchObject({ status: 401, json: { error: { code: 'signature_invalid' } } });
  });

  it('refuses a replayed request as a reused nonce', async () => {
    const t = await terminal(platform);
    const req = signed(t, 'POST', '/v1/sessions', sessionBody);
    expect((await raw(platform, req)).status).toBe(201);
    expect((await raw(platform, req)).json.error.code).toBe('nonce_reused');
  });

  it('refuses a body altered after signing', async () => {
    const t = await terminal(platform);
    const req = signed(t, 'POST', '/v1/sessions', sessionBody);
    const res = await raw(platform, { ...req, body: JSON.stringify({ merchantId: 'mch_other' }) });
    expect(res.json.error.code).toBe('signature_invalid');
  });
});

describe('bodies (PROTOCOL.md §1)', () => {
  it('names the offending field of an invalid body, and an unknown one', async () => {
    const t = await terminal(platform);
    const bad = await raw(
      platform,
      signed(
        t,
        'POST',
        '/v1/sessions',
        JSON.stringify({ merchantId: 'mch_sandbox', orderref: 'x' }),
      ),
    );
    expect(bad).toMatchObject({
      status: 400,
      json: { error: { code: 'invalid_request', message: 'orderref is not a known field' } },
    });
  });

  it('answers 400 to a body that is not JSON, after authenticating, signed', async () => {
    const t = await terminal(platform);
    const req = signed(t, 'POST', '/v1/sessions', '{"merchantId":');
    const res = await raw(platform, req);
    expect(res).toMatchObject({ status: 400, json: { error: { code: 'invalid_request' } } });
    expect(responseSignatureHolds(t, res, req.headers['x-cardpay-nonce'])).toBe(true);
  });

  it('answers 413 to a body over 16 KiB', async () => {
    const t = await terminal(platform);
    const res = await raw(
      platform,
      signed(t, 'POST', '/v1/sessions', JSON.stringify({ merchantId: 'x'.repeat(17000) })),
    );
    expect(res).toMatchObject({ status: 413, json: { error: { code: 'payload_too_large' } } });
  });

  it('answers 400 to a missing or malformed Idempotency-Key', async () => {
    const t = await terminal(platform);
    const res = await raw(
      platform,
      signed(t, 'POST', '/v1/sessions', sessionBody, { key: 'short' }),
    );
    expect(res.json.error).toMatchObject({
      code: 'invalid_request',
      message: expect.stringContaining('Idempotency-Key'),
    });
  });

  it('answers unknown paths with a JSON 404, never a stack', async () => {
    const res = await raw(platform, { method: 'GET', path: '/v1/nothing' });
    expect(res).toMatchObject({ status: 404, json: { error: { code: 'not_found' } } });
  });
});

describe('idempotency (PROTOCOL.md §4)', () => {
  it('answers a repeat with the first outcome, freshly signed, and acts once', async () => {
    const t = await terminal(platform);
    const a = await raw(
      platform,
      signed(t, 'POST', '/v1/sessions', sessionBody, { key: 'same-key-01' }),
    );
    const req = signed(t, 'POST', '/v1/sessions', sessionBody, { key: 'same-key-01' });
    const b = await raw(platform, req);
    expect(b.status).toBe(201);
    expect(b.json.sessionId).toBe(a.json.sessionId);
    expect(responseSignatureHolds(t, b, req.headers['x-cardpay-nonce'])).toBe(true);
  });

  it('answers idempotency_conflict to the same key with another body', async () => {
    const t = await terminal(platform);
    await raw(platform, signed(t, 'POST', '/v1/sessions', sessionBody, { key: 'same-key-02' }));
    const res = await raw(
      platform,
      signed(
        t,
        'POST',
        '/v1/sessions',
        JSON.stringify({ merchantId: 'mch_sandbox', orderRef: 'mor_x' }),
        { key: 'same-key-02' },
      ),
    );
    expect(res).toMatchObject({ status: 409, json: { error: { code: 'idempotency_conflict' } } });
  });

  it('acts once when twenty duplicates arrive at the same time', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation } = await toPromptless(t);
    const body = JSON.stringify({ confirmToken: confirmation.confirmToken, accept: true });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        raw(
          platform,
          signed(t, 'POST', `/v1/sessions/${sessionId}/confirm`, body, { key: 'burst-key-01' }),
        ),
      ),
    );
    const ok = answers.filter((a) => a.status === 200);
    const busy = answers.filter((a) => a.status === 409);
    expect(ok.length + busy.length).toBe(20);
    expect(new Set(ok.map((a) => a.json.authPrompt.challenge)).size).toBe(1);
    for (const b of busy)
      expect(b.json.error).toMatchObject({ code: 'idempotency_in_progress', retryable: true });
  });
});

async function toPromptless(t: Awaited<ReturnType<typeof terminal>>) {
  const s = await t.client.createSession(
    { merchantId: 'mch_sandbox' },
    await t.client.newIdempotencyKey(),
  );
  const o = await t.client.submitOrder(
    s.sessionId,
    { amount: 1999, currency: 'CNY', card: { source: 'manual', payload: '4242424242424242' } },
    await t.client.newIdempotencyKey(),
  );
  return { sessionId: s.sessionId, confirmation: o.confirmation };
}

describe('sessions (PROTOCOL.md §5)', () => {
  it('answers invalid_state with the current state', async () => {
    const t = await terminal(platform);
    const { sessionId } = await toPromptless(t);
    const res = await t.client
      .submitOrder(
        sessionId,
        { amount: 1999, currency: 'CNY', card: { source: 'manual', payload: '4242424242424242' } },
        'again-key-01',
      )
      .catch((e) => e);
    expect(res).toMatchObject({
      code: 'invalid_state',
      status: 409,
      details: { state: 'awaiting_confirmation' },
    });
  });

  it('hides a session from another terminal', async () => {
    const a = await terminal(platform);
    const b = await terminal(platform);
    const { sessionId } = await toPromptless(a);
    await expect(b.client.getSession(sessionId)).rejects.toMatchObject({
      code: 'session_not_found',
      status: 404,
    });
  });

  it('refuses a wrong confirm token, and reads the card itself', async () => {
    const t = await terminal(platform);
    const { sessionId } = await toPromptless(t);
    await expect(
      t.client.confirm(sessionId, { confirmToken: 'ab'.repeat(16), accept: true }, 'tok-key-001'),
    ).rejects.toMatchObject({ code: 'confirm_token_invalid' });
    const s = await t.client.createSession({ merchantId: 'mch_sandbox' }, 'tok-key-002');
    const wallet = await t.client
      .submitOrder(
        s.sessionId,
        {
          amount: 1,
          currency: 'CNY',
          card: { source: 'scan', scanType: 'barCode', payload: '134567890123456789' },
        },
        'tok-key-003',
      )
      .catch((e) => e);
    expect(wallet).toMatchObject({
      code: 'invalid_card',
      status: 422,
      details: { reason: 'wallet_payment_code' },
    });
  });

  it('expires a session 15 minutes after it was made', async () => {
    const t = await terminal(platform);
    const { sessionId } = await toPromptless(t);
    now += 15 * 60 * 1000 + 1;
    try {
      const view = await raw(platform, signed(t, 'GET', `/v1/sessions/${sessionId}`));
      expect(view.json.state).toBe('expired');
      const res = await raw(
        platform,
        signed(
          t,
          'POST',
          `/v1/sessions/${sessionId}/confirm`,
          JSON.stringify({ confirmToken: 'ab'.repeat(16), accept: true }),
        ),
      );
      expect(res).toMatchObject({ status: 410, json: { error: { code: 'session_expired' } } });
    } finally {
      now -= 15 * 60 * 1000 + 1;
    }
  });

  it('ends the session as cancelled when the user rejects the confirmation', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation } = await toPromptless(t);
    expect(
      await t.client.confirm(
        sessionId,
        { confirmToken: confirmation.confirmToken, accept: false },
        'rej-key-001',
      ),
    ).toMatchObject({ state: 'cancelled' });
  });
});

describe('the merchant API (PROTOCOL.md §7)', () => {
  const auth = () => ({ authorization: `Bearer ${platform.merchantKey}` });

  it('creates an order once per merchant order id and shows its payment once paid', async () => {
    const body = JSON.stringify({
      merchantOrderId: 'cart-42',
      amount: 2500,
      currency: 'CNY',
      description: '2 coffees',
    });
    const first = await raw(platform, {
      method: 'POST',
      path: '/v1/merchant/orders',
      body,
      headers: auth(),
    });
    expect(first).toMatchObject({ status: 201, json: { status: 'open', amount: 2500 } });
    const again = await raw(platform, {
      method: 'POST',
      path: '/v1/merchant/orders',
      body,
      headers: auth(),
    });
    expect(again).toMatchObject({ status: 200, json: { orderRef: first.json.orderRef } });

    const t = await terminal(platform);
    const created = await t.client.createSession(
      { merchantId: 'mch_sandbox', orderRef: first.json.orderRef },
      'ord-key-001',
    );
    expect(created.order).toMatchObject({ amount: 2500, description: '2 coffees' });
    const mismatch = await t.client
      .submitOrder(
        created.sessionId,
        { amount: 2499, currency: 'CNY', card: { source: 'manual', payload: '4242424242424242' } },
        'ord-key-002',
      )
      .catch((e) => e);
    expect(mismatch).toMatchObject({ code: 'amount_mismatch', status: 422 });

    const { sessionId, prompt, confirmation } = await toPrompt(
      t,
      '4242424242424242',
      2500,
      first.json.orderRef,
    );
    await t.client.authenticate(
      sessionId,
      {
        challenge: prompt.challenge,
        factors: factorsFor(sessionId, prompt, confirmation),
      },
      'ord-key-003',
    );
    const paid = await raw(platform, {
      method: 'GET',
      path: `/v1/merchant/orders/${first.json.orderRef}`,
      headers: auth(),
    });
    expect(paid.json).toMatchObject({ status: 'paid', payment: { amount: 2500, charged: 2500 } });
    await expect(
      t.client.createSession(
        { merchantId: 'mch_sandbox', orderRef: first.json.orderRef },
        'ord-key-004',
      ),
    ).rejects.toMatchObject({ code: 'order_already_paid' });
  });

  it('refuses a wrong key and an unknown merchant or order', async () => {
    expect(
      (
        await raw(platform, {
          method: 'GET',
          path: '/v1/merchant/orders/mor_x',
          headers: { authorization: 'Bearer wrong-key-123' },
        })
      ).status,
    ).toBe(401);
    const t = await terminal(platform);
    await expect(
      t.client.createSession({ merchantId: 'mch_nobody' }, 'unk-key-001'),
    ).rejects.toMatchObject({ code: 'merchant_unknown' });
    await expect(
      t.client.createSession({ merchantId: 'mch_sandbox', orderRef: 'mor_nothing' }, 'unk-key-002'),
    ).rejects.toMatchObject({ code: 'order_unknown' });
  });
});

describe('terminal registration (PROTOCOL.md §2)', () => {
  it('rate-limits registrations per source address with Retry-After', async () => {
    const small = await startSandboxPlatform({ configObject: { registrationsPerMinute: 2 } });
    try {
      const body = JSON.stringify({
        password: { salt: '00'.repeat(16), iterations: 10000, key: '11'.repeat(32) },
      });
      // The count lives in the database: on a database shared with other platforms this minute
      // may already hold registrations, so what is checked is that no more than two pass.
      const answers = [];
      for (let i = 0; i < 3; i++)
        answers.push(await raw(small, { method: 'POST', path: '/v1/terminals', body }));
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 201).length).toBeLessThanOrEqual(2);
      expect(statuses.slice(statuses.indexOf(429))).toEqual(
        Array(3 - statuses.indexOf(429)).fill(429),
      );
      expect(answers[2].json.error).toMatchObject({ code: 'rate_limited', retryable: true });
      expect(Number(answers[2].headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await small.close();
    }
  });

  it('refuses a biometric key that is not P-256', async () => {
    const body = JSON.stringify({
      password: { salt: '00'.repeat(16), iterations: 10000, key: '11'.repeat(32) },
      biometric: { scheme: 'sandbox-p256', publicKey: 'ab'.repeat(40) },
    });
    expect(await raw(platform, { method: 'POST', path: '/v1/terminals', body })).toMatchObject({
      status: 400,
      json: { error: { message: expect.stringContaining('biometric.publicKey') } },
    });
  });
});
