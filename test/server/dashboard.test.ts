import { request } from 'node:http';
import {
  createMerchantOrder,
  startSandboxPlatform,
  type SandboxPlatform,
} from '../../packages/testing/src/platform';
import { pay, terminal } from '../support/server-harness';

// The merchant dashboard over HTTP (INTERFACES.md §1): sign-in, the session and CSRF protections,
// the security headers, and every change it makes, checked against the merchant API and the
// payment platform's own records. The same flows in a real browser are in test/browser.

let platform: SandboxPlatform;
beforeAll(async () => {
  platform = await startSandboxPlatform({
    configObject: {
      registrationsPerMinute: 1000,
      throttle: { postsPerSecond: 1000, postsBurst: 1000 },
    },
  });
});
afterAll(() => platform?.close());

interface Browser {
  jar: Map<string, string>;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  post(
    path: string,
    form: Record<string, string>,
    headers?: Record<string, string>,
  ): Promise<Response>;
}

/** A client that keeps cookies, as a browser on this site would. */
function browser(): Browser {
  const jar = new Map<string, string>();
  const keep = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
      if (/Max-Age=0/.test(c)) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  return {
    jar,
    get: async (path, headers = {}) =>
      keep(
        await fetch(platform.url + path, {
          redirect: 'manual',
          headers: { cookie: cookie(), ...headers },
        }),
      ),
    post: async (path, form, headers = {}) =>
      keep(
        await fetch(platform.url + path, {
          method: 'POST',
          redirect: 'manual',
          headers: {
            cookie: cookie(),
            'content-type': 'application/x-www-form-urlencoded',
            origin: platform.url,
            ...headers,
          },
          body: new URLSearchParams(form),
        }),
      ),
  };
}

const field = (page: string, name: string) =>
  new RegExp(`name="${name}"[^>]*value="([^"]*)"`).exec(page)?.[1] ??
  new RegExp(`value="([^"]*)"[^>]*name="${name}"`).exec(page)?.[1];

async function signIn(b = browser(), key = platform.merchantKey) {
  const form = await (await b.get('/dashboard/sign-in')).text();
  const res = await b.post('/dashboard/sign-in', { csrf: field(form, 'csrf')!, key });
  return { b, res };
}

async function paidOrder(amount = 5680) {
  const order = await createMerchantOrder(platform, {
    merchantOrderId: `dash-${Date.now()}-${Math.floor(Math.random() * 1e6)}`,
    amount,
  });
  const paid = await pay(
    await terminal(platform),
    '4242424242424242',
    amount,
    undefined,
    order.orderRef,
  );
  expect(paid).toMatchObject({ state: 'succeeded' });
  return order;
}

async function merchantApi(path: string) {
  const res = await fetch(platform.url + path, {
    headers: { authorization: `Bearer ${platform.merchantKey}` },
  });
  return res.json() as Promise<any>;
}

describe('the merchant dashboard', () => {
  it('signs in with the API key: an HttpOnly, SameSite=Strict session cookie, Secure off loopback', async () => {
    const { b, res } = await signIn();
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dashboard/orders');
    const set = res.headers.getSetCookie().find((c) => c.startsWith('cp_session='))!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).not.toMatch(/Secure/);
    const orders = await b.get('/dashboard/orders');
    expect(orders.status).toBe(200);
    expect(await orders.text()).toContain('CardPay Sandbox Shop');
    // Behind a name that is not loopback (a proxy in front), the cookie is Secure.
    const far = await new Promise<string>((resolve, reject) => {
      const url = new URL(`${platform.url}/dashboard/sign-in`);
      request(
        {
          hostname: url.hostname,
          port: url.port,
          path: url.pathname,
          headers: { host: 'pay.example.com' },
        },
        (r) => {
          r.resume();
          resolve(String(r.headers['set-cookie']));
        },
      )
        .on('error', reject)
        .end();
    });
    expect(far).toMatch(/Secure/);
  });

  it('serves its pages with a Content-Security-Policy that allows no script and nothing from elsewhere', async () => {
    const { b } = await signIn();
    for (const path of [
      '/dashboard/sign-in',
      '/dashboard/orders',
      '/dashboard/events',
      '/dashboard/statement',
      '/dashboard/figures',
    ]) {
      const res = await b.get(path);
      expect([path, res.status]).toEqual([path, 200]);
      expect(res.headers.get('content-security-policy')).toBe(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      );
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const page = await res.text();
      expect(page).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)/);
    }
  });

  it('refuses a wrong key, a sign-in posted from elsewhere, and more than ten tries a minute', async () => {
    expect((await signIn(browser(), 'sk_sandbox_wrong0000000000000000000000')).res.status).toBe(
      401,
    );
    const forged = await browser().post('/dashboard/sign-in', {
      csrf: 'ab'.repeat(16),
      key: platform.merchantKey,
    });
    expect(forged.status).toBe(403);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++)
      statuses.push((await signIn(browser(), 'sk_sandbox_wrong0000000000000000000000')).res.status);
    expect(statuses).toContain(429);
    // Even the right key waits out the minute from this address.
    expect((await signIn()).res.status).toBe(429);
  });
});

describe('the dashboard’s changes', () => {
  let b: Browser;
  beforeAll(async () => {
    // A platform of its own for these: the sign-in limit above is spent on the first.
    await platform.close();
    platform = await startSandboxPlatform({
      sandboxWebhookUrl: 'http://127.0.0.1:9/unreachable',
      webhookRetryBaseMs: 60000,
      webhookTimeoutMs: 200,
      configObject: {
        registrationsPerMinute: 1000,
        throttle: { postsPerSecond: 1000, postsBurst: 1000 },
      },
    });
    ({ b } = await signIn());
  });

  it('sends a visitor without a session, or with a forged one, to the sign-in page', async () => {
    const anonymous = await browser().get('/dashboard/orders');
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get('location')).toBe('/dashboard/sign-in');
    const [payload, mac] = b.jar.get('cp_session')!.split('.');
    const tampered = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(payload, 'base64url').toString()),
        m: 'mch_other',
      }),
    ).toString('base64url');
    const forged = await fetch(`${platform.url}/dashboard/orders`, {
      redirect: 'manual',
      headers: { cookie: `cp_session=${tampered}.${mac}` },
    });
    expect(forged.status).toBe(303);
  });

  it('refunds part of a paid order after a confirmation, once however often it is confirmed', async () => {
    const order = await paidOrder(5680);
    const page = await (await b.get(`/dashboard/orders/${order.orderRef}`)).text();
    expect(page).toContain('¥56.80');
    const review = await b.post(`/dashboard/orders/${order.orderRef}/refund/review`, {
      csrf: field(page, 'csrf')!,
      amount: '6.80',
      reason: '少了一杯',
    });
    expect(review.status).toBe(200);
    const confirm = await review.text();
    expect(confirm).toContain('¥6.80');
    const form = {
      csrf: field(confirm, 'csrf')!,
      amount: field(confirm, 'amount')!,
      reason: field(confirm, 'reason')!,
      key: field(confirm, 'key')!,
    };
    expect(form.amount).toBe('680');
    const done = await b.post(`/dashboard/orders/${order.orderRef}/refund`, form);
    expect(done.status).toBe(303);
    // A double click sends the same form again: still one refund.
    expect((await b.post(`/dashboard/orders/${order.orderRef}/refund`, form)).status).toBe(303);
    const after = await merchantApi(`/v1/merchant/orders/${order.orderRef}`);
    expect(after.status).toBe('partially_refunded');
    expect(after.payment.refunds.map((r: { amount: number }) => r.amount)).toEqual([680]);
    const shown = await (await b.get(done.headers.get('location')!)).text();
    expect(shown).toContain('部分退款');
  });

  it('refuses a change without the session’s CSRF token, or posted from another site, and changes nothing', async () => {
    const order = await paidOrder(1000);
    const page = await (await b.get(`/dashboard/orders/${order.orderRef}`)).text();
    const form = { amount: '100', key: `dash-${'0'.repeat(24)}`, reason: '' };
    expect((await b.post(`/dashboard/orders/${order.orderRef}/refund`, form)).status).toBe(403);
    expect(
      (
        await b.post(
          `/dashboard/orders/${order.orderRef}/refund`,
          { ...form, csrf: field(page, 'csrf')! },
          { origin: 'https://evil.example' },
        )
      ).status,
    ).toBe(403);
    // A forged form from another site carries no cookie at all (SameSite=Strict): no session.
    const cookieless = await fetch(`${platform.url}/dashboard/orders/${order.orderRef}/refund`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'https://evil.example',
      },
      body: new URLSearchParams({ ...form, csrf: field(page, 'csrf')! }),
    });
    expect(cookieless.status).toBe(303);
    expect((await merchantApi(`/v1/merchant/orders/${order.orderRef}`)).status).toBe('paid');
  });

  it('finds an order by the merchant’s id, filters by status, and pages without skipping or repeating', async () => {
    const made: string[] = [];
    for (let i = 0; i < 27; i++)
      made.push(
        (
          await createMerchantOrder(platform, {
            merchantOrderId: `page-${i}-${Date.now()}`,
            amount: 100 + i,
          })
        ).orderRef,
      );
    const seen: string[] = [];
    let path: string | undefined = '/dashboard/orders?status=open';
    while (path) {
      const page = await (await b.get(path)).text();
      seen.push(...[...page.matchAll(/href="\/dashboard\/orders\/(mor_\w+)"/g)].map((m) => m[1]));
      path = /href="([^"]+)" rel="next"/.exec(page)?.[1]?.replace(/&amp;/g, '&');
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const ref of made) expect(seen).toContain(ref);
    const one = await (await b.get(`/dashboard/orders?q=${encodeURIComponent('page-3-')}`)).text();
    expect(one).toContain('没有符合条件的订单'); // an exact id, not a prefix
    const exact = (await merchantApi(`/v1/merchant/orders/${made[3]}`)).merchantOrderId as string;
    const found = await (await b.get(`/dashboard/orders?q=${encodeURIComponent(exact)}`)).text();
    expect([...found.matchAll(/href="\/dashboard\/orders\/(mor_\w+)"/g)].map((m) => m[1])).toEqual([
      made[3],
    ]);
  });

  it('redelivers an event from its page and lists the attempt', async () => {
    const order = await paidOrder(1200);
    const events = await merchantApi('/v1/merchant/events?limit=200');
    const event = events.events.filter((e: any) => e.data.order?.orderRef === order.orderRef)[0];
    const attempts = async () =>
      ((await merchantApi(`/v1/merchant/events/${event.id}`)).deliveries as unknown[]).length;
    // The first attempt (the receiver is down), then one more, asked for from the page.
    for (let i = 0; i < 200 && (await attempts()) < 1; i++)
      await new Promise((r) => setTimeout(r, 25));
    const page = await (await b.get(`/dashboard/events/${event.id}`)).text();
    const res = await b.post(`/dashboard/events/${event.id}/redeliver`, {
      csrf: field(page, 'csrf')!,
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/dashboard/events/${event.id}?queued=1`);
    for (let i = 0; i < 200 && (await attempts()) < 2; i++)
      await new Promise((r) => setTimeout(r, 25));
    const after = await (await b.get(`/dashboard/events/${event.id}`)).text();
    expect((after.match(/<td class="num">\d+ ms<\/td>/g) ?? []).length).toBeGreaterThanOrEqual(2);
  });

  it('downloads the day’s statement as the merchant API gives it, and speaks English when asked', async () => {
    const day = new Date(Date.now() + 8 * 3600000).toISOString().slice(0, 10);
    const csv = await (await b.get(`/dashboard/statement.csv?day=${day}`)).text();
    const api = await (
      await fetch(`${platform.url}/v1/merchant/statements/${day}`, {
        headers: { authorization: `Bearer ${platform.merchantKey}` },
      })
    ).text();
    expect(csv).toBe(api);
    const english = await (await b.get('/dashboard/figures?lang=en')).text();
    expect(english).toContain('<html lang="en">');
    expect(english).toContain('Volume, last 7 days');
  });

  it('signs out: the cookie is cleared, and the pages ask to sign in again', async () => {
    const page = await (await b.get('/dashboard/orders')).text();
    const res = await b.post('/dashboard/sign-out', { csrf: field(page, 'csrf')! });
    expect(res.status).toBe(303);
    expect(b.jar.has('cp_session')).toBe(false);
    expect((await b.get('/dashboard/orders')).status).toBe(303);
  });
});

it('is not served with --no-dashboard', async () => {
  const bare = await startSandboxPlatform({ dashboard: false });
  try {
    expect((await fetch(`${bare.url}/dashboard/sign-in`)).status).toBe(404);
  } finally {
    await bare.close();
  }
});
