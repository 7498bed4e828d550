import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { pay, terminal } from '../support/server-harness';

// The README's curl calls for a merchant's server, run by bash as written: only the key, the
// address and the order's reference (the `…` a reader fills in) are this run's own.

const root = join(__dirname, '../..');
let platform: SandboxPlatform;
beforeAll(async () => {
  platform = await startSandboxPlatform();
});
afterAll(() => platform.close());

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
  const answers = out
    .trim()
    .split('\n')
    .map((l: string) => JSON.parse(l));
  expect(answers).toHaveLength(4);
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
