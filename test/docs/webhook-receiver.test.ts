import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signWebhook } from '../../packages/sdk/src/webhooks';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { pay, terminal } from '../support/server-harness';

// The README's webhook receiver, run as written (express and all), fed with real deliveries from
// the platform: a payment, a declined card, a refund. Only what was paid may be fulfilled.

const root = join(__dirname, '../..');
const SECRET = 'whsec_readme_receiver_test_0000000001';

/** What the receiver's `./shop` module was asked to do, in order. */
type Call = { what: string; args: unknown[] };

let platform: SandboxPlatform;
let receiver: ChildProcess;
let receiverUrl: string;
const calls: Call[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cardpay-receiver-'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)]
    .map((m) => m[1])
    .find((code) => code.includes("require('./shop')"));
  expect(block).toBeDefined();
  writeFileSync(join(dir, 'receiver.js'), block!);
  // The merchant's own code, which the README leaves to them: each call is a line on stdout.
  writeFileSync(
    join(dir, 'shop.js'),
    `const seen = new Set();
const say = (what) => async (...args) => { process.stdout.write(JSON.stringify({ what, args }) + '\\n'); };
module.exports = {
  async firstTimeSeen(id) { if (seen.has(id)) return false; seen.add(id); return true; },
  fulfil: say('fulfil'), paymentFailed: say('paymentFailed'), refunded: say('refunded'), refundFailed: say('refundFailed'),
};
`,
  );
  // The README listens on port 3000; here, on a free port it reports (nothing else changes).
  writeFileSync(
    join(dir, 'free-port.js'),
    `const http = require('node:http');
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, ...rest) {
  this.once('listening', () => process.stdout.write(JSON.stringify({ port: this.address().port }) + '\\n'));
  return listen.call(this, port === 3000 ? 0 : port, ...rest);
};
`,
  );
  receiver = spawn(process.execPath, ['-r', './free-port.js', 'receiver.js'], {
    cwd: dir,
    env: { ...process.env, CARDPAY_WEBHOOK_SECRET: SECRET },
  });
  let buffer = '';
  const port = new Promise<number>((resolve) => {
    receiver.stdout!.on('data', (c: Buffer) => {
      buffer += c;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (line.port) resolve(line.port);
        else calls.push(line);
      }
    });
  });
  receiverUrl = `http://127.0.0.1:${await port}/cardpay`;
  platform = await startSandboxPlatform({
    sandboxWebhookUrl: receiverUrl,
    sandboxWebhookSecret: SECRET,
    webhookRetryBaseMs: 200,
  });
}, 30000);

afterAll(async () => {
  receiver?.kill();
  await platform?.close();
});

async function order(merchantOrderId: string, amount: number): Promise<string> {
  const res = await fetch(`${platform.url}/v1/merchant/orders`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${platform.merchantKey}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ merchantOrderId, amount, currency: 'CNY' }),
  });
  return ((await res.json()) as { orderRef: string }).orderRef;
}

async function until(what: string, done: () => boolean) {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!done()) throw new Error(`the receiver never saw ${what}: ${JSON.stringify(calls)}`);
}

describe('the README’s webhook receiver', () => {
  it('fulfils a paid order, and neither a declined card nor a refund', async () => {
    const t = await terminal(platform);
    const paid = await order('readme-paid', 2500);
    const declined = await order('readme-declined', 1800);
    await pay(t, '4242424242424242', 2500, undefined, paid);
    await pay(t, '4000000000000002', 1800, undefined, declined);
    const refund = await fetch(`${platform.url}/v1/merchant/orders/${paid}/refunds`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${platform.merchantKey}`,
        'content-type': 'application/json',
        'idempotency-key': 'readme-refund-0001',
      },
      body: JSON.stringify({ amount: 500 }),
    });
    expect(refund.status).toBe(201);
    await until('all three outcomes', () => calls.length >= 3);
    // Delivered at least once and in any order: what was done, whatever the order.
    expect(calls.map((c) => `${c.what} ${c.args[0]}`).sort()).toEqual([
      'fulfil readme-paid',
      'paymentFailed readme-declined',
      'refunded readme-paid',
    ]);
  });

  it('handles an event delivered twice once, and refuses a forged one', async () => {
    const events = (await (
      await fetch(`${platform.url}/v1/merchant/events?limit=50`, {
        headers: { authorization: `Bearer ${platform.merchantKey}` },
      })
    ).json()) as { events: { type: string }[] };
    const body = JSON.stringify(events.events.find((e) => e.type === 'payment.succeeded'));
    const before = calls.length;
    const again = await fetch(receiverUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'cardpay-signature': signWebhook(SECRET, body, Math.floor(Date.now() / 1000)),
      },
      body,
    });
    expect(again.status).toBe(200);
    const forged = await fetch(receiverUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'cardpay-signature': signWebhook(
          'whsec_not_the_secret_000000000',
          body,
          Math.floor(Date.now() / 1000),
        ),
      },
      body,
    });
    expect(forged.status).toBe(400);
    await new Promise((r) => setTimeout(r, 200));
    expect(calls.length).toBe(before);
  });
});
