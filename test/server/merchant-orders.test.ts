import { createHash } from 'node:crypto';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { PASSWORD, pay, raw, terminal } from '../support/server-harness';

// PROTOCOL.md §7.1: the merchant's order list, what a daily reconciliation reads.

let platform: SandboxPlatform;
const OTHER_KEY = 'other-merchant-key-1';
beforeAll(async () => {
  platform = await startSandboxPlatform({
    configObject: {
      merchants: [
        {
          id: 'mch_other',
          apiKeySha256: createHash('sha256').update(OTHER_KEY).digest('hex'),
          openAmounts: true,
        },
      ],
    },
  });
});
afterAll(() => platform.close());

let made = 0;
const as = (key: string) => ({ authorization: `Bearer ${key}` });

async function newOrder(amount = 1000) {
  const r = await raw(platform, {
    method: 'POST',
    path: '/v1/merchant/orders',
    body: JSON.stringify({ merchantOrderId: `list-${++made}`, amount, currency: 'CNY' }),
    headers: as(platform.merchantKey),
  });
  expect(r.status).toBe(201);
  return r.json as { orderRef: string; createdAt: string };
}

async function list(query: string, key = platform.merchantKey) {
  return raw(platform, { method: 'GET', path: `/v1/merchant/orders${query}`, headers: as(key) });
}

/** Every order the listing gives for `query`, following nextCursor to the end. */
async function all(query: string, limit: number, during?: () => Promise<unknown>) {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const sep = query ? '&' : '?';
    const r = await list(`${query}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(r.status).toBe(200);
    seen.push(...r.json.orders.map((o: { orderRef: string }) => o.orderRef));
    cursor = r.json.nextCursor;
    await during?.();
    if (!cursor) return seen;
  }
  throw new Error('never ended');
}

describe('the order listing', () => {
  it('pages newest first without skipping or repeating, even while new orders arrive', async () => {
    const from = new Date(Date.now() - 1).toISOString();
    const made: { orderRef: string; createdAt: string }[] = [];
    for (let i = 0; i < 23; i++) made.push(await newOrder());
    // Newest first; orders made in the same millisecond by reference, compared as bytes.
    const key = (o: { orderRef: string; createdAt: string }) => `${o.createdAt} ${o.orderRef}`;
    const before = made.sort((a, b) => (key(a) < key(b) ? 1 : -1)).map((o) => o.orderRef);
    const to = new Date(Date.now() + 1).toISOString();
    const query = `?createdFrom=${from}&createdTo=${to}`;
    expect(await all(query, 5)).toEqual(before);
    // New orders arrive between the pages: the pages read so far are neither skipped nor repeated.
    const arrivals: string[] = [];
    const seen = await all(`?createdFrom=${from}`, 4, async () => {
      arrivals.push((await newOrder()).orderRef);
    });
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((r) => before.includes(r))).toEqual(before);
  });

  it('filters by status, and shows each order as the order view does', async () => {
    const paid = await newOrder(1999);
    const t = await terminal(platform);
    await pay(t, '4242424242424242', 1999, PASSWORD, paid.orderRef);
    const r = await list('?status=paid&limit=200');
    const mine = r.json.orders.find((o: { orderRef: string }) => o.orderRef === paid.orderRef);
    expect(mine).toMatchObject({ status: 'paid', payment: { amount: 1999 } });
    expect(r.json.orders.every((o: { status: string }) => o.status === 'paid')).toBe(true);
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
  });

  it('shows a paid order’s card, brand and last four, and when it was made and decided', async () => {
    const o = await newOrder(2500);
    const t = await terminal(platform);
    expect(await pay(t, '5555555555554444', 2500, PASSWORD, o.orderRef)).toMatchObject({
      state: 'succeeded',
    });
    const view = (await list('?status=paid&limit=200')).json.orders.find(
      (x: { orderRef: string }) => x.orderRef === o.orderRef,
    );
    expect(view.payment).toMatchObject({
      card: { brand: 'mastercard', last4: '4444' },
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      decidedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(JSON.stringify(view)).not.toContain('555555555555');
  });

  it('says why a failed order failed: its last attempt and the decline code', async () => {
    const o = await newOrder(1500);
    const t = await terminal(platform);
    expect(await pay(t, '4000000000009995', 1500, PASSWORD, o.orderRef)).toMatchObject({
      code: 'payment_declined',
    });
    const r = await raw(platform, {
      method: 'GET',
      path: `/v1/merchant/orders/${o.orderRef}`,
      headers: as(platform.merchantKey),
    });
    expect(r.json).toMatchObject({
      status: 'failed',
      failure: { code: 'insufficient_funds', paymentId: expect.stringMatching(/^pay_/) },
    });
  });

  it('tells a wrong key from a malformed Authorization header', async () => {
    const wrong = await list('', 'sk_sandbox_' + '0'.repeat(32));
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.message).toMatch(/not known here/);
    const malformed = await raw(platform, {
      method: 'GET',
      path: '/v1/merchant/orders',
      headers: { authorization: 'Token abc' },
    });
    expect(malformed.json.error.message).toMatch(/must be "Bearer <merchant API key>"/);
  });

  it('shows one merchant none of another’s orders', async () => {
    await newOrder();
    const other = await list('?limit=200', OTHER_KEY);
    expect(other.status).toBe(200);
    expect(other.json).toEqual({ orders: [], nextCursor: null });
    expect((await list('', 'not-a-key-at-all')).status).toBe(401);
  });

  it.each([
    ['?limit=0', 'limit'],
    ['?limit=201', 'limit'],
    ['?limit=ten', 'limit'],
    ['?status=lost', 'status'],
    ['?createdFrom=yesterday', 'createdFrom'],
    ['?createdTo=2026-01-01', 'createdTo'],
    ['?cursor=bm9wZQ', 'cursor'],
    ['?colour=blue', 'colour'],
  ])('refuses %s, naming the parameter', async (query, name) => {
    const r = await list(query);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'invalid_request' });
    expect(r.json.error.message).toContain(name);
  });
});
