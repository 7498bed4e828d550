import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  createMerchantOrder,
  startSandboxPlatform,
  type SandboxPlatform,
} from '../../packages/testing/src/platform';
import { pay, terminal } from '../support/server-harness';

// The merchant dashboard in a real browser (Debian's Chromium, driven by playwright-core): a
// member of a merchant's staff signs in, refunds part of an order, redelivers a notification,
// downloads the day's statement, signs out; a form posted from another site is refused; each page
// has no serious or critical accessibility violation (axe-core, run in the page). `.ci/run`
// installs Chromium: in CI these tests must run, elsewhere they say why they cannot.

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs it`);
const describeBrowser = available ? describe : describe.skip;

let platform: SandboxPlatform;
let browser: Browser;
let hook: Server;
let hookUrl: string;
let answer = 500;

beforeAll(async () => {
  if (!available) return;
  hook = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(answer).end());
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  platform = await startSandboxPlatform({
    sandboxWebhookUrl: hookUrl,
    webhookRetryBaseMs: 60000,
    webhookTimeoutMs: 500,
    configObject: {
      registrationsPerMinute: 1000,
      throttle: { postsPerSecond: 1000, postsBurst: 1000 },
    },
  });
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu'],
  });
}, 60000);
afterAll(async () => {
  await browser?.close();
  await platform?.close();
  await new Promise((r) => hook?.close(r));
});

const AXE = readFileSync(createRequire(__filename).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical findings on the page (injected past the CSP, for the check only). */
async function violations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: AXE });
  const found = (await page.evaluate(`(async () => {
    const r = await window.axe.run();
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  })()`)) as { id: string; impact: string; nodes: number }[];
  return found
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.nodes})`);
}

async function paidOrder(amount: number) {
  const order = await createMerchantOrder(platform, {
    merchantOrderId: `browser-${Date.now()}-${Math.floor(Math.random() * 1e6)}`,
    amount,
  });
  await pay(await terminal(platform), '4242424242424242', amount, undefined, order.orderRef);
  return order;
}

describeBrowser('the dashboard in Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    // bypassCSP lets the test inject axe-core; the pages themselves still set their policy.
    context = await browser.newContext({
      bypassCSP: true,
      acceptDownloads: true,
      locale: 'zh-CN',
    });
    page = await context.newPage();
  });
  afterAll(() => context?.close());

  it('signs in, refunds part of a paid order, and shows the order partially refunded', async () => {
    const order = await paidOrder(5680);
    await page.goto(`${platform.url}/dashboard/orders/${order.orderRef}`);
    expect(page.url()).toBe(`${platform.url}/dashboard/sign-in`);
    expect(await violations(page)).toEqual([]);
    await page.getByLabel('商户 API 密钥').fill(platform.merchantKey);
    await page.getByRole('button', { name: '登录' }).click();
    await page.waitForURL('**/dashboard/orders');
    expect(await violations(page)).toEqual([]);
    await page.getByRole('searchbox', { name: '商户订单号' }).fill(
      (
        (await (
          await fetch(`${platform.url}/v1/merchant/orders/${order.orderRef}`, {
            headers: { authorization: `Bearer ${platform.merchantKey}` },
          })
        ).json()) as { merchantOrderId: string }
      ).merchantOrderId,
    );
    await page.getByRole('button', { name: '筛选' }).click();
    await page.locator(`a[href="/dashboard/orders/${order.orderRef}"]`).click();
    await page.waitForURL(`**/dashboard/orders/${order.orderRef}`);
    expect(await violations(page)).toEqual([]);
    await page.getByLabel('退款金额（元）').fill('6.80');
    await page.getByLabel('退款原因（可选）').fill('少了一杯');
    await page.getByRole('button', { name: '下一步：确认' }).click();
    await page.getByText('确认退款 ¥6.80 给顾客？').waitFor();
    expect(await violations(page)).toEqual([]);
    await page.getByRole('button', { name: '确认退款' }).click();
    await page.waitForURL(`**/dashboard/orders/${order.orderRef}?refunded=*`);
    expect(await page.locator('h1').innerText()).toContain('部分退款');
    expect(await page.getByRole('status').innerText()).toBe('已退款');
  });

  it('redelivers a notification and lists the new attempt', async () => {
    const order = await paidOrder(1200);
    const events = (await (
      await fetch(`${platform.url}/v1/merchant/events?limit=200`, {
        headers: { authorization: `Bearer ${platform.merchantKey}` },
      })
    ).json()) as { events: { id: string; data: { order?: { orderRef: string } } }[] };
    const event = events.events.find((e) => e.data.order?.orderRef === order.orderRef)!;
    const attempts = async () =>
      (
        (await (
          await fetch(`${platform.url}/v1/merchant/events/${event.id}`, {
            headers: { authorization: `Bearer ${platform.merchantKey}` },
          })
        ).json()) as { deliveries: unknown[] }
      ).deliveries.length;
    for (let i = 0; i < 200 && (await attempts()) < 1; i++)
      await new Promise((r) => setTimeout(r, 25));
    answer = 200;
    await page.goto(`${platform.url}/dashboard/events`);
    expect(await violations(page)).toEqual([]);
    await page.locator(`a[href="/dashboard/events/${event.id}"]`).click();
    await page.getByRole('button', { name: '重新投递' }).click();
    await page.waitForURL(`**/dashboard/events/${event.id}?queued=1`);
    for (let i = 0; i < 200 && (await attempts()) < 2; i++)
      await new Promise((r) => setTimeout(r, 25));
    await page.reload();
    expect(await page.locator('td.num').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('tbody tr').first().innerText()).toContain('200');
    expect(await violations(page)).toEqual([]);
  });

  it('downloads the day’s statement, whose totals are the payment platform’s', async () => {
    await page.goto(`${platform.url}/dashboard/statement`);
    expect(await violations(page)).toEqual([]);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('#statement-download').click(),
    ]);
    const csv = readFileSync((await download.path())!, 'utf8');
    const lines = csv
      .trim()
      .split('\r\n')
      .map((l) => l.split(','));
    const total = lines.find((l) => l[1] === 'total' && l[6] === 'CNY')!;
    // 56.80 + 12.00 charged, 6.80 refunded.
    expect(total.slice(7, 10)).toEqual(['6200', '0', '6200']);
    await page.goto(`${platform.url}/dashboard/figures`);
    expect(await violations(page)).toEqual([]);
    expect(await page.locator('svg.chart rect').count()).toBe(7);
  });

  it('refuses a form posted from another site, and signs out', async () => {
    const order = await paidOrder(1000);
    // Another site's page with a form aimed at the dashboard: the session cookie is not sent.
    const evil = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end(
        `<form id="f" method="post" action="${platform.url}/dashboard/orders/${order.orderRef}/refund">
           <input name="amount" value="1000"><input name="key" value="dash-${'0'.repeat(24)}"><input name="csrf" value="x">
         </form>`,
      ),
    );
    await new Promise<void>((r) => evil.listen(0, 'localhost', r));
    try {
      await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      await Promise.all([
        page.waitForNavigation(),
        page.evaluate("document.getElementById('f').submit()"),
      ]);
      expect(page.url()).toBe(`${platform.url}/dashboard/sign-in`);
    } finally {
      evil.close();
    }
    const order2 = (await (
      await fetch(`${platform.url}/v1/merchant/orders/${order.orderRef}`, {
        headers: { authorization: `Bearer ${platform.merchantKey}` },
      })
    ).json()) as { status: string };
    expect(order2.status).toBe('paid');
    await page.goto(`${platform.url}/dashboard/orders`);
    expect(page.url()).toBe(`${platform.url}/dashboard/orders`);
    await page.getByRole('button', { name: '退出登录' }).click();
    await page.waitForURL('**/dashboard/sign-in');
    await page.goto(`${platform.url}/dashboard/orders`);
    expect(page.url()).toBe(`${platform.url}/dashboard/sign-in`);
  });
});
