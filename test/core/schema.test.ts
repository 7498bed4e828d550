import {
  OrderRequestSchema,
  AuthenticateRequestSchema,
  RegisterTerminalRequestSchema,
} from '../../packages/sdk/src/core/protocol';
import { validate } from '../../packages/sdk/src/core/schema';

const order = {
  amount: 1999,
  currency: 'CNY',
  card: { source: 'scan', scanType: 'qrCode', payload: '4242424242424242' },
};

describe('protocol validation', () => {
  it('accepts a well-formed order', () => {
    expect(validate(OrderRequestSchema, order)).toEqual({ ok: true, value: order });
  });

  it.each([
    [{ ...order, amount: 19.99 }, 'amount', 'must be an integer'],
    [{ ...order, amount: '1999' }, 'amount', 'must be an integer'],
    [{ ...order, amount: 0 }, 'amount', 'at least 1'],
    [{ ...order, amount: 100000001 }, 'amount', 'at most 100000000'],
    [{ ...order, currency: 'cny' }, 'currency', 'invalid format'],
    [{ ...order, amout: 1 }, 'amout', 'not a known field'],
    [
      { ...order, card: { source: 'manual', scanType: 'qrCode', payload: '1' } },
      'card.scanType',
      'not a known field',
    ],
    [{ ...order, card: { source: 'scan', payload: '1' } }, 'card.scanType', 'is required'],
    [{ ...order, card: { source: 'nfc', payload: '1' } }, 'card.source', 'must be one of'],
    [
      { ...order, card: { ...order.card, payload: 'x'.repeat(1025) } },
      'card.payload',
      'at most 1024',
    ],
  ])('names the offending field of %j', (body, field, words) => {
    const r = validate(OrderRequestSchema, body);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.field).toBe(field);
      expect(r.message).toContain(field);
      expect(r.message).toContain(words);
    }
  });

  it('names the factor index of a bad authentication factor', () => {
    const r = validate(AuthenticateRequestSchema, {
      challenge: 'ab'.repeat(32),
      factors: [{ method: 'cvv', value: '12' }],
    });
    expect(r).toMatchObject({ ok: false, field: 'factors[0].value' });
  });

  it('refuses fewer than 10,000 PBKDF2 iterations at registration', () => {
    const r = validate(RegisterTerminalRequestSchema, {
      password: { salt: '00'.repeat(16), iterations: 1000, key: '11'.repeat(32) },
    });
    expect(r).toMatchObject({ ok: false, field: 'password.iterations' });
  });

  it('refuses a body that is not an object', () => {
    expect(validate(OrderRequestSchema, null)).toMatchObject({
      ok: false,
      message: 'body must be an object, got null',
    });
  });
});
