// Full checkouts per second and step latency on the reference platform, with bare Fastify's
// request rate measured in the same run as the baseline. Run: npm run bench:server
import Fastify from 'fastify';
import { PlatformClient } from '../src/core/client';
import { derivePinKey, passwordProof } from '../src/core/crypto';
import { toHex } from '../src/core/encoding';
import { createNodeHost } from '../src/hosts/node';
import { startSandboxPlatform } from '../src/testing/platform';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const CHECKOUTS = Number(process.env.BENCH_CHECKOUTS ?? 1500);
const STEPS = ['session', 'order', 'confirm', 'authenticate'] as const;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function bareFastify(requests: number): Promise<number> {
  const app = Fastify();
  app.get('/v1/health', async () => ({ status: 'ok' }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < requests) await (await fetch(`${url}/v1/health`)).text();
  }));
  const rate = requests / ((performance.now() - t0) / 1000);
  await app.close();
  return rate;
}

async function main() {
  const platform = await startSandboxPlatform({ paymentTimeoutMs: 3000, configObject: { registrationsPerMinute: 100000 } });
  const salt = '0f'.repeat(16);
  const pinKey = derivePinKey('204816', Buffer.from(salt, 'hex'), 10000);
  const terminals = await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    const client = new PlatformClient({ baseUrl: platform.url, host: createNodeHost(), maxAttempts: 1 });
    client.identity = await client.register({ password: { salt, iterations: 10000, key: toHex(pinKey) } });
    return client;
  }));
  const cards = ['6222021000000000009', '4242424242424242', '5555555555554444', '6200000000000005'];

  const latencies: Record<string, number[]> = Object.fromEntries(STEPS.map((s) => [s, []]));
  async function checkout(client: PlatformClient, n: number) {
    const timed = async <T>(step: (typeof STEPS)[number], fn: () => Promise<T>) => {
      const t = performance.now();
      const r = await fn();
      latencies[step].push(performance.now() - t);
      return r;
    };
    const key = () => client.newIdempotencyKey();
    const s = await timed('session', async () => client.createSession({ merchantId: 'mch_sandbox' }, await key()));
    const o = await timed('order', async () => client.submitOrder(s.sessionId, { amount: 1000 + (n % 500), currency: 'CNY', card: { source: 'scan', scanType: 'qrCode', payload: cards[n % cards.length] } }, await key()));
    const c = await timed('confirm', async () => client.confirm(s.sessionId, { confirmToken: o.confirmation.confirmToken, accept: true }, await key()));
    const challenge = c.authPrompt!.challenge;
    const proof = passwordProof(pinKey, { sessionId: s.sessionId, challenge, orderId: o.confirmation.orderId, amount: o.confirmation.amount, currency: 'CNY' });
    const a = await timed('authenticate', async () => client.authenticate(s.sessionId, { challenge, factors: [{ method: 'password', proof }] }, await key()));
    if (a.state !== 'succeeded') throw new Error(`checkout ended ${a.state}`);
  }

  // 1. Capacity: every terminal runs checkouts back to back.
  const bareBefore = await bareFastify(CHECKOUTS * 4);
  let started = 0;
  const t0 = performance.now();
  await Promise.all(terminals.map(async (client) => {
    while (started < CHECKOUTS) await checkout(client, started++);
  }));
  const seconds = (performance.now() - t0) / 1000;
  const bareAfter = await bareFastify(CHECKOUTS * 4);
  const bare = (bareBefore + bareAfter) / 2;
  const checkoutsPerS = CHECKOUTS / seconds;
  console.log(`bare Fastify GET /v1/health: ${bare.toFixed(0)} req/s (${bareBefore.toFixed(0)} before, ${bareAfter.toFixed(0)} after), ${CONCURRENCY} connections`);
  console.log(`full checkouts: ${checkoutsPerS.toFixed(1)}/s = ${(checkoutsPerS * 4).toFixed(0)} signed req/s, ${((checkoutsPerS * 4 * 100) / bare).toFixed(1)}% of bare Fastify (budget >= 30%)`);
  console.log(`  at saturation: ${STEPS.map((s) => `${s} p50 ${pct(latencies[s], 50).toFixed(1)} / p99 ${pct(latencies[s], 99).toFixed(1)} ms`).join('; ')}`);

  // 2. Steady offered load at half the measured capacity: latency without the queue.
  for (const s of STEPS) latencies[s] = [];
  const rate = checkoutsPerS / 2;
  const total = Math.max(100, Math.round(rate * 10));
  const free = [...terminals];
  const waiting: Promise<void>[] = [];
  const t1 = performance.now();
  for (let n = 0; n < total; n++) {
    const due = t1 + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (free.length === 0) await new Promise((r) => setTimeout(r, 1));
    const client = free.pop()!;
    waiting.push(checkout(client, n).finally(() => free.push(client)));
  }
  await Promise.all(waiting);
  console.log(`steady ${rate.toFixed(1)} checkouts/s for ${total}: ${STEPS.map((s) => `${s} p50 ${pct(latencies[s], 50).toFixed(1)} / p99 ${pct(latencies[s], 99).toFixed(1)} ms`).join('; ')} (budget p99 <= 10 ms)`);
  await platform.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
