import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import type { Host } from '../../packages/sdk/src/core/host';
import { createNodeHost } from '../../packages/sdk/src/hosts/node';
import { buildSandbox } from '../../packages/platform/src/sandbox/payment-platform';
import { factorsFor, PASSWORD, proof, SALT } from '../support/server-harness';
import { describePg, freshDatabase } from '../support/postgres';
import { derivePinKey } from '../../packages/sdk/src/core/crypto';
import { toHex } from '../../packages/sdk/src/core/encoding';

// Three `cardpay-platform` processes on one PostgreSQL database behind no single address: every
// request of a checkout goes to an instance picked at random. The payment platform's own records
// (the sandbox, run here) are what is counted.

const bin = join(__dirname, '../../packages/platform/bin/cardpay-platform.js');
const MERCHANT_KEY = 'sk_sandbox_instances_test';

interface Instance {
  url: string;
  child: ChildProcess;
}

function startInstance(db: string, paymentUrl: string, config: string): Promise<Instance> {
  const child = spawn(
    process.execPath,
    [
      bin,
      '--db',
      db,
      '--port',
      '0',
      '--payment-url',
      paymentUrl,
      '--payment-timeout-ms',
      '400',
      '--config',
      config,
      '--log-level',
      'silent',
    ],
    {
      env: {
        ...process.env,
        CARDPAY_MASTER_KEY: '42'.repeat(32),
        CARDPAY_SANDBOX_MERCHANT_KEY: MERCHANT_KEY,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c));
    child.once('exit', (code) => reject(new Error(`instance exited with ${code}: ${err}`)));
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      const url = /listening on (\S+)/.exec(out)?.[1];
      if (url) resolve({ url, child });
    });
  });
}

let db: Awaited<ReturnType<typeof freshDatabase>>;
let sandbox: FastifyInstance;
let sandboxUrl: string;
let instances: Instance[];

/** A host whose every request goes to a random live instance (as a load balancer would). */
function spreadHost(localAddress?: string): Host {
  const base = createNodeHost();
  return {
    ...base,
    request: (req) => {
      const live = instances.filter((i) => i.child.exitCode === null && !i.child.killed);
      const target = new URL(live[Math.floor(Math.random() * live.length)].url);
      const url = new URL(req.url);
      return new Promise((resolve, reject) => {
        const r = httpRequest(
          {
            hostname: target.hostname,
            port: target.port,
            path: url.pathname + url.search,
            method: req.method,
            headers: req.headers,
            ...(localAddress ? { localAddress } : {}),
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers as Record<string, string>,
                body: new Uint8Array(Buffer.concat(chunks)),
              }),
            );
          },
        );
        r.on('error', reject);
        r.end(req.body);
      });
    },
  };
}

async function spreadTerminal() {
  const host = spreadHost();
  const client = new PlatformClient({
    baseUrl: instances[0].url,
    host,
    backoffMs: 20,
    maxRetryAfterMs: 50,
  });
  const key = toHex(derivePinKey(PASSWORD, Buffer.from(SALT, 'hex'), 10000));
  client.identity = await client.register({
    password: { salt: SALT, iterations: 10000, key },
  });
  return { host, client };
}

async function toPrompt(
  t: Awaited<ReturnType<typeof spreadTerminal>>,
  card: string,
  orderRef?: string,
) {
  const k = () => t.client.newIdempotencyKey();
  const s = await t.client.createSession(
    { merchantId: 'mch_sandbox', ...(orderRef ? { orderRef } : {}) },
    await k(),
  );
  const o = await t.client.submitOrder(
    s.sessionId,
    {
      amount: orderRef ? 2500 : 1999,
      currency: 'CNY',
      card: { source: 'manual', payload: card },
    },
    await k(),
  );
  const c = await t.client.confirm(
    s.sessionId,
    { confirmToken: o.confirmation.confirmToken, accept: true },
    await k(),
  );
  return { sessionId: s.sessionId, confirmation: o.confirmation, prompt: c.authPrompt! };
}

async function charges(orderIds: string[]) {
  let all: { status: string }[] = [];
  for (const id of orderIds) {
    const r = await fetch(`${sandboxUrl}/v1/charges?orderId=${id}`);
    all = all.concat(((await r.json()) as { charges: { status: string }[] }).charges);
  }
  return all;
}

describePg('several platform instances on one PostgreSQL database', () => {
  beforeAll(async () => {
    db = await freshDatabase();
    sandbox = await buildSandbox({ db: ':memory:', slowDelayMs: 1500 });
    sandboxUrl = (await sandbox.listen({ port: 0, host: '127.0.0.1' })).replace(
      '[::1]',
      'localhost',
    );
    const config = join(mkdtempSync(join(tmpdir(), 'cardpay-instances-')), 'config.json');
    writeFileSync(config, JSON.stringify({ registrationsPerMinute: 40 }));
    // Started together on an empty database: the migrations run once, under their lock.
    instances = await Promise.all([1, 2, 3].map(() => startInstance(db.url, sandboxUrl, config)));
  }, 60000);
  afterAll(async () => {
    const running = (instances ?? []).filter(
      (i) => i.child.exitCode === null && i.child.signalCode === null,
    );
    await Promise.all(
      running.map((i) => {
        const exited = new Promise((r) => i.child.once('exit', r));
        i.child.kill('SIGTERM');
        return exited;
      }),
    );
    await sandbox?.close();
    await db?.drop();
  });

  it('serves checkouts whose every request reaches a random instance', async () => {
    const t = await spreadTerminal();
    const orderIds: string[] = [];
    for (const card of ['4242424242424242', '4242424242424242', '5555555555554444']) {
      const at = await toPrompt(t, card);
      const r = await t.client.authenticate(
        at.sessionId,
        {
          challenge: at.prompt.challenge,
          factors: factorsFor(at.sessionId, at.prompt, at.confirmation),
        },
        await t.client.newIdempotencyKey(),
      );
      expect(r.state).toBe('succeeded');
      orderIds.push(at.confirmation.orderId);
    }
    expect((await charges(orderIds)).map((c) => c.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
  });

  it('charges once when the same authenticate reaches two instances at the same moment', async () => {
    const t = await spreadTerminal();
    const at = await toPrompt(t, '6200000000000005');
    const body = {
      challenge: at.prompt.challenge,
      factors: factorsFor(at.sessionId, at.prompt, at.confirmation),
    };
    const results = await Promise.allSettled(
      [0, 1, 2, 3].map(() => t.client.authenticate(at.sessionId, body, 'twin-key-0001')),
    );
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    expect(await charges([at.confirmation.orderId])).toHaveLength(1);
  });

  it('charges a merchant order once when two sessions pay it through different instances', async () => {
    const made = await fetch(`${instances[1].url}/v1/merchant/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MERCHANT_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ merchantOrderId: 'multi-1', amount: 2500, currency: 'CNY' }),
    });
    const { orderRef } = (await made.json()) as { orderRef: string };
    const a = await spreadTerminal();
    const b = await spreadTerminal();
    const [pa, pb] = [
      await toPrompt(a, '4242424242424242', orderRef),
      await toPrompt(b, '5555555555554444', orderRef),
    ];
    const results = await Promise.all(
      [
        [a, pa],
        [b, pb],
      ].map(([t, at]) =>
        (t as typeof a).client
          .authenticate(
            (at as typeof pa).sessionId,
            {
              challenge: (at as typeof pa).prompt.challenge,
              factors: factorsFor(
                (at as typeof pa).sessionId,
                (at as typeof pa).prompt,
                (at as typeof pa).confirmation,
              ),
            },
            'order-race-key',
          )
          .catch((e) => e),
      ),
    );
    expect(results.filter((r) => r.state === 'succeeded')).toHaveLength(1);
    expect(await charges([pa.confirmation.orderId, pb.confirmation.orderId])).toHaveLength(1);
  });

  it('locks a terminal whose failures were spread over the instances', async () => {
    const t = await spreadTerminal();
    let last: { code?: string } = {};
    for (let i = 0; i < 5; i++) {
      const at = await toPrompt(t, '4242424242424242');
      last = await t.client
        .authenticate(
          at.sessionId,
          {
            challenge: at.prompt.challenge,
            factors: factorsFor(at.sessionId, at.prompt, at.confirmation, '999999'),
          },
          await t.client.newIdempotencyKey(),
        )
        .catch((e) => e);
    }
    expect(last.code).toBe('auth_locked');
    const at = await toPrompt(t, '4242424242424242');
    for (let i = 0; i < 3; i++) {
      const r = await t.client
        .authenticate(
          at.sessionId,
          {
            challenge: at.prompt.challenge,
            factors: [
              { method: 'password', proof: proof(at.sessionId, at.prompt, at.confirmation) },
              { method: 'cvv', value: '123' },
            ],
          },
          await t.client.newIdempotencyKey(),
        )
        .catch((e) => e);
      expect(r.code).toBe('auth_locked');
    }
  });

  it('shares the registration limit of an address between the instances', async () => {
    const host = spreadHost('127.0.0.2');
    const client = new PlatformClient({ baseUrl: instances[0].url, host, maxAttempts: 1 });
    // The limit counts per minute window: start early in one, so the 42 fall in the same window.
    const left = 60000 - (Date.now() % 60000);
    if (left < 20000) await new Promise((r) => setTimeout(r, left + 50));
    const window = Math.floor(Date.now() / 60000);
    const answers: string[] = [];
    for (let i = 0; i < 42; i++)
      answers.push(
        await client
          .register({ password: { salt: SALT, iterations: 10000, key: '11'.repeat(32) } })
          .then(
            () => 'ok',
            (e) => e.code as string,
          ),
      );
    expect(Math.floor(Date.now() / 60000)).toBe(window);
    expect(answers.filter((a) => a === 'ok')).toHaveLength(40);
    expect(answers.slice(40)).toEqual(['rate_limited', 'rate_limited']);
  }, 40000);

  it('finishes a payment left processing by an instance killed with kill -9', async () => {
    const t = await spreadTerminal();
    const at = await toPrompt(t, '6222021000000000017');
    // Sent to the first instance only, which is then killed while the charge is unanswered.
    const victim = instances[0];
    const direct = new PlatformClient({
      baseUrl: victim.url,
      host: createNodeHost(),
      maxAttempts: 1,
    });
    direct.identity = t.client.identity;
    const r = await direct.authenticate(
      at.sessionId,
      {
        challenge: at.prompt.challenge,
        factors: factorsFor(at.sessionId, at.prompt, at.confirmation),
      },
      'kill-key-00001',
    );
    expect(r.state).toBe('processing');
    victim.child.kill('SIGKILL');
    await new Promise((res) => victim.child.once('exit', res));
    let state = 'processing';
    for (let i = 0; i < 100 && state === 'processing'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      state = (await t.client.getSession(at.sessionId)).state;
    }
    expect(state).toBe('succeeded');
    expect(await charges([at.confirmation.orderId])).toHaveLength(1);
  });
});
