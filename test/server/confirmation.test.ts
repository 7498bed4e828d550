import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { factorsFor, terminal, toPrompt } from '../support/server-harness';

// PROTOCOL.md §5.2's optional members: the card as the shopper knows it (bank and type, from the
// platform's card-range table) and the price after the loyalty discount, before paying.

describe('the order confirmation', () => {
  let platform: SandboxPlatform;
  let custom: SandboxPlatform;
  beforeAll(async () => {
    platform = await startSandboxPlatform();
    custom = await startSandboxPlatform({
      configObject: {
        cardRanges: [
          { prefix: '424242', name: '示例银行', nameEn: 'Example Bank', type: 'prepaid' },
        ],
      },
    });
  });
  afterAll(async () => {
    await platform?.close();
    await custom?.close();
  });

  it('names the bank and the card type of cards in the card-range table', async () => {
    const t = await terminal(platform);
    const icbc = await toPrompt(t, '6222021000000000009');
    expect(icbc.confirmation.card).toEqual({
      brand: 'unionpay',
      last4: '0009',
      masked: '622202*********0009',
      issuer: { name: '中国工商银行', nameEn: 'ICBC', type: 'debit' },
    });
    const visa = await toPrompt(t, '4242424242424242');
    expect(visa.confirmation.card.issuer).toEqual({
      name: '沙箱银行',
      nameEn: 'Sandbox Bank',
      type: 'credit',
    });
  });

  it('leaves the issuer out for a card the table does not know', async () => {
    const t = await terminal(platform);
    const p = await toPrompt(t, '4111111111111111');
    expect(p.confirmation.card.issuer).toBeUndefined();
  });

  it('uses the operator’s table in place of the reference one', async () => {
    const t = await terminal(custom);
    expect((await toPrompt(t, '4242424242424242')).confirmation.card.issuer).toEqual({
      name: '示例银行',
      nameEn: 'Example Bank',
      type: 'prepaid',
    });
    expect((await toPrompt(t, '6222021000000000009')).confirmation.card.issuer).toBeUndefined();
  });

  it('shows the price after the loyalty discount before paying, and charges exactly that', async () => {
    const t = await terminal(platform);
    const first = await toPrompt(t, '6200000000000005', 100000);
    expect(first.confirmation.discount).toEqual({ rateBps: 0, amountOff: 0, charged: 100000 });
    await t.client.authenticate(
      first.sessionId,
      {
        challenge: first.prompt.challenge,
        factors: factorsFor(first.sessionId, first.prompt, first.confirmation),
      },
      await t.client.newIdempotencyKey(),
    );
    // ¥1,000 of history: 2 % off from now on. ¥56.80 is ¥55.67 to pay.
    const p = await toPrompt(t, '6200000000000005', 5680);
    expect(p.confirmation.discount).toEqual({ rateBps: 200, amountOff: 113, charged: 5567 });
    const view = await t.client.getSession(p.sessionId);
    expect(view.confirmation?.discount).toEqual({ rateBps: 200, amountOff: 113, charged: 5567 });
    const paid = await t.client.authenticate(
      p.sessionId,
      { challenge: p.prompt.challenge, factors: factorsFor(p.sessionId, p.prompt, p.confirmation) },
      await t.client.newIdempotencyKey(),
    );
    expect(paid.payment.charged).toBe(5567);
  });

  it('refuses an operator table with a malformed range, naming the field', async () => {
    await expect(
      startSandboxPlatform({
        configObject: { cardRanges: [{ prefix: '4242', name: 'x', type: 'debit' }] },
      }),
    ).rejects.toThrow(/cardRanges.*prefix/);
  });
});
