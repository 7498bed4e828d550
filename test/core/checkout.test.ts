import { Checkout } from '../../packages/sdk/src/core/checkout';
import { credentialsKey } from '../../packages/sdk/src/core/enrolment';
import { checkoutOnFake, enrolAndScan, PASSWORD } from '../support/core-harness';
import { FakePlatform } from '../support/fake-platform';

const settled = async (done: () => boolean) => {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setImmediate(r));
  expect(done()).toBe(true);
};

/** Pays with the slow card, then closes the app while the payment is still processing. */
async function payAndLeaveProcessing() {
  const h = checkoutOnFake();
  await enrolAndScan(h, '6222021000000000017');
  await h.checkout.confirm();
  h.platform.processingPolls = 1000;
  await h.checkout.payWithPassword(PASSWORD);
  expect(h.checkout.snapshot.state).toBe('processing');
  h.checkout.destroy();
  return h;
}

describe('Checkout against a platform written from the protocol', () => {
  it('enrols, scans, confirms and pays with the password, one change per transition', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242 4242 4242 4242');
    expect(h.checkout.snapshot.state).toBe('awaiting_confirmation');
    expect(h.checkout.snapshot.confirmation?.card.masked).toBe('424242******4242');
    await h.checkout.confirm();
    expect(h.checkout.snapshot.authPrompt?.methods).toContain('password');
    await h.checkout.payWithPassword(PASSWORD);

    expect(h.states()).toEqual([
      'enrolling',
      'scanning',
      'awaiting_order',
      'awaiting_confirmation',
      'awaiting_authentication',
      'succeeded',
    ]);
    const success = h.events.find((e) => e.name === 'success');
    expect(success?.payload.payment).toMatchObject({
      amount: 1999,
      charged: 1999,
      currency: 'CNY',
    });
    // idle, enrolling, busy, scanning, awaiting_order, confirmation, busy, prompt, busy, result
    expect(h.changes.map((c) => `${c.state}${c.busy ? '*' : ''}`)).toEqual([
      'idle',
      'enrolling',
      'enrolling*',
      'scanning',
      'awaiting_order*',
      'awaiting_confirmation',
      'awaiting_confirmation*',
      'awaiting_authentication',
      'awaiting_authentication*',
      'succeeded',
    ]);
  });

  it('keeps the terminal credentials in storage but never the password or its key', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    const stored = JSON.parse(h.storage.data.get(credentialsKey(h.platform.baseUrl))!);
    expect(Object.keys(stored).sort()).toEqual([
      'createdAt',
      'iterations',
      'salt',
      'terminalId',
      'terminalSecret',
    ]);
    const all = [...h.storage.data.values()].join('\n');
    expect(all).not.toContain(PASSWORD);
    const registration = JSON.parse(h.platform.requests[0].body!);
    expect(all).not.toContain(registration.password.key);
  });

  it('opens the scanner with the scan types the platform offered, the session already made', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    expect(h.host.scanner.openedWith).toEqual([['qrCode', 'barCode']]);
    const sessionCreations = h.platform.requests.filter((r) => r.url.endsWith('/v1/sessions'));
    expect(sessionCreations).toHaveLength(1);
  });

  it('refuses a weak or mismatched new password and stays on the enrolment keypad', async () => {
    const h = checkoutOnFake();
    await h.checkout.start();
    await h.checkout.begin();
    await h.checkout.enrol('123456', '123456');
    expect(h.checkout.snapshot).toMatchObject({
      state: 'enrolling',
      error: { code: 'password_weak' },
    });
    await h.checkout.enrol('204816', '204817');
    expect(h.checkout.snapshot).toMatchObject({
      state: 'enrolling',
      error: { code: 'password_mismatch' },
    });
    expect(h.platform.terminals.size).toBe(0);
  });

  it('shows a fresh prompt with one attempt less after a wrong password, then pays with the right one', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    const firstChallenge = h.checkout.snapshot.authPrompt!.challenge;
    await h.checkout.payWithPassword('999999');
    expect(h.checkout.snapshot).toMatchObject({
      state: 'awaiting_authentication',
      error: { code: 'auth_failed', attemptsLeft: 4 },
    });
    expect(h.checkout.snapshot.authPrompt!.challenge).not.toBe(firstChallenge);
    await h.checkout.payWithPassword(PASSWORD);
    expect(h.checkout.snapshot.state).toBe('succeeded');
  });

  it('ends failed with the decline code when the card is declined', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4000000000000002');
    await h.checkout.confirm();
    await h.checkout.payWithPassword(PASSWORD);
    expect(h.checkout.snapshot).toMatchObject({
      state: 'failed',
      error: { code: 'payment_declined', declineCode: 'card_declined' },
    });
    expect(h.events.filter((e) => e.name === 'fail').map((e) => e.payload.error.code)).toEqual([
      'payment_declined',
    ]);
  });

  it('locks after the fifth wrong password', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    for (let i = 0; i < 5; i++) await h.checkout.payWithPassword('999999');
    expect(h.checkout.snapshot).toMatchObject({ state: 'failed', error: { code: 'auth_locked' } });
  });

  it('polls a processing payment until it succeeds', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '6222021000000000017');
    await h.checkout.confirm();
    const succeeded = new Promise((resolve) => h.checkout.on('success', resolve));
    await h.checkout.payWithPassword(PASSWORD);
    expect(h.checkout.snapshot.state).toBe('processing');
    await succeeded;
    expect(h.states().slice(-2)).toEqual(['processing', 'succeeded']);
  });

  it('recovers through the session status when every answer to the order is lost', async () => {
    const h = checkoutOnFake();
    h.host.scanner.push('4242424242424242');
    await h.checkout.start();
    await h.checkout.begin();
    h.platform.loseAnswers = 0;
    const original = h.platform.request;
    let armed = false;
    h.host.request = async (req) => {
      if (req.url.endsWith('/order') && !armed) {
        armed = true;
        h.platform.loseAnswers = 3; // the first try and both retries act-or-replay, then vanish
      }
      return original(req);
    };
    await h.checkout.enrol(PASSWORD, PASSWORD);
    expect(h.checkout.snapshot.state).toBe('awaiting_confirmation');
    const orders = h.platform.requests.filter((r) => r.url.endsWith('/order'));
    expect(orders).toHaveLength(3);
    expect(new Set(orders.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    expect(new Set(orders.map((r) => r.headers['x-cardpay-nonce'])).size).toBe(3);
    expect(h.platform.requests.at(-1)!.method).toBe('GET');
  });

  it('makes a new session transparently when the prefetched one expired', async () => {
    const h = checkoutOnFake();
    await h.checkout.start();
    await h.checkout.begin();
    h.host.scanner.push('4242424242424242');
    await h.checkout.enrol(PASSWORD, PASSWORD);
    // Expire the live session on the platform only: the terminal learns it from the order's answer.
    const live = [...h.platform.sessions.values()].find(
      (s) => s.state === 'awaiting_confirmation',
    )!;
    expect(live).toBeDefined();
    await h.checkout.retry();
    await new Promise((r) => setImmediate(r));
    for (const s of h.platform.sessions.values())
      if (s.state === 'awaiting_order') s.expiresAt = h.platform.nowMs - 1;
    h.host.scanner.push('5555555555554444');
    await h.checkout.scan();
    expect(h.checkout.snapshot.state).toBe('awaiting_confirmation');
    expect(h.checkout.snapshot.confirmation!.card.last4).toBe('4444');
    // One session per card, plus the prefetched one the order found expired.
    const states = [...h.platform.sessions.values()].map((s) => s.state);
    expect(states.sort()).toEqual(['awaiting_confirmation', 'awaiting_confirmation', 'expired']);
  });

  it('shows the expired state when the session lapses during authentication', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    h.platform.nowMs += 16 * 60 * 1000;
    await h.checkout.payWithPassword(PASSWORD);
    expect(h.checkout.snapshot).toMatchObject({
      state: 'expired',
      error: { code: 'session_expired' },
    });
  });

  it('rejects an answer altered in flight and stays where it was', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    h.platform.tamperNext = true;
    await h.checkout.confirm();
    expect(h.checkout.snapshot).toMatchObject({
      state: 'awaiting_confirmation',
      error: { code: 'response_unverified' },
    });
  });

  it('returns quietly to the entry when the user closes the scanner', async () => {
    const h = checkoutOnFake();
    h.host.scanner.pushCancel();
    await h.checkout.start();
    await h.checkout.begin();
    await h.checkout.enrol(PASSWORD, PASSWORD);
    expect(h.checkout.snapshot).toMatchObject({ state: 'idle', error: { code: 'scan_cancelled' } });
  });

  it('names a payment code that is not a card and sends nothing to the platform', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '134567890123456789');
    expect(h.checkout.snapshot).toMatchObject({
      state: 'idle',
      error: { code: 'invalid_card', reason: 'wallet_payment_code', detected: 'wechat_pay' },
    });
    expect(h.platform.requests.some((r) => r.url.endsWith('/order'))).toBe(false);
  });

  it('accepts a typed card number', async () => {
    const h = checkoutOnFake();
    h.host.scanner.pushCancel();
    await enrolAndScan(h, '');
    await h.checkout.enterManually('5555 5555 5555 4444');
    expect(h.checkout.snapshot.state).toBe('awaiting_confirmation');
    const order = JSON.parse(h.platform.requests.find((r) => r.url.endsWith('/order'))!.body!);
    expect(order.card).toEqual({ source: 'manual', payload: '5555 5555 5555 4444' });
  });

  it('ends cancelled with a cancel event when the user rejects the confirmation', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.reject();
    expect(h.checkout.snapshot.state).toBe('cancelled');
    expect(h.events.at(-1)!.name).toBe('cancel');
  });

  it('ends the session on the platform when the user backs out of the authentication', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    const sessionId = h.checkout.snapshot.sessionId!;
    await h.checkout.cancel();
    expect(h.platform.sessions.get(sessionId)?.state).toBe('cancelled');
    expect(h.checkout.snapshot).toMatchObject({ state: 'cancelled', busy: false });
    expect(h.checkout.snapshot.confirmation).toBeUndefined();
    expect(h.events.at(-1)!.name).toBe('cancel');
    // From the entry, the next tap starts a fresh session.
    h.host.scanner.push('4242424242424242');
    await h.checkout.begin();
    expect(h.checkout.snapshot.state).toBe('awaiting_confirmation');
    expect(h.checkout.snapshot.sessionId).not.toBe(sessionId);
  });

  it('stops waiting after its bounded wait without calling the payment failed, and asks again on refresh', async () => {
    const platform = new FakePlatform();
    // Sleeping moves the platform's clock, so the 5 s wait passes at once.
    const sleep = async (ms: number) => void (platform.nowMs += ms);
    const h = checkoutOnFake(
      { pollIntervalMs: 1000, pollTimeoutMs: 5000, network: { sleep } },
      platform,
    );
    await enrolAndScan(h, '6222021000000000017');
    await h.checkout.confirm();
    platform.processingPolls = 1000;
    await h.checkout.payWithPassword(PASSWORD);
    await settled(() => h.checkout.snapshot.stillProcessing === true);
    expect(h.checkout.snapshot.state).toBe('processing');
    expect(h.events.map((e) => e.name)).not.toContain('fail');
    platform.processingPolls = 1;
    await h.checkout.refresh();
    expect(h.checkout.snapshot).toMatchObject({ state: 'succeeded', stillProcessing: false });
    expect(h.events.at(-1)!.name).toBe('success');
  });

  it('never reports a cancel for a payment that was made', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    await h.checkout.confirm();
    await h.checkout.payWithPassword(PASSWORD);
    await h.checkout.cancel();
    expect(h.checkout.snapshot.state).toBe('succeeded');
    expect(h.events.map((e) => e.name)).not.toContain('cancel');
  });

  it('returns to the entry with a cancel event when the user gives up after a decline', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4000000000000002');
    await h.checkout.confirm();
    await h.checkout.payWithPassword(PASSWORD);
    expect(h.checkout.snapshot.state).toBe('failed');
    await h.checkout.cancel();
    expect(h.checkout.snapshot).toMatchObject({ state: 'cancelled', error: undefined });
    expect(h.events.at(-1)!.name).toBe('cancel');
  });

  it('re-syncs its clock once when the platform reports timestamp skew', async () => {
    const h = checkoutOnFake();
    h.platform.serverSkewMs = 20 * 60 * 1000;
    await enrolAndScan(h, '4242424242424242');
    expect(h.checkout.snapshot.state).toBe('awaiting_confirmation');
  });

  it('retries a 503 with the same idempotency key', async () => {
    const h = checkoutOnFake();
    await enrolAndScan(h, '4242424242424242');
    h.platform.unavailable = 1;
    await h.checkout.confirm();
    expect(h.checkout.snapshot.state).toBe('awaiting_authentication');
    const confirms = h.platform.requests.filter((r) => r.url.endsWith('/confirm'));
    expect(confirms).toHaveLength(2);
    expect(confirms[0].headers['idempotency-key']).toBe(confirms[1].headers['idempotency-key']);
  });

  it('shows the result of a payment that completed while the app was closed', async () => {
    const h = await payAndLeaveProcessing();
    for (const s of h.platform.sessions.values())
      if (s.state === 'processing') s.state = 'succeeded';

    const again = checkoutOnFake({}, h.platform, h.storage);
    await again.checkout.start();
    expect(again.checkout.snapshot.state).toBe('succeeded');
    expect(again.events.map((e) => e.name)).toEqual(['statechange', 'success']);
    // Shown once: the next visit starts a new checkout.
    const third = checkoutOnFake({}, h.platform, h.storage);
    await third.checkout.start();
    expect(third.checkout.snapshot.state).toBe('idle');
  });

  it('refuses misuse with a message saying what was expected', () => {
    const h = checkoutOnFake();
    expect(
      () =>
        new Checkout({
          host: h.host,
          platformUrl: h.platform.baseUrl,
          merchantId: 'mch_sandbox',
          amount: 19.99,
        }),
    ).toThrow(/integer of minor units/);
    expect(
      () =>
        new Checkout({
          host: h.host,
          platformUrl: 'http://pay.example.com',
          merchantId: 'mch_sandbox',
          amount: 1,
        }),
    ).toThrow(/https/);
    expect(
      () =>
        new Checkout({
          host: h.host,
          platformUrl: h.platform.baseUrl,
          merchantId: 'shop',
          amount: 1,
        }),
    ).toThrow(/mch_/);
  });
});

describe('Checkout when the platform cannot be reached at start-up', () => {
  it('keeps the id of a payment in progress and shows its result once the network is back', async () => {
    const h = await payAndLeaveProcessing();

    const offline = checkoutOnFake({}, h.platform, h.storage);
    offline.host.request = async () => {
      throw Object.assign(new Error('offline'), { kind: 'network' });
    };
    await offline.checkout.start();
    expect(offline.checkout.snapshot).toMatchObject({
      state: 'idle',
      error: { code: 'network_error' },
    });
    expect(h.platform.sessions.size).toBe(1); // no second session was opened

    for (const s of h.platform.sessions.values()) s.state = 'succeeded';
    offline.host.request = h.platform.request;
    await offline.checkout.begin();
    expect(offline.checkout.snapshot.state).toBe('succeeded');
    expect(h.platform.sessions.size).toBe(1);
  });
});
