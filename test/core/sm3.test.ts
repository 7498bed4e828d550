import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { hmacSm3, pbkdf2Sm3, sm3 } from '../../packages/sdk/src/core/sm3';

// SM3 for the cardpay-sm-v1 suite (PROTOCOL.md §3.1): against node:crypto's (OpenSSL's) SM3 at
// every length from 0 to 200 bytes, across block boundaries, and against the standard's vectors.

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7) & 0xff);

describe('SM3', () => {
  it('gives the test vectors of GB/T 32905-2016 (its appendix A)', () => {
    expect(hex(sm3(Buffer.from('abc')))).toBe(
      '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0',
    );
    expect(hex(sm3(Buffer.from('abcd'.repeat(16))))).toBe(
      'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732',
    );
  });

  it('hashes like node:crypto at every length from 0 to 200 bytes', () => {
    for (let n = 0; n <= 200; n++)
      expect([n, hex(sm3(bytes(n)))]).toEqual([
        n,
        createHash('sm3').update(bytes(n)).digest('hex'),
      ]);
  });

  it('computes HMAC-SM3 like node:crypto, keys short, of a block and longer than one', () => {
    for (const keyLength of [0, 16, 32, 64, 65, 100])
      for (const n of [0, 1, 55, 56, 64, 200])
        expect(hex(hmacSm3(bytes(keyLength), bytes(n)))).toBe(
          createHmac('sm3', bytes(keyLength)).update(bytes(n)).digest('hex'),
        );
  });

  it('derives PBKDF2-HMAC-SM3 like node:crypto, at 10,000 iterations and past one block of output', () => {
    const salt = Buffer.from('0f'.repeat(16), 'hex');
    expect(hex(pbkdf2Sm3(Buffer.from('204816'), salt, 10000, 32))).toBe(
      pbkdf2Sync('204816', salt, 10000, 32, 'sm3').toString('hex'),
    );
    expect(hex(pbkdf2Sm3(Buffer.from('204816'), salt, 3, 48))).toBe(
      pbkdf2Sync('204816', salt, 3, 48, 'sm3').toString('hex'),
    );
  });
});
