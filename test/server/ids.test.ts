import { newId } from '../../packages/platform/src/infra/secrets';

describe('the ids the platform makes', () => {
  it('carry their type prefix and 21 characters of [A-Za-z0-9]', () => {
    for (const prefix of ['ses', 'ord', 'pay', 'chg', 'evt', 'rfd', 'mor', 'trm'])
      expect(newId(prefix)).toMatch(new RegExp(`^${prefix}_[A-Za-z0-9]{21}$`));
  });

  it('sort in the order they were made, whatever their random part', () => {
    const start = Date.UTC(2026, 11, 5);
    const ids = Array.from({ length: 5000 }, (_, i) => newId('pay', start + i * 7));
    for (let i = 1; i < ids.length; i++) expect(ids[i - 1] < ids[i]).toBe(true);
    // Across a carry of every base-62 place, and across decades.
    expect(newId('pay', 62 ** 3 - 1) < newId('pay', 62 ** 3)).toBe(true);
    expect(newId('pay', Date.UTC(2030, 0)) < newId('pay', Date.UTC(2100, 0))).toBe(true);
  });

  it('made in the same millisecond, share their time and differ in their 13 random characters', () => {
    const at = Date.now();
    const ids = new Set(Array.from({ length: 10000 }, () => newId('ses', at)));
    expect(ids.size).toBe(10000);
    const times = new Set([...ids].map((id) => id.slice(4, 12)));
    expect(times.size).toBe(1);
  });
});
