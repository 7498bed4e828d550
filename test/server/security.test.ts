import { request as httpRequest } from 'node:http';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import type { Host } from '../../packages/sdk/src/core/host';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { factorsFor, pay, PASSWORD, proof, terminal, toPrompt } from '../support/server-harness';

// PROTOCOL.md §5.3: binding a card to a terminal, velocity, and failures that count.

let platform: SandboxPlatform;
beforeAll(async () => {
  platform = await startSandboxPlatform({
    configObject: {
      velocity: { cardDeclinesPerHour: 3, terminalDeclinesPerHour: 4 },
      // Bursts of one terminal's requests are what these tests are made of.
      throttle: { postsPerSecond: 1000, postsBurst: 1000 },
    },
  });
});
afterAll(() => platform.close());

async function chargeCount(p: SandboxPlatform, orderIds: string[]) {
  let n = 0;
  for (const id of orderIds) {
    const res = await fetch(`${p.sandbox!.url}/v1/charges?orderId=${id}`);
    n += ((await res.json()) as { charges: unknown[] }).charges.length;
  }
  return n;
}

describe('a card is bound to a terminal by a payment with its CVV', () => {
  it('makes the CVV mandatory on a card’s first payment and refuses the password alone', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation, prompt } = await toPrompt(t, '6200000000000005');
    expect(prompt).toMatchObject({ mandatory: ['cvv'], required: 2 });
    expect(prompt.methods).toContain('cvv');
    const alone = await t.client
      .authenticate(
        sessionId,
        {
          challenge: prompt.challenge,
          factors: [{ method: 'password', proof: proof(sessionId, prompt, confirmation) }],
        },
        await t.client.newIdempotencyKey(),
      )
      .catch((e) => e);
    expect(alone).toMatchObject({ code: 'invalid_request', status: 400 });
    expect(alone.message).toMatch(/cvv/);
    expect(await chargeCount(platform, [confirmation.orderId])).toBe(0);
  });

  it('never takes a CVV alone as authentication, whatever the merchant lists', async () => {
    const t = await terminal(platform);
    const { sessionId, prompt } = await toPrompt(t, '6200000000000005');
    const r = await t.client
      .authenticate(
        sessionId,
        {
          challenge: prompt.challenge,
          factors: [{ method: 'cvv', value: '123' }],
        },
        await t.client.newIdempotencyKey(),
      )
      .catch((e) => e);
    expect(r).toMatchObject({ code: 'invalid_request' });
  });

  it('binds the card once a payment with an accepted CVV succeeds; then the password suffices', async () => {
    const t = await terminal(platform);
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
    const next = await toPrompt(t, '4242424242424242');
    expect(next.prompt.mandatory).toBeUndefined();
    expect(next.prompt.required).toBe(1);
    const r = await t.client.authenticate(
      next.sessionId,
      {
        challenge: next.prompt.challenge,
        factors: [
          { method: 'password', proof: proof(next.sessionId, next.prompt, next.confirmation) },
        ],
      },
      await t.client.newIdempotencyKey(),
    );
    expect(r.state).toBe('succeeded');
    // Bound to that terminal only: another terminal must prove the card again.
    const other = await terminal(platform);
    expect((await toPrompt(other, '4242424242424242')).prompt.mandatory).toEqual(['cvv']);
  });

  it('does not bind a card whose CVV the payment platform refused', async () => {
    const t = await terminal(platform);
    const { sessionId, confirmation, prompt } = await toPrompt(t, '5555555555554444');
    const r = await t.client
      .authenticate(
        sessionId,
        {
          challenge: prompt.challenge,
          factors: factorsFor(sessionId, prompt, confirmation, undefined, '999'),
        },
        await t.client.newIdempotencyKey(),
      )
      .catch((e) => e);
    expect(r).toMatchObject({
      code: 'payment_declined',
      details: { declineCode: 'incorrect_cvc' },
    });
    expect((await toPrompt(t, '5555555555554444')).prompt.mandatory).toEqual(['cvv']);
  });
});

describe('failures that count', () => {
  it('leaves the failure count alone when a payment is declined, and resets it on a payment made', async () => {
    const t = await terminal(platform);
    for (let i = 0; i < 2; i++)
      expect(await pay(t, '6222021000000000009', 1999, '999999')).toMatchObject({
        code: 'auth_failed',
      });
    // The right password with a wrong CVV: declined by the payment platform, not a reset.
    const declined = await toPrompt(t, '6222021000000000009');
    expect(declined.prompt.attemptsLeft).toBe(3);
    await t.client
      .authenticate(
        declined.sessionId,
        {
          challenge: declined.prompt.challenge,
          factors: factorsFor(
            declined.sessionId,
            declined.prompt,
            declined.confirmation,
            undefined,
            '999',
          ),
        },
        await t.client.newIdempotencyKey(),
      )
      .catch((e) => e);
    expect((await toPrompt(t, '6222021000000000009')).prompt.attemptsLeft).toBe(3);
    expect(await pay(t, '6222021000000000009')).toMatchObject({ state: 'succeeded' });
    expect((await toPrompt(t, '6222021000000000009')).prompt.attemptsLeft).toBe(5);
  });

  it('judges at most five wrong passwords of sixteen whose headers all arrived first', async () => {
    const t = await terminal(platform);
    const sessions = [];
    for (let i = 0; i < 16; i++) sessions.push(await toPrompt(t, '6222021000000000009'));
    // A host that sends each request's headers at once and holds its body until all are out.
    let release!: () => void;
    const barrier = new Promise<void>((r) => (release = r));
    let sent = 0;
    const slowBodies: Host = {
      ...t.host,
      request: (req) =>
        new Promise((resolve, reject) => {
          const r = httpRequest(req.url, { method: req.method, headers: req.headers }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers as Record<string, string>,
                body: new Uint8Array(Buffer.concat(chunks)),
              }),
            );
          });
          r.on('error', reject);
          r.flushHeaders();
          if (++sent === 16) setTimeout(release, 200);
          void barrier.then(() => r.end(req.body));
        }),
    };
    const client = new PlatformClient({ baseUrl: platform.url, host: slowBodies, maxAttempts: 1 });
    client.identity = t.client.identity;
    const results = await Promise.all(
      sessions.map((s, i) =>
        client
          .authenticate(
            s.sessionId,
            {
              challenge: s.prompt.challenge,
              factors: factorsFor(
                s.sessionId,
                s.prompt,
                s.confirmation,
                i === 15 ? undefined : '999999',
              ),
            },
            `race-key-${i}-xxxx`,
          )
          .catch((e) => e),
      ),
    );
    const codes = results.map((r) => r.code ?? r.state);
    const judgedWrong = codes.filter((c) => c === 'auth_failed').length;
    const lockedByFailure = results.filter(
      (r) => r.code === 'auth_locked' && /failed authentications/.test(r.message),
    ).length;
    expect(judgedWrong + lockedByFailure).toBeLessThanOrEqual(5);
    expect(lockedByFailure).toBeLessThanOrEqual(1);
    // Whatever the interleaving, the terminal ends locked or has paid once at most.
    const paid = codes.filter((c) => c === 'succeeded').length;
    expect(paid).toBeLessThanOrEqual(1);
    expect(
      await chargeCount(
        platform,
        sessions.map((s) => s.confirmation.orderId),
      ),
    ).toBe(paid);
  });
});

describe('an authentication whose lease was lost while it was judged', () => {
  it('tells nothing of what was judged and counts nothing: a right and a wrong password get the same 429', async () => {
    const t = await terminal(platform);
    const card = '6222021000000000009';
    // Between the judging and the commit that would tell it, the lease goes (held past its time,
    // or lost) and another request takes it, for 1 ms.
    const commit = platform.store.commit.bind(platform.store);
    const loseTheLease = () =>
      jest.spyOn(platform.store, 'commit').mockImplementationOnce(async (writes) => {
        const held = (await platform.store.getTerminal(t.id))!.authLeaseUntil;
        await commit([{ kind: 'releaseAuthLease', terminalId: t.id, lease: held }]);
        expect(
          await platform.store.acquireAuthLease(t.id, Date.now(), Date.now() + 1),
        ).toMatchObject({ kind: 'ok' });
        return commit(writes);
      });
    const attempt = async (password: string) => {
      const { sessionId, confirmation, prompt } = await toPrompt(t, card);
      const spy = loseTheLease();
      const answer = await t.client
        .authenticate(
          sessionId,
          {
            challenge: prompt.challenge,
            factors: factorsFor(sessionId, prompt, confirmation, password),
          },
          await t.client.newIdempotencyKey(),
        )
        .catch((e: { status: number; code: string; retryable: boolean }) => e);
      spy.mockRestore();
      await new Promise((r) => setTimeout(r, 5));
      return { answer, orderId: confirmation.orderId, sessionId };
    };
    const right = await attempt(PASSWORD);
    const wrong = await attempt('999999');
    for (const { answer } of [right, wrong])
      expect(answer).toMatchObject({ status: 429, code: 'rate_limited', retryable: true });
    expect(await chargeCount(platform, [right.orderId, wrong.orderId])).toBe(0);
    // Nothing counted: all five attempts are left, and the right password then pays.
    const next = await toPrompt(t, card);
    expect(next.prompt.attemptsLeft).toBe(5);
    expect(await pay(t, card)).toMatchObject({ state: 'succeeded' });
  });
});

describe('velocity', () => {
  it('refuses a card after three declines in an hour, before the payment platform is asked', async () => {
    const orderIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await terminal(platform);
      const r = (await pay(t, '4000000000000002')) as { code: string };
      expect(r.code).toBe('payment_declined');
    }
    const t = await terminal(platform);
    const at = await toPrompt(t, '4000000000000002');
    orderIds.push(at.confirmation.orderId);
    const r = await t.client
      .authenticate(
        at.sessionId,
        {
          challenge: at.prompt.challenge,
          factors: factorsFor(at.sessionId, at.prompt, at.confirmation),
        },
        await t.client.newIdempotencyKey(),
      )
      .catch((e) => e);
    expect(r).toMatchObject({ code: 'rate_limited', status: 429, retryable: true });
    expect(await chargeCount(platform, orderIds)).toBe(0);
    // Not a failed attempt, and the session may still be paid later.
    const view = await t.client.getSession(at.sessionId);
    expect(view.state).toBe('awaiting_authentication');
    expect(view.authPrompt!.attemptsLeft).toBe(5);
  });

  it('refuses a terminal after four declines in an hour, whatever the card', async () => {
    const t = await terminal(platform);
    const cards = [
      '4000000000009995',
      '6222021000000000009',
      '5555555555554444',
      '4242424242424242',
    ];
    for (const card of cards) {
      const at = await toPrompt(t, card);
      await t.client
        .authenticate(
          at.sessionId,
          {
            challenge: at.prompt.challenge,
            factors: factorsFor(at.sessionId, at.prompt, at.confirmation, undefined, '999'),
          },
          await t.client.newIdempotencyKey(),
        )
        .catch((e) => e);
    }
    const r = (await pay(t, '6200000000000005')) as { code: string };
    expect(r.code).toBe('rate_limited');
  });
});
