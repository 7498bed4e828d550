import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import {
  createMerchantOrder,
  startSandboxPlatform,
  type SandboxPlatform,
} from '../../packages/testing/src/platform';
import { describePg, freshDatabase } from '../support/postgres';
import { pay, terminal } from '../support/server-harness';
import type { PaymentRow } from '../../packages/platform/src/store/types';

// PROTOCOL.md §7.3 and §7.4: a merchant's daily statement, and what it sees of its notifications'
// deliveries. The statement's totals are checked against the payment platform's own records.

const DAY_4 = Date.parse('2026-12-04T04:00:00.000Z'); // noon in Shanghai
const SECRET = 'whsec_' + 'ab'.repeat(24);

/** A receiver that answers what `answer` says. */
async function receiver(answer: () => number) {
  const got: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      got.push(body);
      res.writeHead(answer()).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function merchant(
  platform: SandboxPlatform,
  method: string,
  path: string,
  extra: RequestInit = {},
) {
  return fetch(platform.url + path, {
    method,
    ...extra,
    headers: { authorization: `Bearer ${platform.merchantKey}`, ...(extra.headers ?? {}) },
  });
}

function parseCsv(text: string): string[][] {
  return text
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l) => l.split(','));
}

async function until(what: string, predicate: () => Promise<boolean> | boolean, ms = 8000) {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function suite(name: string, db: () => string | undefined, bulk = 20000) {
  describe(name, () => {
    let platform: SandboxPlatform;
    let hook: Awaited<ReturnType<typeof receiver>>;
    let answer = 200;
    let now = DAY_4;
    let dir: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'cardpay-statements-'));
      hook = await receiver(() => answer);
      platform = await startSandboxPlatform({
        ...(db() ? { db: db()!, sandboxDb: join(dir, 'payments.db') } : {}),
        clock: () => now,
        sandboxWebhookUrl: hook.url,
        sandboxWebhookSecret: SECRET,
        webhookRetryBaseMs: 60000,
        webhookTimeoutMs: 500,
        configObject: {
          registrationsPerMinute: 1000,
          throttle: { postsPerSecond: 1000, postsBurst: 1000 },
        },
      });
    });
    afterAll(async () => {
      await platform?.close();
      await hook?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('lists the day’s decided payments and refunds in Shanghai’s day, with totals equal to the payment platform’s records', async () => {
      const t = await terminal(platform);
      now = Date.parse('2026-12-03T15:59:59.000Z'); // 23:59:59 on the 3rd in Shanghai
      await pay(t, '4242424242424242', 1000);
      now = Date.parse('2026-12-03T16:00:01.000Z'); // 00:00:01 on the 4th
      const order = await createMerchantOrder(platform, {
        merchantOrderId: `stmt-${Date.now()}`,
        amount: 5680,
      });
      const paid = (await pay(t, '4242424242424242', 5680, undefined, order.orderRef)) as {
        payment: { paymentId: string; charged: number };
      };
      now = Date.parse('2026-12-03T16:00:02.000Z');
      await pay(t, '4000000000000002', 700); // declined: listed, moves nothing
      now = Date.parse('2026-12-04T10:00:00.000Z');
      const refund = await merchant(
        platform,
        'POST',
        `/v1/merchant/orders/${order.orderRef}/refunds`,
        {
          headers: { 'content-type': 'application/json', 'idempotency-key': 'refund-stmt-0001' },
          body: JSON.stringify({ amount: 680 }),
        },
      );
      expect(refund.status).toBe(201);
      now = Date.parse('2026-12-04T16:30:00.000Z'); // 00:30 on the 5th
      await pay(t, '5555555555554444', 300);

      const res = await merchant(platform, 'GET', '/v1/merchant/statements/2026-12-04.csv');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      const rows = parseCsv(await res.text());
      expect(rows[0].join(',')).toBe(
        'time,type,orderRef,merchantOrderId,paymentId,refundId,currency,amount,discount,charged,cardBrand,cardLast4,status',
      );
      const lines = rows.slice(1);
      expect(lines.map((r) => [r[1], r[7], r[12]])).toEqual([
        ['payment', '5680', 'succeeded'],
        ['payment', '700', 'declined'],
        ['refund', '-680', 'succeeded'],
        ['total', '5000', ''],
      ]);
      expect(lines[0][0]).toBe('2026-12-04T00:00:01.000+08:00');
      expect(lines[0][3]).toMatch(/^stmt-/);
      expect(lines[0][4]).toBe(paid.payment.paymentId);
      const total = lines[lines.length - 1];
      expect(total.slice(6, 10)).toEqual(['CNY', '5000', '0', '5000']);

      // What the payment platform recorded for these orders that day: the charge less the refund.
      const sandbox = platform.sandbox!.url;
      const orderId = await orderIdOf(platform, order.orderRef);
      const byPayment = (await (
        await fetch(`${sandbox}/v1/charges?orderId=${orderId}`)
      ).json()) as {
        charges: { status: string; charged: number }[];
      };
      const charged = byPayment.charges
        .filter((c) => c.status === 'succeeded')
        .reduce((n, c) => n + c.charged, 0);
      expect(Number(total[9])).toBe(charged - 680);

      // The days around it hold the other payments, each once.
      const before = parseCsv(
        await (await merchant(platform, 'GET', '/v1/merchant/statements/2026-12-03')).text(),
      );
      expect(before.slice(1, -1).map((r) => r[7])).toEqual(['1000']);
      const after = parseCsv(
        await (await merchant(platform, 'GET', '/v1/merchant/statements/2026-12-05')).text(),
      );
      expect(after.slice(1, -1).map((r) => r[7])).toEqual(['300']);
    });

    it('answers the header alone for a day with nothing, and 400 for a date that is not one', async () => {
      const empty = await merchant(platform, 'GET', '/v1/merchant/statements/2020-01-01');
      expect(parseCsv(await empty.text())).toHaveLength(1);
      for (const day of ['2026-02-30', '20261204', '2026-12-4']) {
        const res = await merchant(platform, 'GET', `/v1/merchant/statements/${day}`);
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
          'invalid_request',
        );
      }
      expect((await fetch(`${platform.url}/v1/merchant/statements/2026-12-04`)).status).toBe(401);
    });

    it(`streams a day of ${bulk.toLocaleString('en')} lines page by page, with the right totals`, async () => {
      const t = await terminal(platform);
      const at = Date.parse('2026-11-30T04:00:00.000Z');
      const rows: PaymentRow[] = Array.from({ length: bulk }, (_, i) => ({
        id: `pay_bulk${String(i).padStart(6, '0')}`,
        sessionId: `ses_bulk${i}`,
        terminalId: t.id,
        merchantId: 'mch_sandbox',
        orderId: `ord_bulk${i}`,
        orderRef: null,
        amount: 100 + (i % 7),
        rateBps: 0,
        amountOff: 0,
        charged: 100 + (i % 7),
        currency: 'CNY',
        status: 'succeeded',
        chargeId: `chg_bulk${i}`,
        declineCode: null,
        cardHash: null,
        cvvGiven: false,
        cardBrand: 'visa',
        cardLast4: '4242',
        createdAt: at + i,
        decidedAt: at + i,
        nextCheckAt: null,
        checks: 0,
        version: 0,
      }));
      for (let i = 0; i < rows.length; i += 2000)
        await platform.store.commit(
          rows.slice(i, i + 2000).map((row) => ({ kind: 'insertPayment' as const, row })),
        );
      const pages = jest.spyOn(platform.store, 'statementPage');
      const res = await merchant(platform, 'GET', '/v1/merchant/statements/2026-11-30');
      expect(res.headers.get('content-length')).toBeNull(); // sent as it is read
      const lines = parseCsv(await res.text());
      expect(lines).toHaveLength(1 + bulk + 1);
      expect(pages.mock.calls.length).toBeGreaterThanOrEqual(bulk / 1000);
      pages.mockRestore();
      const expected = rows.reduce((n, r) => n + r.charged, 0);
      expect(lines[lines.length - 1].slice(6, 10)).toEqual([
        'CNY',
        String(expected),
        '0',
        String(expected),
      ]);
      // In decision order, each once.
      expect(new Set(lines.slice(1, -1).map((r) => r[4])).size).toBe(bulk);
    });

    it('lists each delivery attempt of an event, and delivers once more when asked', async () => {
      answer = 500;
      const t = await terminal(platform);
      now = Date.now();
      await pay(t, '6200000000000005', 1234);
      const list = (await (
        await merchant(platform, 'GET', '/v1/merchant/events?limit=200')
      ).json()) as {
        events: { id: string; data: { payment?: { charged: number } } }[];
      };
      const event = list.events.filter((e) => e.data.payment?.charged === 1234).pop()!;
      await until('the first attempt', async () => {
        const e = (await (
          await merchant(platform, 'GET', `/v1/merchant/events/${event.id}`)
        ).json()) as { deliveries: unknown[] };
        return e.deliveries.length >= 1;
      });
      answer = 200;
      const again = await merchant(platform, 'POST', `/v1/merchant/events/${event.id}/redeliver`);
      expect(again.status).toBe(202);
      await until('the redelivery', async () => {
        const e = (await (
          await merchant(platform, 'GET', `/v1/merchant/events/${event.id}`)
        ).json()) as {
          delivery: string;
        };
        return e.delivery === 'delivered';
      });
      const e = (await (
        await merchant(platform, 'GET', `/v1/merchant/events/${event.id}`)
      ).json()) as {
        id: string;
        deliveries: { at: string; status: number | null; ms: number }[];
      };
      expect(e.id).toBe(event.id);
      expect(e.deliveries[0].status).toBe(200);
      expect(e.deliveries[e.deliveries.length - 1].status).toBe(500);
      expect(e.deliveries.every((d) => d.ms >= 0 && !Number.isNaN(Date.parse(d.at)))).toBe(true);
      expect(
        (await merchant(platform, 'POST', '/v1/merchant/events/evt_nosuchevent/redeliver')).status,
      ).toBe(404);
    });
  });
}

async function orderIdOf(platform: SandboxPlatform, orderRef: string): Promise<string> {
  const order = (await (
    await merchant(platform, 'GET', `/v1/merchant/orders/${orderRef}`)
  ).json()) as {
    payment: { orderId: string };
  };
  return order.payment.orderId;
}

suite('statements and deliveries, on SQLite', () => undefined);

describePg('on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.drop());
  // Fewer lines here: each insert is a round trip to the server.
  suite('statements and deliveries', () => db.url, 12000);
});

describe('the statement day', () => {
  const { dayBounds, zonedTime } =
    require('../../packages/platform/src/domain/statements') as typeof import('../../packages/platform/src/domain/statements');

  it('runs from midnight to midnight in the zone, 23 or 25 hours across a daylight-saving change', () => {
    expect(dayBounds('2026-12-04', 'Asia/Shanghai')).toEqual({
      from: Date.parse('2026-12-03T16:00:00.000Z'),
      to: Date.parse('2026-12-04T16:00:00.000Z'),
    });
    const spring = dayBounds('2026-03-08', 'America/New_York')!;
    expect((spring.to - spring.from) / 3600000).toBe(23);
    const autumn = dayBounds('2026-11-01', 'America/New_York')!;
    expect((autumn.to - autumn.from) / 3600000).toBe(25);
    expect(dayBounds('2026-02-29', 'Asia/Shanghai')).toBeUndefined();
  });

  it('writes times with the zone’s offset', () => {
    expect(zonedTime(Date.parse('2026-12-03T16:00:01.000Z'), 'Asia/Shanghai')).toBe(
      '2026-12-04T00:00:01.000+08:00',
    );
    expect(zonedTime(Date.parse('2026-07-01T12:00:00.000Z'), 'America/New_York')).toBe(
      '2026-07-01T08:00:00.000-04:00',
    );
  });
});
