import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { checkInvariants } from '../../scripts/chaos/invariants';
import { runChaos, type ChaosReport } from '../../scripts/chaos/run';
import { ADMIN_URL, describePg } from '../support/postgres';

// The short form of `npm run chaos`: a few hundred checkouts through fault proxies on both hops,
// with the platform killed (-9) and restarted on its database mid-way.
describe('chaos: checkouts through faults and kill -9 restarts', () => {
  let report: ChaosReport;
  beforeAll(async () => {
    report = await runChaos({
      checkouts: 160,
      terminals: 16,
      faultRate: 0.1,
      killEveryMs: 2500,
      seed: 20261204,
      keep: true,
    });
  }, 90000);
  afterAll(() => rmSync(dirname(report.databases!.platform), { recursive: true, force: true }));

  it('breaks no money invariant against the payment platform’s own records', () => {
    expect(report.violations).toEqual([]);
  });

  it('really ran the faults, restarts, merchant orders and refunds it claims', () => {
    expect(report.checkouts).toBeGreaterThanOrEqual(160);
    expect(report.outcomes.succeeded).toBeGreaterThan(80);
    expect(report.outcomes.failed).toBeGreaterThan(0);
    expect(report.restarts).toBeGreaterThanOrEqual(1);
    for (const kind of ['dropRequest', 'dropResponse', 'duplicate', 'reset'])
      expect(report.faults.terminalHop[kind]).toBeGreaterThan(0);
    // The payment hop saw faults too (charges sent twice, answers lost after the charge).
    const paymentFaults = ['dropRequest', 'dropResponse', 'duplicate', 'delay', 'reset', 'reorder']
      .map((k) => report.faults.paymentHop[k] ?? 0)
      .reduce((a, b) => a + b, 0);
    expect(paymentFaults).toBeGreaterThan(0);
    expect(report.faults.paymentHop.requests).toBeGreaterThan(report.outcomes.succeeded);
    expect(report.mergedOrders).toBeGreaterThan(0);
    expect(report.records.refunds).toBeGreaterThan(0);
  });

  it('would see a second charge of an order, or a charge nobody was told of', async () => {
    const { platform, payments } = report.databases!;
    const db = new Database(payments);
    const paid = db
      .prepare(`SELECT * FROM charges WHERE status = 'succeeded' LIMIT 1`)
      .get() as any;
    db.prepare(
      `INSERT INTO charges SELECT 'ch_planted', order_id, merchant_id, status, decline_code,
      amount, discount, charged, currency, card, created_at FROM charges WHERE charge_id = ?`,
    ).run(paid.charge_id);
    db.prepare(
      `UPDATE refunds SET amount = amount + 1000000 WHERE rowid = (SELECT MIN(rowid) FROM refunds WHERE status = 'succeeded')`,
    ).run();
    db.close();
    const rules = (
      await checkInvariants({
        platformDb: platform,
        paymentDb: payments,
        clients: [],
        received: new Set(),
      })
    ).violations.map((v) => v.rule);
    expect(rules).toEqual(
      expect.arrayContaining([
        'charge without a succeeded session',
        'refunds exceed the charge',
        'notification not delivered',
      ]),
    );
  });
});

// The same on PostgreSQL with three platform instances behind the terminal hop, each killed (-9)
// in turn while the others serve on, and the database itself failing: PostgreSQL restarted (every
// connection ended, new ones refused for a while) or one instance cut off from it for seconds.
describePg(
  'chaos on PostgreSQL: three instances, kill -9, the database restarted and cut off',
  () => {
    it('breaks no money invariant, never answers 500, and every instance recovers by itself', async () => {
      const report = await runChaos({
        checkouts: 90,
        terminals: 10,
        faultRate: 0.1,
        killEveryMs: 2500,
        seed: 20261205,
        postgres: ADMIN_URL,
        instances: 3,
        databaseFaultEveryMs: 1200,
        // However fast the checkouts go, the database fails at least twice under them.
        minDatabaseFaults: 2,
      });
      expect(report.violations).toEqual([]);
      expect(report).toMatchObject({ store: 'postgres', instances: 3 });
      expect(report.restarts).toBeGreaterThanOrEqual(1);
      expect(report.outcomes.succeeded).toBeGreaterThan(50);
      // The database faults really happened, were seen as such, and were recovered from.
      const d = report.database!;
      expect(d.restarts + d.cutoffs).toBeGreaterThanOrEqual(2);
      expect(d.probedWhileDown).toBeGreaterThanOrEqual(1);
      expect(d.recoveries).toBeGreaterThanOrEqual(1);
      expect(report.statuses['503']).toBeGreaterThan(0);
      expect(report.statuses['500']).toBeUndefined();
    }, 150000);
  },
);
