import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { pay, terminal } from '../support/server-harness';

// The curl calls for a merchant's server that the README and the merchant guide show, run by bash
// as written: only the key, the address and the order's reference (the `…` a reader fills in)
// are this run's own.

const root = join(__dirname, '../..');
// A platform of its own for each test: both make refunds under the same Idempotency-Key.
let platform: SandboxPlatform;
beforeEach(async () => {
  platform = await startSandboxPlatform();
});
afterEach(() => platform.close());

it('makes the order, refunds part of it once paid, and lists the day’s orders and events', async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## For your server'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1];
  // The order the block makes, made and paid first, as the checkout would have paid it.
  const made = await fetch(`${platform.url}/v1/merchant/orders`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${platform.merchantKey}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ merchantOrderId: 'cart-1042', amount: 1999, currency: 'CNY' }),
  });
  const { orderRef } = (await made.json()) as { orderRef: string };
  const paid = await pay(await terminal(platform), '4242424242424242', 1999, undefined, orderRef);
  expect(paid).toMatchObject({ state: 'succeeded' });
  if (!('payment' in paid)) throw new Error('not paid');

  const script = block
    .replace('sk_sandbox_…', platform.merchantKey)
    .replace(/mor_…/g, orderRef)
    .split('http://127.0.0.1:8787')
    .join(platform.url);
  // Each answer on a line of its own (curl -s prints a body without one).
  // Asynchronously: the platform answering curl runs in this very process.
  const { stdout: out } = await promisify(execFile)('bash', [
    '-c',
    `set -e\ncurl() { command curl "$@"; echo; }\n${script}`,
  ]);
  // Four JSON answers, then the statement's CSV.
  const lines = out.trim().split('\n');
  const csvAt = lines.findIndex((l: string) => l.startsWith('time,type,'));
  const answers = lines.slice(0, csvAt).map((l: string) => JSON.parse(l));
  expect(answers).toHaveLength(4);
  const statement = lines.slice(csvAt).map((l: string) => l.replace(/\r$/, '').split(','));
  expect(
    statement.some((r: string[]) => r[1] === 'payment' && r[4] === paid.payment.paymentId),
  ).toBe(true);
  expect(
    statement[statement.length - 1]
      .slice(1, 2)
      .concat(statement[statement.length - 1].slice(6, 10)),
  ).toEqual(['total', 'CNY', '1499', '0', '1499']);
  expect(answers[0]).toMatchObject({ orderRef, merchantOrderId: 'cart-1042', status: 'paid' });
  expect(answers[1]).toMatchObject({
    orderRef,
    amount: 500,
    reason: 'cold coffee',
    status: 'succeeded',
  });
  expect(answers[2].orders.map((o: { orderRef: string }) => o.orderRef)).toContain(orderRef);
  expect(answers[3].events.map((e: { type: string }) => e.type)).toEqual(
    expect.arrayContaining(['payment.succeeded', 'refund.succeeded']),
  );
});

it('runs the merchant guide’s calls: the order, its state, the day’s paid orders, a refund', async () => {
  const guide = readFileSync(join(root, 'docs/merchant-guide.md'), 'utf8');
  const section = guide.slice(guide.indexOf('## 3.'), guide.indexOf('\n## 4.'));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  expect(blocks).toHaveLength(3);
  const made = await fetch(`${platform.url}/v1/merchant/orders`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${platform.merchantKey}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ merchantOrderId: 'guide-cart', amount: 1999, currency: 'CNY' }),
  });
  const { orderRef } = (await made.json()) as { orderRef: string };
  await pay(await terminal(platform), '4242424242424242', 1999, undefined, orderRef);
  const script = blocks
    .join('\n')
    .replace(/"merchantOrderId": "cart-1042"/, '"merchantOrderId": "guide-cart"')
    .replace(/mor_…/g, orderRef)
    .split('https://pay.example.com')
    .join(platform.url);
  const { stdout } = await promisify(execFile)(
    'bash',
    ['-c', `set -e\ncurl() { command curl -s "$@"; echo; }\n${script}`],
    { env: { ...process.env, CARDPAY_KEY: platform.merchantKey } },
  );
  const answers = stdout
    .trim()
    .split('\n')
    .map((l: string) => JSON.parse(l));
  expect(answers).toHaveLength(4);
  expect(answers[0]).toMatchObject({ orderRef, status: 'paid' });
  expect(answers[1]).toMatchObject({ orderRef, status: 'paid', payment: { charged: 1999 } });
  expect(answers[2].orders.map((o: { orderRef: string }) => o.orderRef)).toContain(orderRef);
  expect(answers[3]).toMatchObject({ orderRef, amount: 500, status: 'succeeded' });
});
