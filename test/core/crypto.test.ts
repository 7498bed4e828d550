import fc from 'fast-check';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import {
  authMessage,
  canonicalRequest,
  canonicalResponse,
  constantTimeEqual,
  derivePinKey,
  EMPTY_BODY_HASH,
  hashHex,
  hmacSha256Hex,
  macHex,
  passwordProof,
  sha256Hex,
  signRequest,
  signResponse,
} from '../../packages/sdk/src/core/crypto';
import { pbkdf2Sha256, sha256 } from '../../packages/sdk/src/core/sha256';
import {
  base64Decode,
  base64Encode,
  fromHex,
  toHex,
  utf8Decode,
  utf8Encode,
} from '../../packages/sdk/src/core/encoding';

const key = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');

describe('hashing and signing', () => {
  it('hashes like node:crypto, strings as UTF-8', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }),
        (s) => sha256Hex(s) === createHash('sha256').update(s, 'utf8').digest('hex'),
      ),
    );
    expect(sha256Hex('')).toBe(EMPTY_BODY_HASH);
  });

  it('computes HMAC-SHA256 like node:crypto', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 80 }),
        fc.string(),
        (k, m) =>
          hmacSha256Hex(k, m) ===
          createHmac('sha256', Buffer.from(k)).update(m, 'utf8').digest('hex'),
      ),
    );
  });

  it('hashes every length around the padding boundaries, and long input, like node:crypto', () => {
    for (let n = 0; n <= 200; n++) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      expect([n, toHex(sha256(data))]).toEqual([
        n,
        createHash('sha256').update(data).digest('hex'),
      ]);
    }
    const big = new Uint8Array(3 * 1024 * 1024 + 7).fill(0xa5);
    expect(toHex(sha256(big))).toBe(createHash('sha256').update(big).digest('hex'));
  });

  it('derives PBKDF2 like node:crypto for any password, salt, count and length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 80 }),
        (password, salt, iterations, length) =>
          toHex(pbkdf2Sha256(password, salt, iterations, length)) ===
          pbkdf2Sync(password, salt, iterations, length, 'sha256').toString('hex'),
      ),
      { numRuns: 60 },
    );
  });

  it('derives the password key like node:crypto PBKDF2 with 10,000 iterations', () => {
    const salt = Buffer.from('a1b2c3d4e5f60718293a4b5c6d7e8f90', 'hex');
    expect(toHex(derivePinKey('204816', salt, 10000))).toBe(
      pbkdf2Sync('204816', salt, 10000, 32, 'sha256').toString('hex'),
    );
  });

  it('builds the canonical request as five lines without a trailing newline', () => {
    const text = canonicalRequest({
      method: 'post',
      path: '/v1/sessions/ses_1/order',
      timestamp: '1795888800',
      nonce: '0f'.repeat(16),
      bodyHash: EMPTY_BODY_HASH,
    });
    expect(text).toBe(
      `POST\n/v1/sessions/ses_1/order\n1795888800\n${'0f'.repeat(16)}\n${EMPTY_BODY_HASH}`,
    );
  });

  it('signs a request to a fixed vector that node:crypto agrees with', () => {
    const parts = {
      method: 'GET',
      path: '/v1/sessions/ses_1?x=1',
      timestamp: '1795888800',
      nonce: 'ab'.repeat(16),
      bodyHash: EMPTY_BODY_HASH,
    };
    const expected = createHmac('sha256', key)
      .update(`GET\n/v1/sessions/ses_1?x=1\n1795888800\n${'ab'.repeat(16)}\n${EMPTY_BODY_HASH}`)
      .digest('hex');
    expect(signRequest(key, parts)).toBe(expected);
    expect(signRequest(key, parts)).toBe(
      '5daf5f670d9fdd550cc58a201432d73ff126b5b1a25e9e1b21cf8193f12ca58d',
    );
  });

  it('binds the response to the request nonce', () => {
    expect(
      canonicalResponse({
        status: 201,
        timestamp: '1795888801',
        requestNonce: 'cd'.repeat(16),
        bodyHash: 'ef'.repeat(32),
      }),
    ).toBe(`201\n1795888801\n${'cd'.repeat(16)}\n${'ef'.repeat(32)}`);
  });

  it('proves the password over the prompt and the confirmed amount', () => {
    const input = {
      sessionId: 'ses_1',
      challenge: '11'.repeat(32),
      orderId: 'ord_1',
      amount: 1999,
      currency: 'CNY',
    };
    expect(authMessage(input)).toBe(`cardpay-auth-v1\nses_1\n${'11'.repeat(32)}\nord_1\n1999\nCNY`);
    const pinKey = pbkdf2Sync('204816', Buffer.alloc(16, 7), 10000, 32, 'sha256');
    expect(passwordProof(pinKey, input)).toBe(
      createHmac('sha256', pinKey).update(authMessage(input)).digest('hex'),
    );
    expect(passwordProof(pinKey, { ...input, amount: 2000 })).not.toBe(
      passwordProof(pinKey, input),
    );
  });

  it('uses SM3 and HMAC-SM3 throughout for a cardpay-sm-v1 terminal, as node:crypto computes them', () => {
    const sm = 'cardpay-sm-v1' as const;
    expect(hashHex('', sm)).toBe(createHash('sm3').update('').digest('hex'));
    expect(hashHex('{"a":"é"}', sm)).toBe(createHash('sm3').update('{"a":"é"}').digest('hex'));
    expect(macHex(key, 'abc', sm)).toBe(createHmac('sm3', key).update('abc').digest('hex'));
    const salt = Buffer.alloc(16, 7);
    const pinKey = derivePinKey('204816', salt, 10000, sm);
    expect(Buffer.from(pinKey)).toEqual(pbkdf2Sync('204816', salt, 10000, 32, 'sm3'));
    const parts = {
      method: 'POST',
      path: '/v1/sessions',
      timestamp: '1795888800',
      nonce: 'ab'.repeat(16),
      bodyHash: hashHex('{}', sm),
    };
    expect(signRequest(key, parts, sm)).toBe(
      createHmac('sm3', key).update(canonicalRequest(parts)).digest('hex'),
    );
    const answer = { status: 200, timestamp: '1', requestNonce: 'cd'.repeat(16), bodyHash: '' };
    expect(signResponse(key, answer, sm)).toBe(
      createHmac('sm3', key).update(canonicalResponse(answer)).digest('hex'),
    );
    const input = { sessionId: 's', challenge: 'c', orderId: 'o', amount: 1, currency: 'CNY' };
    expect(passwordProof(pinKey, input, sm)).toBe(
      createHmac('sm3', pinKey).update(authMessage(input)).digest('hex'),
    );
    // The default suite is SHA-256, named or not.
    expect(signRequest(key, parts, 'cardpay-v1')).toBe(signRequest(key, parts));
    expect(signRequest(key, parts)).toBe(
      createHmac('sha256', key).update(canonicalRequest(parts)).digest('hex'),
    );
  });

  it('compares strings for equality whatever their lengths', () => {
    expect(constantTimeEqual('abcd', 'abcd')).toBe(true);
    expect(constantTimeEqual('abcd', 'abce')).toBe(false);
    expect(constantTimeEqual('abcd', 'abc')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(constantTimeEqual('', '')).toBe(true);
  });
});

describe('encodings', () => {
  it('encodes and decodes UTF-8 like Buffer', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), (s) => {
        const bytes = utf8Encode(s);
        return Buffer.from(bytes).equals(Buffer.from(s, 'utf8')) && utf8Decode(bytes) === s;
      }),
    );
  });

  it('decodes malformed UTF-8 to replacement characters instead of throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array(), (b) => utf8Decode(b) === Buffer.from(b).toString('utf8')),
    );
  });

  it('round-trips hex and base64, and refuses what is not', () => {
    fc.assert(
      fc.property(fc.uint8Array(), (b) => {
        const h = toHex(b);
        const s = base64Encode(b);
        return (
          h === Buffer.from(b).toString('hex') &&
          s === Buffer.from(b).toString('base64') &&
          toHex(fromHex(h)!) === h &&
          toHex(base64Decode(s)!) === h
        );
      }),
    );
    expect(fromHex('abc')).toBeUndefined();
    expect(fromHex('zz')).toBeUndefined();
    expect(base64Decode('a')).toBeUndefined();
    expect(base64Decode('ab$=')).toBeUndefined();
  });
});
