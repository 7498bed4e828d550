// `npm run screenshots` (its second part): the merchant dashboard's pages in headless Chromium,
// light and dark, at a desktop and a phone width, with a few orders, a refund and a notification.
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startPlatform } from 'cardpay-platform';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import { derivePinKey, passwordProof } from '../../packages/sdk/src/core/crypto';
import { toHex } from '../../packages/sdk/src/core/encoding';
import { createNodeHost } from '../../packages/sdk/src/hosts/node';

const OUT = join(__dirname, '../../screenshots');
const KEY = `sk_sandbox_${'d'.repeat(32)}`;

async function main() {
  const platform = await startPlatform({
    port: 0,
    sandboxPaymentsPort: 0,
    db: ':memory:',
    sandboxDb: ':memory:',
    logLevel: 'silent',
    masterKey: '5d'.repeat(32),
    sandboxMerchantKey: KEY,
    sandboxWebhookUrl: 'http://127.0.0.1:9/hook',
    webhookRetryBaseMs: 3600000,
    webhookTimeoutMs: 200,
  });
  const api = (path: string, body?: unknown, key?: string) =>
    fetch(platform.url + path, {
      method: body ? 'POST' : 'GET',
      headers: {
        authorization: `Bearer ${KEY}`,
        'content-type': 'application/json',
        ...(key ? { 'idempotency-key': key } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }).then((r) => r.json() as Promise<any>);
  // A shopper pays three orders; one is refunded in part.
  const client = new PlatformClient({ baseUrl: platform.url, host: createNodeHost() });
  const salt = '0f'.repeat(16);
  const pinKey = derivePinKey('204816', Buffer.from(salt, 'hex'), 10000);
  client.identity = await client.register({ password: { salt, iterations: 10000, key: toHex(pinKey) } });
  const refs: string[] = [];
  for (const [id, amount] of [['cart-1040', 5680], ['cart-1041', 1999], ['cart-1042', 12800]] as const) {
    const order = await api('/v1/merchant/orders', { merchantOrderId: id, amount, currency: 'CNY', description: '拿铁 × 2，可颂 × 1' });
    const k = () => client.newIdempotencyKey();
    const s = await client.createSession({ merchantId: 'mch_sandbox', orderRef: order.orderRef }, await k());
    const o = await client.submitOrder(s.sessionId, { amount, currency: 'CNY', card: { source: 'manual', payload: '6222021000000000009' } }, await k());
    const c = await client.confirm(s.sessionId, { confirmToken: o.confirmation.confirmToken, accept: true }, await k());
    const p = c.authPrompt!;
    await client.authenticate(
      s.sessionId,
      {
        challenge: p.challenge,
        factors: [
          { method: 'password', proof: passwordProof(pinKey, { sessionId: s.sessionId, challenge: p.challenge, orderId: o.confirmation.orderId, amount, currency: 'CNY' }) },
          ...(p.mandatory ? [{ method: 'cvv' as const, value: '123' }] : []),
        ],
      },
      await k(),
    );
    refs.push(order.orderRef);
  }
  await api(`/v1/merchant/orders/${refs[0]}/refunds`, { amount: 680, reason: '少了一杯' }, 'shots-refund-1');
  await api('/v1/merchant/orders', { merchantOrderId: 'cart-1043', amount: 2500, currency: 'CNY' });
  const events = await api('/v1/merchant/events?limit=10');

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    for (const scheme of ['light', 'dark'] as const)
      for (const [width, form] of [[1280, 'desktop'], [390, 'mobile']] as const) {
        const context = await browser.newContext({ colorScheme: scheme, locale: 'zh-CN', viewport: { width, height: 900 } });
        const page = await context.newPage();
        const shot = async (name: string) => {
          await page.screenshot({ path: join(OUT, `dashboard-${name}-${form}-${scheme}.png`), fullPage: true });
          console.log(`screenshots/dashboard-${name}-${form}-${scheme}.png`);
        };
        await page.goto(`${platform.url}/dashboard/sign-in`);
        await shot('1-sign-in');
        await page.getByLabel('商户 API 密钥').fill(KEY);
        await page.getByRole('button', { name: '登录' }).click();
        await page.waitForURL('**/dashboard/orders');
        await shot('2-orders');
        await page.goto(`${platform.url}/dashboard/orders/${refs[0]}`);
        await shot('3-order');
        await page.goto(`${platform.url}/dashboard/events/${events.events[0].id}`);
        await shot('4-event');
        await page.goto(`${platform.url}/dashboard/statement`);
        await shot('5-statement');
        await page.goto(`${platform.url}/dashboard/figures`);
        await shot('6-figures');
        await context.close();
      }
  } finally {
    await browser.close();
    await platform.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
