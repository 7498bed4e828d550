import { Client } from 'pg';
import { startSandboxPlatform } from '../../packages/testing/src/platform';
import { describePg, freshDatabase } from '../support/postgres';
import { pay, PASSWORD, raw, terminal } from '../support/server-harness';

// The server's protocol tests once more, on PostgreSQL: the same files, with the kit's sandbox
// platform pointed at a database made for each of them (their limits and histories are per
// platform, as their in-memory SQLite databases are).
function onItsOwnDatabase(file: string) {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
    process.env.CARDPAY_TEST_DB = db.url;
  });
  afterAll(async () => {
    delete process.env.CARDPAY_TEST_DB;
    await db.drop();
  });
  require(file);
}

describePg('on PostgreSQL', () => {
  describe('the protocol', () => onItsOwnDatabase('./protocol.test'));
  describe('checkouts', () => onItsOwnDatabase('./checkout.test'));
  describe('exactly once', () => onItsOwnDatabase('./exactly-once.test'));
  describe('merchant orders', () => onItsOwnDatabase('./order-claim.test'));
  describe('security', () => onItsOwnDatabase('./security.test'));
  describe('the order listing', () => onItsOwnDatabase('./merchant-orders.test'));
  describe('refunds', () => onItsOwnDatabase('./refunds.test'));
  describe('notifications', () => onItsOwnDatabase('./notifications.test'));
});

describePg('on one PostgreSQL connection', () => {
  it('takes an order, pays it, refunds it and lists it with a pool of one: no step waits on a second connection', async () => {
    const db = await freshDatabase();
    const platform = await startSandboxPlatform({ db: db.url, dbPool: 1 });
    try {
      const as = { authorization: `Bearer ${platform.merchantKey}` };
      const order = await raw(platform, {
        method: 'POST',
        path: '/v1/merchant/orders',
        body: JSON.stringify({ merchantOrderId: 'one-connection', amount: 5000, currency: 'CNY' }),
        headers: as,
      });
      const orderRef = order.json.orderRef as string;
      const t = await terminal(platform);
      expect(await pay(t, '4242424242424242', 5000, PASSWORD, orderRef)).toMatchObject({
        state: 'succeeded',
      });
      const refund = await raw(platform, {
        method: 'POST',
        path: `/v1/merchant/orders/${orderRef}/refunds`,
        body: JSON.stringify({ amount: 1000 }),
        headers: { ...as, 'idempotency-key': 'one-connection-refund' },
      });
      expect(refund.status).toBe(201);
      const listed = await raw(platform, {
        method: 'GET',
        path: '/v1/merchant/orders',
        headers: as,
      });
      expect(listed.json.orders).toEqual([
        expect.objectContaining({ orderRef, status: 'partially_refunded' }),
      ]);
    } finally {
      await platform.close();
      await db.drop();
    }
  });
});

describePg('round trips on PostgreSQL', () => {
  it('are one more for a merchant order than for an open amount: each step reads the order with its session', async () => {
    await onQuietPlatform(async (platform, sent) => {
      const as = { authorization: `Bearer ${platform.merchantKey}` };
      const t = await terminal(platform);
      await pay(t, '4242424242424242');
      const roundTrips = async (orderRef?: string) => {
        sent.mockClear();
        expect(await pay(t, '4242424242424242', 5000, PASSWORD, orderRef)).toMatchObject({
          state: 'succeeded',
        });
        return sent.mock.calls.length;
      };
      const open = await roundTrips();
      const order = await raw(platform, {
        method: 'POST',
        path: '/v1/merchant/orders',
        body: JSON.stringify({ merchantOrderId: 'round-trips', amount: 5000, currency: 'CNY' }),
        headers: as,
      });
      const ordered = await roundTrips(order.json.orderRef as string);
      expect(open).toBe(8);
      // The one more: a session for an order is opened once the order is read (it may be paid).
      expect(ordered).toBe(open + 1);
      // The merchant's notification says what was paid, from the order read before the charge.
      const events = await raw(platform, {
        method: 'GET',
        path: '/v1/merchant/events',
        headers: as,
      });
      const ofOrders = (events.json.events as { data: { order?: unknown } }[]).filter(
        (e) => e.data.order,
      );
      expect(ofOrders).toHaveLength(1);
      expect(ofOrders[0]).toMatchObject({
        type: 'payment.succeeded',
        data: {
          order: expect.objectContaining({
            orderRef: order.json.orderRef,
            merchantOrderId: 'round-trips',
            status: 'paid',
          }),
        },
      });
    });
  });
});

describePg('waits for PostgreSQL', () => {
  it('are each told to the metrics: every round trip of a checkout, begins apart from commits that wait for the disk', async () => {
    await onQuietPlatform(async (platform, sent) => {
      const t = await terminal(platform);
      await pay(t, '4242424242424242');
      // Read from the histogram itself: a scrape of the whole registry would read the database.
      const waits = async () => {
        const { values } = await platform.ctx.metrics.databaseWait.get();
        const count = (kind: string) =>
          values.find((v) => v.metricName?.endsWith('_count') && v.labels.kind === kind)?.value ??
          0;
        return { read: count('read'), write: count('write'), unflushed: count('write_unflushed') };
      };
      const before = await waits();
      sent.mockClear();
      expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
      const after = await waits();
      const told = {
        read: after.read - before.read,
        write: after.write - before.write,
        unflushed: after.unflushed - before.unflushed,
      };
      expect(sent.mock.calls.length).toBeGreaterThanOrEqual(8);
      expect(told.read + told.write + told.unflushed).toBe(sent.mock.calls.length);
      // The order's and the confirmation's begins do not wait for the disk; the authentication's
      // (its lease), the payment's record and its decision do.
      expect(told.unflushed).toBeGreaterThanOrEqual(2);
      expect(told.write).toBeGreaterThanOrEqual(3);
    });
  });
});

/**
 * A platform on a database of its own whose passes on a timer are stopped, so that nothing but
 * the test talks to the database; `sent` counts each statement or pipeline a connection sends
 * (a round trip, as the driver sees it).
 */
async function onQuietPlatform(
  test: (
    platform: Awaited<ReturnType<typeof startSandboxPlatform>>,
    sent: jest.SpyInstance,
  ) => Promise<void>,
) {
  const db = await freshDatabase();
  const platform = await startSandboxPlatform({ db: db.url });
  await platform.ctx.reconciler.stop();
  await platform.ctx.notifier.stop();
  const sent = jest.spyOn(Client.prototype, 'query');
  try {
    await test(platform, sent);
  } finally {
    sent.mockRestore();
    await platform.close();
    await db.drop();
  }
}
