import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { derivePinKey, passwordProof } from '../../packages/sdk/src/core/crypto';
import { toHex } from '../../packages/sdk/src/core/encoding';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { describePg, freshDatabase } from '../support/postgres';
import { factorsFor, pay, raw, terminal, toPrompt } from '../support/server-harness';

// PROTOCOL.md §5.7: a shopper who forgot the payment password proves the cardholder instead (a
// card bound to this terminal and its CVV, checked by the payment platform without a charge) and
// sets a new one. The payment platform's own records are read to show no money moved.

const NEW_PASSWORD = '730194';
const NEW_SALT = 'a5'.repeat(16);
const CONFIG = {
  registrationsPerMinute: 1000,
  throttle: { postsPerSecond: 1000, postsBurst: 1000 },
};

type Terminal = Awaited<ReturnType<typeof terminal>>;

function newKey(password = NEW_PASSWORD) {
  return toHex(derivePinKey(password, Buffer.from(NEW_SALT, 'hex'), 10000));
}

async function reset(t: Terminal, card: string, cvv: string, password = NEW_PASSWORD) {
  return t.client
    .resetPassword(
      {
        card: { source: 'manual', payload: card },
        cvv,
        password: { salt: NEW_SALT, iterations: 10000, key: newKey(password) },
      },
      await t.client.newIdempotencyKey(),
    )
    .then(
      (r) => ({ ok: true as const, ...r }),
      (e: { code: string; status: number }) => ({ ok: false as const, code: e.code }),
    );
}

/** Pays with a password derived under the new salt. */
async function payWithNew(t: Terminal, card: string, password = NEW_PASSWORD) {
  const p = await toPrompt(t, card);
  const pinKey = derivePinKey(password, Buffer.from(NEW_SALT, 'hex'), 10000);
  const proof = passwordProof(pinKey, {
    sessionId: p.sessionId,
    challenge: p.prompt.challenge,
    orderId: p.confirmation.orderId,
    amount: p.confirmation.amount,
    currency: p.confirmation.currency,
  });
  return t.client
    .authenticate(
      p.sessionId,
      {
        challenge: p.prompt.challenge,
        factors: [
          { method: 'password', proof },
          ...(p.prompt.mandatory ? [{ method: 'cvv' as const, value: '123' }] : []),
        ],
      },
      await t.client.newIdempotencyKey(),
    )
    .then(
      (r) => r.state as string,
      (e: { code: string }) => e.code,
    );
}

async function chargesFor(platform: SandboxPlatform, orderIds: string[]) {
  let n = 0;
  for (const id of orderIds) {
    const res = await fetch(`${platform.sandbox!.url}/v1/charges?orderId=${id}`);
    n += ((await res.json()) as { charges: unknown[] }).charges.length;
  }
  return n;
}

function resetSuite(name: string, start: () => Promise<SandboxPlatform>) {
  describe(name, () => {
    let platform: SandboxPlatform;
    beforeAll(async () => {
      platform = await start();
    });
    afterAll(() => platform?.close());

    it('sets a new password with a bound card and its CVV: the new one pays, the old one no longer does', async () => {
      const t = await terminal(platform);
      const card = '6222021000000000009';
      expect((await pay(t, card)) as { state: string }).toMatchObject({ state: 'succeeded' });
      const r = await reset(t, card, '123');
      expect(r).toMatchObject({ ok: true, terminalId: t.id });
      expect(Date.parse((r as { passwordUpdatedAt: string }).passwordUpdatedAt)).not.toBeNaN();
      expect(await payWithNew(t, card)).toBe('succeeded');
      const old = (await pay(t, card)) as { code?: string };
      expect(old.code).toBe('auth_failed');
    });

    it('refuses a card that never paid on this terminal, without asking the payment platform', async () => {
      const t = await terminal(platform);
      await pay(t, '6222021000000000009');
      expect(await reset(t, '4242424242424242', '123')).toEqual({
        ok: false,
        code: 'card_not_bound',
      });
    });

    it('refuses a CVV the payment platform declines, counting it toward the lock', async () => {
      const t = await terminal(platform);
      const card = '5555555555554444';
      await pay(t, card);
      expect(await reset(t, card, '999')).toEqual({ ok: false, code: 'cvv_invalid' });
      const p = await toPrompt(t, card);
      expect(p.prompt.attemptsLeft).toBe(4);
    });

    it('lets a locked terminal reset, lifting the lock and restoring its attempts', async () => {
      const t = await terminal(platform);
      const card = '4242424242424242';
      await pay(t, card);
      let last: { code?: string } = {};
      for (let i = 0; i < 5; i++) last = (await pay(t, card, 1999, '999999')) as { code?: string };
      expect(last.code).toBe('auth_locked');
      expect(((await pay(t, card)) as { code?: string }).code).toBe('auth_locked');
      expect(await reset(t, card, '123')).toMatchObject({ ok: true });
      const p = await toPrompt(t, card);
      expect(p.prompt.attemptsLeft).toBe(5);
      expect(await payWithNew(t, card)).toBe('succeeded');
    });

    it('allows three resets a day per terminal, even when six are sent at once', async () => {
      const t = await terminal(platform);
      const card = '6200000000000005';
      await pay(t, card);
      const outcomes = await Promise.all(Array.from({ length: 6 }, () => reset(t, card, '123')));
      expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
      expect(outcomes.filter((o) => !o.ok).map((o) => (o as { code: string }).code)).toEqual([
        'rate_limited',
        'rate_limited',
        'rate_limited',
      ]);
    });

    it('counts refused CVVs as card-testing attempts: the sixth within the hour is refused before the payment platform', async () => {
      const t = await terminal(platform);
      const card = '6222021000000000009';
      await pay(t, card);
      const codes: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await reset(t, card, '999');
        codes.push(r.ok ? 'ok' : r.code);
      }
      expect(codes).toEqual([...Array(5).fill('cvv_invalid'), 'rate_limited']);
      // Five refusals are also five failures: the terminal is locked. And the card's limit holds
      // for payments on any terminal: this one never reaches the payment platform.
      expect(((await pay(t, card)) as { code?: string }).code).toBe('auth_locked');
      const other = await terminal(platform);
      const p = await toPrompt(other, card);
      const paid = await other.client
        .authenticate(
          p.sessionId,
          {
            challenge: p.prompt.challenge,
            factors: factorsFor(p.sessionId, p.prompt, p.confirmation),
          },
          await other.client.newIdempotencyKey(),
        )
        .then(
          (r) => r.state as string,
          (e: { code: string }) => e.code,
        );
      expect(paid).toBe('rate_limited');
      expect(await chargesFor(platform, [p.confirmation.orderId])).toBe(0);
    });

    it('refuses an unsigned reset', async () => {
      const t = await terminal(platform);
      const res = await raw(platform, {
        method: 'POST',
        path: `/v1/terminals/${t.id}/password`,
        body: JSON.stringify({ cvv: '123' }),
      });
      expect(res.status).toBe(401);
    });
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cardpay-reset-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

resetSuite('a forgotten password, on SQLite', () =>
  startSandboxPlatform({ db: join(dir, 'cardpay.db'), configObject: CONFIG }),
);

describePg('on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.drop());
  resetSuite('a forgotten password', () =>
    startSandboxPlatform({
      db: db.url,
      sandboxDb: join(dir, 'payments-pg.db'),
      configObject: CONFIG,
    }),
  );
});
