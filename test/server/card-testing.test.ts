import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import { createNodeHost } from '../../packages/sdk/src/hosts/node';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { describePg, freshDatabase } from '../support/postgres';
import { factorsFor, terminal, toPrompt } from '../support/server-harness';

// PROTOCOL.md §5.3, velocity under concurrency: a payment still waiting for the payment platform
// counts against the limits, so however many attempts arrive at once, from however many
// terminals or instances, no more than the limit of them with one card reach the payment
// platform in an hour. The payment platform here answers every charge 400 ms late, and what it
// recorded is what is counted.

const DELAY_MS = 400;
const CONFIG = {
  registrationsPerMinute: 1000,
  velocity: { cardDeclinesPerHour: 5, terminalDeclinesPerHour: 10 },
  // One terminal opening twenty sessions in a second is the attack here, not the write limit.
  throttle: { postsPerSecond: 1000, postsBurst: 1000, openSessionsPerTerminal: 100 },
};

/** Charges the payment platform itself recorded for these orders. */
async function chargesFor(sandboxUrl: string, orderIds: string[]): Promise<number> {
  const counts = await Promise.all(
    orderIds.map(async (id) => {
      const res = await fetch(`${sandboxUrl}/v1/charges?orderId=${id}`);
      return ((await res.json()) as { charges: unknown[] }).charges.length;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

type Terminal = Awaited<ReturnType<typeof terminal>>;

/** The same terminal speaking to another instance. */
function through(t: Terminal, instance: SandboxPlatform): PlatformClient {
  const client = new PlatformClient({
    baseUrl: instance.url,
    host: createNodeHost(),
    maxAttempts: 1,
  });
  client.identity = t.client.identity;
  return client;
}

/** Authenticates a prepared prompt with the password and a wrong CVV; the outcome, never a throw. */
async function wrongCvv(client: PlatformClient, p: Awaited<ReturnType<typeof toPrompt>>) {
  return client
    .authenticate(
      p.sessionId,
      {
        challenge: p.prompt.challenge,
        factors: factorsFor(p.sessionId, p.prompt, p.confirmation, undefined, '999'),
      },
      await client.newIdempotencyKey(),
    )
    .then(
      (r) => r.state as string,
      (e: { code: string }) => e.code,
    );
}

function cardTesting(name: string, start: () => Promise<SandboxPlatform[]>) {
  describe(name, () => {
    let instances: SandboxPlatform[];
    beforeAll(async () => {
      instances = await start();
    });
    afterAll(async () => {
      for (const i of [...(instances ?? [])].reverse()) await i.close();
    });
    const sandboxUrl = () => instances[0].sandbox!.url;

    it('lets at most 5 of 30 simultaneous wrong CVVs for one card, from 30 fresh terminals, reach the payment platform', async () => {
      const card = '6200000000000005';
      const terminals = await Promise.all(Array.from({ length: 30 }, () => terminal(instances[0])));
      const prompts = await Promise.all(terminals.map((t) => toPrompt(t, card)));
      const outcomes = await Promise.all(
        terminals.map((t, i) => wrongCvv(through(t, instances[i % instances.length]), prompts[i])),
      );
      const charged = await chargesFor(
        sandboxUrl(),
        prompts.map((p) => p.confirmation.orderId),
      );
      expect(charged).toBeLessThanOrEqual(5);
      expect(charged).toBeGreaterThan(0);
      // Every other attempt was refused before the payment platform heard of it.
      expect(outcomes.filter((o) => o === 'payment_declined')).toHaveLength(charged);
      expect(outcomes.filter((o) => o === 'rate_limited')).toHaveLength(30 - charged);
    });

    it('lets at most 5 of 20 sessions of one terminal, sent 25 ms apart with one card, reach the payment platform', async () => {
      const card = '5555555555554444';
      const t = await terminal(instances[0]);
      const prompts: Awaited<ReturnType<typeof toPrompt>>[] = [];
      for (let i = 0; i < 20; i++) prompts.push(await toPrompt(t, card));
      const sent: Promise<string>[] = [];
      for (const [i, p] of prompts.entries()) {
        sent.push(wrongCvv(through(t, instances[i % instances.length]), p));
        await new Promise((r) => setTimeout(r, 25));
      }
      const outcomes = await Promise.all(sent);
      const charged = await chargesFor(
        sandboxUrl(),
        prompts.map((p) => p.confirmation.orderId),
      );
      expect(charged).toBeLessThanOrEqual(5);
      expect(charged).toBeGreaterThan(0);
      expect(outcomes.filter((o) => o === 'payment_declined')).toHaveLength(charged);
      expect(outcomes.every((o) => o === 'payment_declined' || o === 'rate_limited')).toBe(true);
    });

    it('gives the slot back when a payment succeeds: good payments of one card are not limited once done', async () => {
      const t = await terminal(instances[0]);
      const card = '4242424242424242';
      for (let i = 0; i < 7; i++) {
        const p = await toPrompt(t, card);
        const r = await t.client.authenticate(
          p.sessionId,
          {
            challenge: p.prompt.challenge,
            factors: factorsFor(p.sessionId, p.prompt, p.confirmation),
          },
          await t.client.newIdempotencyKey(),
        );
        expect(r.state).toBe('succeeded');
      }
    });
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cardpay-card-testing-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

cardTesting('card testing against a slow payment platform, on SQLite', async () => [
  await startSandboxPlatform({
    db: join(dir, 'cardpay.db'),
    configObject: CONFIG,
    sandboxChargeDelayMs: DELAY_MS,
    paymentTimeoutMs: 3000,
  }),
]);

describePg('on PostgreSQL with two instances', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.drop());
  cardTesting('card testing against a slow payment platform', async () => {
    const first = await startSandboxPlatform({
      db: db.url,
      sandboxDb: join(dir, 'payments-pg.db'),
      configObject: CONFIG,
      sandboxChargeDelayMs: DELAY_MS,
      paymentTimeoutMs: 3000,
    });
    const second = await startSandboxPlatform({
      db: db.url,
      paymentUrl: first.sandbox!.url,
      sandboxMerchantKey: first.merchantKey,
      configObject: CONFIG,
      paymentTimeoutMs: 3000,
    });
    return [first, second];
  });
});
