import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { base64Encode } from '../../packages/sdk/src/core/encoding';
import { detectBrand, readCard } from '../../packages/sdk/src/core/card/brand';
import { luhnValid, maskPan } from '../../packages/sdk/src/core/card/reader';

interface FixtureCase {
  payload: string;
  expect: { pan?: string; brand?: string; last4?: string; error?: string; reason?: string };
  note: string;
}

// The repository's own copy of the team's scan fixtures (test/fixtures); a test below keeps the
// two identical while the team's contract folder sits beside the checkout.
const FIXTURES = join(__dirname, '../fixtures/scan-payloads.json');
const TEAM_FIXTURES = join(__dirname, '../../../shared/fixtures/scan-payloads.json');
const fixtures: FixtureCase[] = JSON.parse(readFileSync(FIXTURES, 'utf8')).cases;

/** Builds a TLV with a short or long-form length. */
function tlv(tag: number[], value: number[], longForm = false): number[] {
  const n = value.length;
  const length = longForm || n > 127 ? (n > 255 ? [0x82, n >> 8, n & 255] : [0x81, n]) : [n];
  return [...tag, ...length, ...value];
}
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const bcd = (digits: string) => {
  const padded = digits.length % 2 ? digits + 'F' : digits;
  return Array.from({ length: padded.length / 2 }, (_, i) =>
    parseInt(padded.slice(i * 2, i * 2 + 2), 16),
  );
};
const header = tlv([0x85], ascii('CPV01'));
const cpm = (...items: number[][]) => base64Encode(Uint8Array.from([...header, ...items.flat()]));

describe('readCard', () => {
  // Skipped only where the team's contract folder is absent (a plain clone of this repository).
  (existsSync(TEAM_FIXTURES) ? it : it.skip)(
    'keeps its copy of the scan fixtures identical to the team’s',
    () => {
      expect(readFileSync(FIXTURES, 'utf8')).toBe(readFileSync(TEAM_FIXTURES, 'utf8'));
    },
  );

  describe('the shared fixtures', () => {
    it.each(fixtures.map((c) => [c.note, c] as const))('reads %s as expected', (_note, c) => {
      const r = readCard(c.payload);
      if (c.expect.error) {
        expect(r.ok).toBe(false);
        if (!r.ok) expect({ error: r.error, reason: r.reason }).toEqual(c.expect);
      } else {
        expect(r.ok).toBe(true);
        if (r.ok)
          expect({ pan: r.card.pan, brand: r.card.brand, last4: r.card.last4 }).toEqual(c.expect);
      }
    });
  });

  it('finds the PAN in the common data template 62 when no application template has one', () => {
    const payload = cpm(
      tlv([0x61], [...tlv([0x4f], [0xa0, 0, 0, 3, 0x33]), ...tlv([0x50], ascii('UnionPay'))]),
      tlv([0x62], tlv([0x5a], bcd('4242424242424242'))),
    );
    expect(readCard(payload)).toMatchObject({
      ok: true,
      card: { pan: '4242424242424242', format: 'emv-cpm' },
    });
  });

  it('uses the first PAN in payload order across several application templates', () => {
    const payload = cpm(
      tlv([0x61], tlv([0x5a], bcd('5555555555554444'))),
      tlv([0x61], tlv([0x5a], bcd('4242424242424242'))),
    );
    expect(readCard(payload)).toMatchObject({
      ok: true,
      card: { pan: '5555555555554444', brand: 'mastercard' },
    });
  });

  it('skips multi-byte tags, long-form lengths and the nested templates 63 and 64', () => {
    const nested = tlv(
      [0x63],
      [...tlv([0x9f, 0x26], [1, 2, 3, 4, 5, 6, 7, 8]), ...tlv([0x9f, 0x27], [0x80])],
    );
    const app = tlv(
      [0x61],
      [
        ...tlv([0x5f, 0x20], ascii('ZHANG/SAN'), true),
        ...nested,
        ...tlv([0x64], [0x9f, 0x10, 1, 0]),
        ...tlv([0x5a], bcd('6222021000000000009'), true),
      ],
      true,
    );
    expect(readCard(cpm(app))).toMatchObject({
      ok: true,
      card: { pan: '6222021000000000009', brand: 'unionpay' },
    });
  });

  it('reads URL-safe base64 without padding', () => {
    const payload = cpm(tlv([0x61], tlv([0x5a], bcd('4242424242424242'))))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
    expect(readCard(payload).ok).toBe(true);
  });

  it.each([
    ['a truncated value', cpm([0x61, 0x10, 0x5a, 0x08, 0x42])],
    ['a truncated long-form length', cpm([0x61, 0x82, 0x01])],
    ['an indefinite length', cpm([0x61, 0x80, 0x00, 0x00])],
    ['a non-BCD application PAN', cpm(tlv([0x61], tlv([0x5a], [0x42, 0x4a, 0x42, 0x42])))],
    ['track 2 data with no separator', cpm(tlv([0x61], tlv([0x57], [0x42, 0x42, 0x42, 0x42])))],
  ])('rejects %s as corrupt without throwing', (_name, payload) => {
    expect(readCard(payload)).toMatchObject({
      ok: false,
      error: 'invalid_card',
      reason: 'corrupt',
    });
  });

  it('checks length and Luhn of a PAN found in a QR code like a printed one', () => {
    expect(readCard(cpm(tlv([0x61], tlv([0x5a], bcd('4242424242424241')))))).toMatchObject({
      ok: false,
      reason: 'luhn',
    });
    expect(readCard(cpm(tlv([0x61], tlv([0x5a], bcd('42424242')))))).toMatchObject({
      ok: false,
      reason: 'length',
    });
  });

  it('reads a 16-digit Mastercard 2-series number as a card, not as an Alipay code', () => {
    expect(readCard('2221000000000009')).toMatchObject({ ok: true, card: { brand: 'mastercard' } });
    expect(readCard('2512345678901234567')).toMatchObject({
      ok: false,
      reason: 'wallet_payment_code',
      detected: 'alipay',
    });
  });

  it('names a WeChat Pay code and a URL for what they are', () => {
    expect(readCard('134567890123456789')).toMatchObject({
      reason: 'wallet_payment_code',
      detected: 'wechat_pay',
    });
    expect(readCard('https://shop.example.com/item/42')).toMatchObject({
      reason: 'not_a_card',
      detected: 'url',
    });
    expect(readCard('hello there')).toMatchObject({ reason: 'not_a_card', detected: 'text' });
  });

  it('never puts the payload digits in its message', () => {
    for (const payload of ['6222021000000000001', '42424242', '134567890123456789']) {
      const r = readCard(payload);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).not.toMatch(/\d{6,}/);
    }
  });

  describe('for any input', () => {
    it('never throws and always answers ok or a reason', () => {
      fc.assert(
        fc.property(fc.string({ maxLength: 300 }), (s) => {
          const r = readCard(s);
          return r.ok ? luhnValid(r.card.pan) : typeof r.reason === 'string';
        }),
        { numRuns: 3000 },
      );
    });

    it('never throws on random bytes behind a valid CPM header', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
          const r = readCard(base64Encode(Uint8Array.from([...header, ...bytes])));
          return r.ok || ['corrupt', 'no_pan', 'luhn', 'length'].includes(r.reason);
        }),
        { numRuns: 3000 },
      );
    });

    it('reads back any Luhn-valid 13-19 digit number through both formats, masked', () => {
      const pan = fc
        .tuple(fc.constantFrom('4', '5', '62', '35', '37'), fc.stringMatching(/^[0-9]{11,16}$/))
        .map(([p, rest]) => {
          const body = (p + rest).slice(0, 18);
          for (let d = 0; d < 10; d++) if (luhnValid(body + d)) return body + d;
          return body;
        });
      fc.assert(
        fc.property(pan, (p) => {
          const plain = readCard(p.replace(/(\d{4})/g, '$1 '));
          const qr = readCard(cpm(tlv([0x61], tlv([0x5a], bcd(p)))));
          if (!plain.ok || !qr.ok) return false;
          const shown = plain.card.masked.replace(/\*/g, '');
          return (
            plain.card.pan === p &&
            qr.card.pan === p &&
            shown.length <= 10 &&
            plain.card.masked.length === p.length
          );
        }),
        { numRuns: 500 },
      );
    });
  });
});

describe('maskPan', () => {
  it('keeps the first 6 and last 4 digits of a 16-digit or longer number', () => {
    expect(maskPan('6222021000000000009')).toBe('622202*********0009');
    expect(maskPan('4242424242424242')).toBe('424242******4242');
  });
  it('hides at least 6 digits of a short number', () => {
    expect(maskPan('424242424242')).toBe('42******4242');
  });
});

describe('detectBrand', () => {
  it.each([
    ['6222021000000000009', 'unionpay'],
    ['4242424242424242', 'visa'],
    ['5555555555554444', 'mastercard'],
    ['378282246310005', 'amex'],
    ['3530111333300000', 'jcb'],
    ['6011111111111117', 'discover'],
    ['30569309025904', 'diners'],
    ['9999999999999995', 'unknown'],
  ])('names %s as %s', (pan, brand) => expect(detectBrand(pan)).toBe(brand));
});
