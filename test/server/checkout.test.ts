import { PlatformClient } from '../../packages/sdk/src/core/client';
import { createNodeHost, createSandboxBiometric } from '../../packages/sdk/src/hosts/node';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import {
  checkout,
  factorsFor,
  pay,
  PASSWORD,
  proof,
  terminal,
  toPrompt,
} from '../support/server-harness';

let platform: SandboxPlatform;
beforeAll(async () => {
  platform = await startSandboxPlatform({
    configObject: {
      discounts: [
        { from: 0, rateBps: 0 },
        { from: 3000, rateBps: 200 },
        { from: 6000, rateBps: 500 },
      ],
    },
  });
});
afterAll(() => platform.close());

async function chargesFor(orderId: string) {
  const res = await fetch(`${platform.sandbox!.url}/v1/charges?orderId=${orderId}`);
  return (
    (await res.json()) as {
      charges: { status: string; declineCode?: string; card: { masked: string } }[];
    }
  ).charges;
}

describe('a real checkout through the SDK against the reference platform', () => {
  it('enrols, scans, confirms and pays: client and server agree byte for byte', async () => {
    const host = createNodeHost();
    const c = checkout(platform, host);
    const states: string[] = [];
    c.on('statechange', ({ state }) => states.push(state));
    host.scanner.push('6222 0210 0000 0000 009');
    await c.start();
    await c.begin();
    await c.enrol(PASSWORD, PASSWORD);
    expect(c.snapshot.confirmation?.card).toEqual({
      brand: 'unionpay',
      last4: '0009',
      masked: '622202*********0009',
      issuer: { name: '中国工商银行', nameEn: 'ICBC', type: 'debit' },
    });
    await c.confirm();
    // The card's first payment on this terminal: its CVV on top of the password.
    expect(c.snapshot.authPrompt).toMatchObject({
      methods: ['password', 'cvv'],
      required: 2,
      mandatory: ['cvv'],
      attemptsLeft: 5,
    });
    await c.authenticate([
      { method: 'password', password: PASSWORD },
      { method: 'cvv', cvv: '123' },
    ]);
    expect(c.snapshot.state).toBe('succeeded');
    expect(c.snapshot.payment).toMatchObject({
      amount: 1999,
      charged: 1999,
      discount: { rateBps: 0, amountOff: 0 },
    });
    expect(states).toEqual([
      'enrolling',
      'scanning',
      'awaiting_order',
      'awaiting_confirmation',
      'awaiting_authentication',
      'succeeded',
    ]);
    expect(await chargesFor(c.snapshot.payment!.orderId)).toEqual([
      expect.objectContaining({
        status: 'succeeded',
        card: expect.objectContaining({ masked: '622202*********0009' }),
      }),
    ]);
  });

  it.each([
    ['6200000000000005', 'succeeded'],
    ['4242424242424242', 'succeeded'],
    ['5555555555554444', 'succeeded'],
    ['6222021000000000025', 'succeeded'],
  ])('approves sandbox card %s', async (card, state) => {
    const t = await terminal(platform);
    const r = (await pay(t, card)) as { state: string; payment: { orderId: string } };
    expect(r.state).toBe(state);
    expect(await chargesFor(r.payment.orderId)).toHaveLength(1);
  });

  it.each([
    ['4000000000000002', 'card_declined'],
    ['4000000000009995', 'insufficient_funds'],
  ])(
    'declines sandbox card %s with %s and keeps only the masked card',
    async (card, declineCode) => {
      const t = await terminal(platform);
      const r = (await pay(t, card)) as {
        code: string;
        status: number;
        details: { declineCode: string };
      };
      expect(r).toMatchObject({ code: 'payment_declined', status: 402, details: { declineCode } });
    },
  );

  it('declines any card with CVV 999 as incorrect_cvc', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
    await expect(
      t.client.authenticate(
        sessionId,
        {
          challenge: prompt.challenge,
          factors: factorsFor(sessionId, prompt, confirmation, PASSWORD, '999'),
        },
        'cvv-key-0001',
      ),
    ).rejects.toMatchObject({
      code: 'payment_declined',
      details: { declineCode: 'incorrect_cvc' },
    });
  });

  it('answers processing for the slow card, and the reconciler settles it to one charge', async () => {
    const t = await terminal(platform);
    const r = (await pay(t, '6222021000000000017')) as {
      state: string;
      sessionId: string;
      payment: { orderId: string };
    };
    expect(r.state).toBe('processing');
    let view = await t.client.getSession(r.sessionId);
    for (let i = 0; i < 60 && view.state === 'processing'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      view = await t.client.getSession(r.sessionId);
    }
    expect(view.state).toBe('succeeded');
    expect(await chargesFor(r.payment.orderId)).toHaveLength(1);
  });

  it('applies the loyalty discount from the terminal’s payment history', async () => {
    const t = await terminal(platform);
    const first = (await pay(t, '4242424242424242', 3000)) as {
      payment: { discount: object; charged: number };
    };
    expect(first.payment).toMatchObject({ discount: { rateBps: 0, amountOff: 0 }, charged: 3000 });
    const second = (await pay(t, '4242424242424242', 3333)) as {
      payment: { discount: object; charged: number };
    };
    expect(second.payment).toMatchObject({
      discount: { rateBps: 200, amountOff: 66 },
      charged: 3267,
    });
    const third = (await pay(t, '4242424242424242', 1999)) as {
      payment: { discount: object; charged: number };
    };
    expect(third.payment).toMatchObject({
      discount: { rateBps: 500, amountOff: 99 },
      charged: 1900,
    });
  });

  it('accepts a sandbox-p256 biometric signature over the challenge and refuses a forged one', async () => {
    const bio = createSandboxBiometric();
    const t = await terminal(platform, { biometric: bio });
    const { sessionId, prompt } = await toPrompt(t, '4242424242424242');
    expect(prompt.methods).toEqual(['password', 'biometric', 'cvv']);
    const forged = await bio.authenticate('00'.repeat(32), 'fingerPrint');
    await expect(
      t.client.authenticate(
        sessionId,
        {
          challenge: prompt.challenge,
          factors: [
            { method: 'biometric', ...forged },
            { method: 'cvv', value: '123' },
          ],
        },
        'bio-key-0001',
      ),
    ).rejects.toMatchObject({ code: 'auth_failed' });
    const view = await t.client.getSession(sessionId);
    const good = await bio.authenticate(view.authPrompt!.challenge, 'fingerPrint');
    const r = await t.client.authenticate(
      sessionId,
      {
        challenge: view.authPrompt!.challenge,
        factors: [
          { method: 'biometric', ...good },
          { method: 'cvv', value: '123' },
        ],
      },
      'bio-key-0002',
    );
    expect(r.state).toBe('succeeded');
  });

  it('gives a new challenge after a wrong password and refuses the old one as stale', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
    const wrong = t.client.authenticate(
      sessionId,
      {
        challenge: prompt.challenge,
        factors: factorsFor(sessionId, prompt, confirmation, '999999'),
      },
      'pw-key-00001',
    );
    await expect(wrong).rejects.toMatchObject({
      code: 'auth_failed',
      retryable: true,
      details: { state: 'awaiting_authentication', authPrompt: { attemptsLeft: 4 } },
    });
    const stale = t.client.authenticate(
      sessionId,
      {
        challenge: prompt.challenge,
        factors: factorsFor(sessionId, prompt, confirmation),
      },
      'pw-key-00002',
    );
    await expect(stale).rejects.toMatchObject({ code: 'challenge_stale' });
    const fresh = (await t.client.getSession(sessionId)).authPrompt!;
    const ok = await t.client.authenticate(
      sessionId,
      {
        challenge: fresh.challenge,
        factors: factorsFor(sessionId, fresh, confirmation),
      },
      'pw-key-00003',
    );
    expect(ok.state).toBe('succeeded');
  });

  it('locks a terminal after five consecutive failures across sessions', async () => {
    const t = await terminal(platform);
    for (let i = 0; i < 3; i++)
      expect(await pay(t, '4242424242424242', 1999, '999999')).toMatchObject({
        code: 'auth_failed',
      });
    const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
    const attempt = (challenge: string, pw: string, key: string) =>
      t.client.authenticate(
        sessionId,
        {
          challenge,
          factors: factorsFor(sessionId, { ...prompt, challenge }, confirmation, pw),
        },
        key,
      );
    expect(prompt.attemptsLeft).toBe(2);
    const fourth = await attempt(prompt.challenge, '999999', 'lock-key-0001').catch((e) => e);
    expect(fourth).toMatchObject({ code: 'auth_failed' });
    const fifth = await attempt(
      fourth.details.authPrompt.challenge,
      '999999',
      'lock-key-0002',
    ).catch((e) => e);
    expect(fifth).toMatchObject({ code: 'auth_locked', status: 423 });
    expect((await t.client.getSession(sessionId)).state).toBe('failed');
    // Locked everywhere: even the right password in a new session.
    expect(await pay(t, '4242424242424242')).toMatchObject({ code: 'auth_locked' });
  });

  it('gives the terminal’s lease back whatever refuses an authentication before it is judged', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation, prompt } = await toPrompt(t, '4242424242424242');
    // One attempt each: a lease kept by a refusal would answer the next one busy (429).
    const once = new PlatformClient({ baseUrl: platform.url, host: t.host, maxAttempts: 1 });
    once.identity = t.client.identity;
    const good = factorsFor(sessionId, prompt, confirmation);
    const refusals = [
      // No such session of this terminal.
      [{ id: 'ses_none', challenge: prompt.challenge, factors: good }, 'session_not_found'],
      // A challenge that is not the live one.
      [{ id: sessionId, challenge: 'ab'.repeat(32), factors: good }, 'challenge_stale'],
      // A method the prompt did not offer.
      [
        {
          id: sessionId,
          challenge: prompt.challenge,
          factors: [{ method: 'cvv' as const, value: '123' }],
        },
        'invalid_request',
      ],
    ] as const;
    for (const [r, code] of refusals)
      await expect(
        once.authenticate(
          r.id,
          { challenge: r.challenge, factors: [...r.factors] },
          await once.newIdempotencyKey(),
        ),
      ).rejects.toMatchObject({ code });
    const paid = await once.authenticate(
      sessionId,
      { challenge: prompt.challenge, factors: good },
      await once.newIdempotencyKey(),
    );
    expect(paid.state).toBe('succeeded');
  });

  it('refuses a method the prompt did not offer', async () => {
    const t = await terminal(platform);
    const { sessionId, prompt } = await toPrompt(t, '4242424242424242');
    await expect(
      t.client.authenticate(
        sessionId,
        {
          challenge: prompt.challenge,
          factors: [
            { method: 'biometric', mode: 'facial', resultJSON: '{}', signature: '00'.repeat(8) },
          ],
        },
        'bad-method-01',
      ),
    ).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
  });
});
