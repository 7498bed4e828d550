import { MemoryStorage } from '../../packages/sdk/src/hosts/node';
import { checkoutOnFake, enrolAndScan, PASSWORD } from '../support/core-harness';
import { FakePlatform } from '../support/fake-platform';

// What a checkout costs before the shopper acts, and what the shopper sees while the phone works.

const sessionsOpened = (platform: FakePlatform) =>
  platform.requests.filter((r) => r.method === 'POST' && new URL(r.url).pathname === '/v1/sessions')
    .length;

describe('an enrolled shopper’s checkout', () => {
  it('opens no platform session on mount, however often the page re-creates it, and one on the first touch', async () => {
    const platform = new FakePlatform();
    const storage = new MemoryStorage();
    const first = checkoutOnFake({}, platform, storage);
    await enrolAndScan(first, '4242424242424242');
    await first.checkout.reject(); // nothing left to resume
    first.checkout.destroy();
    const before = sessionsOpened(platform);

    // The cart changes five times: the component re-creates its checkout each time.
    for (let i = 0; i < 5; i++) {
      const h = checkoutOnFake({ amount: 1000 + i }, platform, storage);
      await h.checkout.start();
      h.checkout.destroy();
    }
    expect(sessionsOpened(platform)).toBe(before);

    const h = checkoutOnFake({}, platform, storage);
    await h.checkout.start();
    await h.checkout.prepare();
    await h.checkout.prepare(); // a second touch opens nothing more
    await new Promise((r) => setImmediate(r));
    expect(sessionsOpened(platform)).toBe(before + 1);
    // The tap that follows uses the session the touch opened.
    h.host.scanner.push('4242424242424242');
    await h.checkout.begin();
    expect(h.checkout.snapshot.state).toBe('awaiting_confirmation');
    expect(sessionsOpened(platform)).toBe(before + 1);
  });

  it('shows busy, and lets the view render, before the password’s key is derived', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    const order: string[] = [];
    h.checkout.on('change', (s) => {
      if (s.state === 'awaiting_authentication' && s.busy) {
        order.push('busy');
        // What a view does with the change: render after the current task.
        setTimeout(() => order.push('rendered'), 0);
      }
    });
    const request = h.host.request;
    h.host.request = (req) => {
      if (req.url.endsWith('/authenticate')) order.push('sent');
      return request(req);
    };
    await h.checkout.payWithPassword(PASSWORD);
    expect(order).toEqual(['busy', 'rendered', 'sent']);
    expect(h.checkout.snapshot.state).toBe('succeeded');
  });

  it('emits one change for the busy step of a payment, not one for the key and one for the request', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    const from = h.changes.length;
    await h.checkout.payWithPassword(PASSWORD);
    expect(h.changes.slice(from).map((c) => `${c.state}${c.busy ? '*' : ''}`)).toEqual([
      'awaiting_authentication*',
      'succeeded',
    ]);
  });
});

describe('a password reset through the checkout', () => {
  it('needs an enrolled terminal, and goes back where it came from when the shopper gives up', async () => {
    const fresh = checkoutOnFake({}, new FakePlatform(), new MemoryStorage());
    await fresh.checkout.start();
    await fresh.checkout.forgotPassword();
    expect(fresh.checkout.snapshot.state).toBe('idle');

    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    await h.checkout.forgotPassword();
    expect(h.checkout.snapshot.state).toBe('resetting');
    expect(h.checkout.snapshot.resetCard?.last4).toBe('4242');
    await h.checkout.cancelReset();
    expect(h.checkout.snapshot.state).toBe('awaiting_authentication');
  });

  it('refuses a weak new password or a malformed CVV on the phone, sending nothing', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    await h.checkout.forgotPassword();
    const sent = h.platform.requests.length;
    await h.checkout.resetPassword({ cvv: '123', password: '123456', repeat: '123456' });
    expect(h.checkout.snapshot.error?.code).toBe('password_weak');
    await h.checkout.resetPassword({ cvv: '12', password: '730194', repeat: '730194' });
    expect(h.checkout.snapshot.error?.code).toBe('cvv_format');
    expect(h.checkout.snapshot.state).toBe('resetting');
    expect(h.platform.requests.length).toBe(sent);
  });
});

// The reset over real HTTP is in test/server/password-reset.test.ts and, through the sheet, in
// test/plugin/checkout.test.ts.
