import { createHash } from 'node:crypto';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { factorsFor, terminal } from '../support/server-harness';

// PROTOCOL.md §6: the loyalty history is kept per currency and ranges are configured per
// currency; a currency without ranges gets no discount, and a payment in one currency never moves
// another's history.

let platform: SandboxPlatform;
beforeAll(async () => {
  platform = await startSandboxPlatform({
    configObject: {
      merchants: [
        {
          id: 'mch_world',
          apiKeySha256: createHash('sha256').update('sk_world_key_0001').digest('hex'),
          currencies: ['CNY', 'VND', 'USD'],
          openAmounts: true,
        },
      ],
      discounts: {
        CNY: [
          { from: 0, rateBps: 0 },
          { from: 100000, rateBps: 200 },
          { from: 500000, rateBps: 500 },
        ],
        VND: [
          { from: 0, rateBps: 0 },
          { from: 400000, rateBps: 300 },
        ],
      },
    },
  });
});
afterAll(() => platform.close());

type Terminal = Awaited<ReturnType<typeof terminal>>;

async function payIn(t: Terminal, amount: number, currency: string) {
  const k = () => t.client.newIdempotencyKey();
  const { sessionId } = await t.client.createSession({ merchantId: 'mch_world' }, await k());
  const order = await t.client.submitOrder(
    sessionId,
    {
      amount,
      currency,
      card: { source: 'scan', scanType: 'qrCode', payload: '4242424242424242' },
    },
    await k(),
  );
  const { authPrompt } = await t.client.confirm(
    sessionId,
    { confirmToken: order.confirmation.confirmToken, accept: true },
    await k(),
  );
  const r = await t.client.authenticate(
    sessionId,
    {
      challenge: authPrompt!.challenge,
      factors: factorsFor(sessionId, authPrompt!, order.confirmation),
    },
    await k(),
  );
  return r.payment!;
}

describe('the loyalty history, per currency', () => {
  it('gives no CNY tier for a history in another currency (500,000 VND is about ¥140)', async () => {
    const t = await terminal(platform);
    expect(await payIn(t, 500000, 'VND')).toMatchObject({ discount: { rateBps: 0 } });
    expect(await payIn(t, 10000, 'CNY')).toMatchObject({
      discount: { rateBps: 0, amountOff: 0 },
      charged: 10000,
    });
    expect(await platform.store.historyTotal(t.id, 'CNY')).toBe(10000);
    expect(await platform.store.historyTotal(t.id, 'VND')).toBe(500000);
  });

  it('applies a currency’s own ranges to its own history', async () => {
    const t = await terminal(platform);
    await payIn(t, 450000, 'VND');
    expect(await payIn(t, 100000, 'VND')).toMatchObject({
      discount: { rateBps: 300, amountOff: 3000 },
      charged: 97000,
    });
  });

  it('gives no discount in a currency without ranges, whatever its history', async () => {
    const t = await terminal(platform);
    await payIn(t, 900000, 'USD');
    expect(await payIn(t, 1000, 'USD')).toMatchObject({
      discount: { rateBps: 0, amountOff: 0 },
      charged: 1000,
    });
  });
});
