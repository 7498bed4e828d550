import { passwordWeakness } from '../../packages/sdk/src/core/enrolment';
import { formatAmount } from '../../packages/sdk/src/core/money';

describe('passwordWeakness', () => {
  it.each([
    '000000',
    '111111',
    '123456',
    '654321',
    '890123',
    '121212',
    '123123',
    '112233',
    '520131',
  ])('refuses %s as weak', (p) => expect(passwordWeakness(p)).toBe('weak'));
  it.each(['12345', '1234567', '12a456', ''])('refuses %j as not 6 digits', (p) =>
    expect(passwordWeakness(p)).toBe('format'),
  );
  it.each(['204816', '739201', '580346'])('accepts %s', (p) =>
    expect(passwordWeakness(p)).toBeUndefined(),
  );
});

describe('formatAmount', () => {
  it('formats minor units without floating point', () => {
    expect(formatAmount(1999, 'CNY')).toBe('¥19.99');
    expect(formatAmount(5, 'CNY')).toBe('¥0.05');
    expect(formatAmount(100000000, 'CNY')).toBe('¥1,000,000.00');
    expect(formatAmount(1999, 'JPY')).toBe('¥1,999');
    expect(formatAmount(1999, 'SGD')).toBe('19.99 SGD');
  });
});
