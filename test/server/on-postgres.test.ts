import { describePg, freshDatabase } from '../support/postgres';

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
