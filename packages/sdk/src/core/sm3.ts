// SM3 (GB/T 32905-2016, GM/T 0004-2012), China's commercial cryptographic hash, with HMAC-SM3
// and PBKDF2-HMAC-SM3 for the `cardpay-sm-v1` suite (PROTOCOL.md §3.1). The same rules as the
// SHA-256 beside it: 32-bit integer arithmetic, no BigInt, nothing newer than ES2017, and the
// same padding, HMAC and PBKDF2 code (`WordHash`). Checked against node:crypto's SM3 and the
// standard's test vectors in the tests.
import { digestWith, hmacWith, pbkdf2With, type WordHash } from './sha256';

const IV = [
  0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e,
];

const rotl = (x: number, n: number) => (x << n) | (x >>> (32 - n));

/** T_j rotated left by j (mod 32), for each of the 64 rounds. */
const T = new Int32Array(64);
for (let j = 0; j < 64; j++) {
  const t = j < 16 ? 0x79cc4519 : 0x7a879d8a;
  T[j] = j % 32 === 0 ? t : rotl(t, j % 32);
}

const W = new Int32Array(68);

function compress(h: Int32Array, m: Int32Array, at: number): void {
  for (let j = 0; j < 16; j++) W[j] = m[at + j];
  for (let j = 16; j < 68; j++) {
    const x = W[j - 16] ^ W[j - 9] ^ rotl(W[j - 3], 15);
    W[j] = x ^ rotl(x, 15) ^ rotl(x, 23) ^ rotl(W[j - 13], 7) ^ W[j - 6];
  }
  let a = h[0];
  let b = h[1];
  let c = h[2];
  let d = h[3];
  let e = h[4];
  let f = h[5];
  let g = h[6];
  let k = h[7];
  for (let j = 0; j < 64; j++) {
    const a12 = rotl(a, 12);
    const ss1 = rotl((a12 + e + T[j]) | 0, 7);
    const ss2 = ss1 ^ a12;
    const ff = j < 16 ? a ^ b ^ c : (a & b) | (a & c) | (b & c);
    const gg = j < 16 ? e ^ f ^ g : (e & f) | (~e & g);
    const tt1 = (ff + d + ss2 + (W[j] ^ W[j + 4])) | 0;
    const tt2 = (gg + k + ss1 + W[j]) | 0;
    d = c;
    c = rotl(b, 9);
    b = a;
    a = tt1;
    k = g;
    g = rotl(f, 19);
    f = e;
    e = tt2 ^ rotl(tt2, 9) ^ rotl(tt2, 17);
  }
  h[0] ^= a;
  h[1] ^= b;
  h[2] ^= c;
  h[3] ^= d;
  h[4] ^= e;
  h[5] ^= f;
  h[6] ^= g;
  h[7] ^= k;
}

export const SM3: WordHash = { iv: IV, compress };

/** SM3 of `data`. */
export function sm3(data: Uint8Array): Uint8Array {
  return digestWith(SM3, data);
}

/** HMAC-SM3(key, message). */
export function hmacSm3(key: Uint8Array, message: Uint8Array): Uint8Array {
  return hmacWith(SM3, key, message);
}

/** PBKDF2-HMAC-SM3. */
export function pbkdf2Sm3(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  return pbkdf2With(SM3, password, salt, iterations, length);
}
