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
