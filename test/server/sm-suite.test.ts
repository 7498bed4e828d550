import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { describePg, freshDatabase } from '../support/postgres';
import { createNodeHost } from '../../packages/sdk/src/hosts/node';
import { credentialsKey } from '../../packages/sdk/src/core/enrolment';
import { checkout, PASSWORD as HARNESS_PASSWORD, pay, terminal } from '../support/server-harness';

// PROTOCOL.md §3.1 on the platform: a terminal of the cardpay-sm-v1 suite signs with HMAC-SM3 over
// SM3 body hashes and proves its password with HMAC-SM3; every answer to it is signed the same
// way. Its client here is written from the protocol with node:crypto's SM3 (OpenSSL's), so the
// platform is checked against an independent implementation.

const PASSWORD = HARNESS_PASSWORD;
const CARD = {
  source: 'scan' as const,
  scanType: 'qrCode' as const,
  payload: '6222021000000000009',
};
const SALT = Buffer.alloc(16, 0x5a);

type Digest = 'sm3' | 'sha256';

/** A terminal speaking the protocol by hand, in a chosen digest. */
function smTerminal(platform: SandboxPlatform) {
  let id = '';
  let secret = Buffer.alloc(0);
  const call = async (
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    digest: Digest = 'sm3',
  ) => {
    const raw = body === undefined ? '' : JSON.stringify(body);
    const nonce = randomBytes(16).toString('hex');
    const timestamp = String(Math.floor(Date.now() / 1000));
    const bodyHash = createHash(digest).update(raw).digest('hex');
    const canonical = [method, path, timestamp, nonce, bodyHash].join('\n');
    const res = await fetch(platform.url + path, {
      method,
      headers: {
        'x-cardpay-terminal': id,
        'x-cardpay-timestamp': timestamp,
        'x-cardpay-nonce': nonce,
        'x-cardpay-signature': createHmac(digest, secret).update(canonical).digest('hex'),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(method === 'POST' ? { 'idempotency-key': randomBytes(16).toString('hex') } : {}),
      },
      ...(body === undefined ? {} : { body: raw }),
    });
    const text = await res.text();
    const answer = [
      String(res.status),
      res.headers.get('x-cardpay-timestamp'),
      nonce,
      createHash('sm3').update(text).digest('hex'),
    ].join('\n');
    const signed = (d: Digest) =>
      createHmac(d, secret)
        .update(
          d === 'sm3'
            ? answer
            : answer.replace(/[^\n]+$/, createHash('sha256').update(text).digest('hex')),
        )
        .digest('hex');
    return {
      status: res.status,
      body: JSON.parse(text) as any,
      // Which digest the answer's signature is in.
      signedWith:
        res.headers.get('x-cardpay-signature') === signed('sm3')
          ? 'sm3'
          : res.headers.get('x-cardpay-signature') === signed('sha256')
            ? 'sha256'
            : 'none',
    };
  };
  return {
    get id() {
      return id;
    },
    async register(suite = 'cardpay-sm-v1') {
      const key = pbkdf2Sync(PASSWORD, SALT, 10000, 32, 'sm3').toString('hex');
      const res = await fetch(`${platform.url}/v1/terminals`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          password: { salt: SALT.toString('hex'), iterations: 10000, key },
          suite,
        }),
      });
      const body = (await res.json()) as any;
      if (res.status === 201) {
        id = body.terminalId;
        secret = Buffer.from(body.terminalSecret, 'hex');
      }
      return { status: res.status, body };
    },
    call,
    /** A checkout paid with the password (and the CVV on the card's first payment here). */
    async pay(card = '6222021000000000009', amount = 1999) {
      const s = await call('POST', '/v1/sessions', { merchantId: 'mch_sandbox' });
      const o = await call('POST', `/v1/sessions/${s.body.sessionId}/order`, {
        amount,
        currency: 'CNY',
        card: { source: 'manual', payload: card },
      });
      const c = await call('POST', `/v1/sessions/${s.body.sessionId}/confirm`, {
        confirmToken: o.body.confirmation.confirmToken,
        accept: true,
      });
      const prompt = c.body.authPrompt;
      const pinKey = pbkdf2Sync(PASSWORD, SALT, 10000, 32, 'sm3');
      const message = [
        'cardpay-auth-v1',
        s.body.sessionId,
        prompt.challenge,
        o.body.confirmation.orderId,
        String(amount),
        'CNY',
      ].join('\n');
      const a = await call('POST', `/v1/sessions/${s.body.sessionId}/authenticate`, {
        challenge: prompt.challenge,
        factors: [
          { method: 'password', proof: createHmac('sm3', pinKey).update(message).digest('hex') },
          ...(prompt.mandatory ? [{ method: 'cvv', value: '123' }] : []),
        ],
      });
      return { steps: [s, o, c, a], result: a };
    },
  };
}

function suite(name: string, db: () => string | undefined) {
  describe(name, () => {
    let platform: SandboxPlatform;
    let dir: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'cardpay-sm-'));
      platform = await startSandboxPlatform({
        ...(db() ? { db: db()!, sandboxDb: join(dir, 'payments.db') } : {}),
        configObject: {
          registrationsPerMinute: 1000,
          throttle: { postsPerSecond: 1000, postsBurst: 1000 },
        },
      });
    });
    afterAll(async () => {
      await platform?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('registers an SM terminal, which pays with SM3 signatures and an HMAC-SM3 proof, every answer signed in SM3', async () => {
      const t = smTerminal(platform);
      const r = await t.register();
      expect(r).toMatchObject({ status: 201, body: { suite: 'cardpay-sm-v1' } });
      const { steps, result } = await t.pay();
      expect(result.status).toBe(200);
      expect(result.body).toMatchObject({ state: 'succeeded', payment: { charged: 1999 } });
      expect(steps.map((s) => s.signedWith)).toEqual(['sm3', 'sm3', 'sm3', 'sm3']);
    });

    it('refuses a SHA-256 signature from an SM terminal, its answer still signed in SM3', async () => {
      const t = smTerminal(platform);
      await t.register();
      const r = await t.call('POST', '/v1/sessions', { merchantId: 'mch_sandbox' }, 'sha256');
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('signature_invalid');
      expect(r.signedWith).toBe('sm3');
    });

    it('refuses a wrong password proof of an SM terminal as a failed attempt', async () => {
      const t = smTerminal(platform);
      await t.register();
      const s = await t.call('POST', '/v1/sessions', { merchantId: 'mch_sandbox' });
      const o = await t.call('POST', `/v1/sessions/${s.body.sessionId}/order`, {
        amount: 500,
        currency: 'CNY',
        card: { source: 'manual', payload: '4242424242424242' },
      });
      const c = await t.call('POST', `/v1/sessions/${s.body.sessionId}/confirm`, {
        confirmToken: o.body.confirmation.confirmToken,
        accept: true,
      });
      // A SHA-256 proof of the right password: the wrong suite, so not the terminal's proof.
      const pinKey = pbkdf2Sync(PASSWORD, SALT, 10000, 32, 'sm3');
      const message = [
        'cardpay-auth-v1',
        s.body.sessionId,
        c.body.authPrompt.challenge,
        o.body.confirmation.orderId,
        '500',
        'CNY',
      ].join('\n');
      const a = await t.call('POST', `/v1/sessions/${s.body.sessionId}/authenticate`, {
        challenge: c.body.authPrompt.challenge,
        factors: [
          { method: 'password', proof: createHmac('sha256', pinKey).update(message).digest('hex') },
          { method: 'cvv', value: '123' },
        ],
      });
      expect(a.status).toBe(422);
      expect(a.body.error.code).toBe('auth_failed');
      expect(a.body.authPrompt.attemptsLeft).toBe(4);
    });

    it('refuses a suite it does not know, and lets a cardpay-v1 terminal pay beside an SM one', async () => {
      expect((await smTerminal(platform).register('cardpay-sm-v2')).status).toBe(400);
      const sm = smTerminal(platform);
      await sm.register();
      const v1 = await terminal(platform);
      const [a, b] = await Promise.all([
        sm.pay('4242424242424242', 700),
        pay(v1, '4242424242424242', 700),
      ]);
      expect(a.result.body.state).toBe('succeeded');
      expect(b).toMatchObject({ state: 'succeeded' });
      // The default suite is named in the answer to a registration that named none.
      const plain = await fetch(`${platform.url}/v1/terminals`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          password: { salt: '00'.repeat(16), iterations: 10000, key: '11'.repeat(32) },
        }),
      });
      expect(((await plain.json()) as { suite: string }).suite).toBe('cardpay-v1');
    });

    it('lets the SDK enrol in the SM suite, pay, reset its password with PBKDF2-HMAC-SM3 and pay again', async () => {
      const host = createNodeHost();
      const c = checkout(platform, host, { suite: 'cardpay-sm-v1' });
      host.scanner.push('6222021000000000009');
      await c.start();
      await c.begin();
      await c.enrol(PASSWORD, PASSWORD);
      const stored = JSON.parse((await host.storage.get(credentialsKey(platform.url)))!);
      expect(stored.suite).toBe('cardpay-sm-v1');
      expect((await platform.store.getTerminal(stored.terminalId))?.suite).toBe('cardpay-sm-v1');
      // The key the platform keeps is PBKDF2-HMAC-SM3 of the password, as node:crypto makes it.
      const key = platform.ctx.sealer.open(
        (await platform.store.getTerminal(stored.terminalId))!.pinKeySealed,
        `pin-key:${stored.terminalId}`,
      );
      expect(key).toEqual(pbkdf2Sync(PASSWORD, Buffer.from(stored.salt, 'hex'), 10000, 32, 'sm3'));
      await c.confirm();
      await c.authenticate([
        { method: 'password', password: PASSWORD },
        { method: 'cvv', cvv: '123' },
      ]);
      expect(c.snapshot.state).toBe('succeeded');

      // The card is bound now: a reset proves it with its CVV and sends a new SM3 key.
      const again = checkout(platform, host, { suite: 'cardpay-sm-v1' });
      host.scanner.push('6222021000000000009');
      await again.start();
      await again.begin();
      await again.confirm();
      await again.forgotPassword();
      await again.resetPassword({ card: CARD, cvv: '123', password: '730194', repeat: '730194' });
      await again.authenticate([{ method: 'password', password: '730194' }]);
      expect(again.snapshot.state).toBe('succeeded');
    });

    it('keeps the suite a terminal enrolled with, whatever a later checkout asks for', async () => {
      const host = createNodeHost();
      const first = checkout(platform, host);
      host.scanner.push('4242424242424242');
      await first.start();
      await first.begin();
      await first.enrol(PASSWORD, PASSWORD);
      await first.confirm();
      await first.authenticate([
        { method: 'password', password: PASSWORD },
        { method: 'cvv', cvv: '123' },
      ]);
      const later = checkout(platform, host, { suite: 'cardpay-sm-v1' });
      host.scanner.push('4242424242424242');
      await later.start();
      await later.begin();
      await later.confirm();
      await later.authenticate([{ method: 'password', password: PASSWORD }]);
      expect(later.snapshot.state).toBe('succeeded');
      const stored = JSON.parse((await host.storage.get(credentialsKey(platform.url)))!);
      expect(stored.suite).toBeUndefined();
      expect((await platform.store.getTerminal(stored.terminalId))?.suite ?? 'cardpay-v1').toBe(
        'cardpay-v1',
      );
    });
  });
}

suite('the SM suite over HTTP, on SQLite', () => undefined);

describePg('on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.drop());
  suite('the SM suite over HTTP', () => db.url);
});
