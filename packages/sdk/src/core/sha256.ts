// SHA-256 (FIPS 180-4), HMAC (RFC 2104) and PBKDF2-HMAC-SHA256 (RFC 8018) in plain 32-bit
// integer arithmetic. Written for the oldest JavaScript engines WeChat still runs (iOS 11,
// Android WebView 66 era): no BigInt (the message length is padded with two 32-bit halves), no
// DataView 64-bit setters, nothing newer than ES2017. Checked against node:crypto in the tests.

// The constants are derived as FIPS 180-4 defines them, which is smaller than spelling them out:
// the first 32 bits of the fractional parts of the cube roots of the first 64 primes (K) and of
// the square roots of the first 8 (the initial state). The nearest of them lies 0.0055 of its
// last bit from a rounding boundary, about a thousand times the error of Math.cbrt in doubles.
const fraction32 = (x: number) => ((x - Math.floor(x)) * 0x100000000) | 0;
const K = new Int32Array(64);
const INITIAL: number[] = [];
for (let n = 2, i = 0; i < 64; n++) {
  let prime = true;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) prime = false;
  if (!prime) continue;
  if (i < 8) INITIAL.push(fraction32(Math.sqrt(n)));
  K[i++] = fraction32(Math.cbrt(n));
}

const W = new Int32Array(64);

/**
 * One compression of a 16-word block `m` (from offset `at`) into the state `h`, in place. The
 * message schedule is computed inside the round loop, and Ch and Maj use their four-operation
 * forms: iOS runs this in an interpreter, where every operation counts (10 % fewer under
 * `node --jitless` than the textbook two loops).
 */
function compress(h: Int32Array, m: Int32Array, at: number): void {
  let a = h[0];
  let b = h[1];
  let c = h[2];
  let d = h[3];
  let e = h[4];
  let f = h[5];
  let g = h[6];
  let k = h[7];
  for (let i = 0; i < 64; i++) {
    let w: number;
    if (i < 16) w = W[i] = m[at + i];
    else {
      const x = W[i - 15];
      const y = W[i - 2];
      w = W[i] =
        (W[i - 16] +
          (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
          W[i - 7] +
          (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10))) |
        0;
    }
    const t1 =
      (k +
        (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        (g ^ (e & (f ^ g))) +
        K[i] +
        w) |
      0;
    k = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a =
      (t1 +
        (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) +
        ((b & c) | (d & (b | c)))) |
      0;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + b) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0;
  h[5] = (h[5] + f) | 0;
  h[6] = (h[6] + g) | 0;
  h[7] = (h[7] + k) | 0;
}

/** A 32-bit-word Merkle–Damgård hash with a 64-byte block and a 32-byte digest: SHA-256, SM3. */
export interface WordHash {
  /** The initial state, eight words. */
  iv: ArrayLike<number>;
  /** One compression of the 16-word block `m` (from offset `at`) into the state `h`, in place. */
  compress(h: Int32Array, m: Int32Array, at: number): void;
}

/**
 * Hashes `data` starting from state `h` (in place), as if `prefixBytes` had already been hashed
 * into it: HMAC starts from a state that has taken in the 64-byte padded key.
 */
function absorb(f: WordHash, h: Int32Array, data: Uint8Array, prefixBytes: number): void {
  const total = prefixBytes + data.length;
  // Message, 0x80, zeros, 64-bit big-endian bit length: a whole number of 64-byte blocks.
  const blocks = (data.length + 9 + 63) >> 6;
  const m = new Int32Array(blocks * 16);
  for (let i = 0; i < data.length; i++) m[i >> 2] |= data[i] << (24 - (i & 3) * 8);
  m[data.length >> 2] |= 0x80 << (24 - (data.length & 3) * 8);
  m[blocks * 16 - 2] = Math.floor(total / 0x20000000); // the bit length's high 32 bits
  m[blocks * 16 - 1] = (total << 3) | 0; // and its low 32 bits
  for (let at = 0; at < m.length; at += 16) f.compress(h, m, at);
}

function digestBytes(h: Int32Array): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = h[i >> 2] >>> (24 - (i & 3) * 8);
  return out;
}

/** The digest of `data` under `f`. */
export function digestWith(f: WordHash, data: Uint8Array): Uint8Array {
  const h = new Int32Array(f.iv);
  absorb(f, h, data, 0);
  return digestBytes(h);
}

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Uint8Array {
  return digestWith(SHA256, data);
}

/** The states after the inner and outer padded keys: what every HMAC under one key starts from. */
function hmacStates(f: WordHash, key: Uint8Array): { inner: Int32Array; outer: Int32Array } {
  const k = key.length > 64 ? digestWith(f, key) : key;
  const inner = new Int32Array(f.iv);
  const outer = new Int32Array(f.iv);
  const ipad = new Int32Array(16);
  const opad = new Int32Array(16);
  for (let i = 0; i < 64; i++) {
    const b = i < k.length ? k[i] : 0;
    ipad[i >> 2] |= (b ^ 0x36) << (24 - (i & 3) * 8);
    opad[i >> 2] |= (b ^ 0x5c) << (24 - (i & 3) * 8);
  }
  f.compress(inner, ipad, 0);
  f.compress(outer, opad, 0);
  return { inner, outer };
}

function hmacFrom(
  f: WordHash,
  states: { inner: Int32Array; outer: Int32Array },
  message: Uint8Array,
) {
  const h = new Int32Array(states.inner);
  absorb(f, h, message, 64);
  const o = new Int32Array(states.outer);
  absorb(f, o, digestBytes(h), 64);
  return digestBytes(o);
}

/** HMAC (RFC 2104) under `f`. */
export function hmacWith(f: WordHash, key: Uint8Array, message: Uint8Array): Uint8Array {
  return hmacFrom(f, hmacStates(f, key), message);
}

/** HMAC-SHA256(key, message). */
export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  return hmacWith(SHA256, key, message);
}

/**
 * PBKDF2 (RFC 8018) with HMAC under `f`. The inner loop hashes 32-byte blocks word by word from
 * the key's precomputed HMAC states: two compressions per iteration and no allocation.
 */
export function pbkdf2With(
  f: WordHash,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  const states = hmacStates(f, password);
  const out = new Uint8Array(length);
  // A 32-byte message after the 64-byte key block: one padded block of 16 words.
  const block = new Int32Array(16);
  block[8] = 0x80000000;
  block[15] = (64 + 32) * 8;
  const h = new Int32Array(8);
  for (let index = 1, written = 0; written < length; index++) {
    const first = new Uint8Array(salt.length + 4);
    first.set(salt);
    first[salt.length] = index >>> 24;
    first[salt.length + 1] = (index >>> 16) & 0xff;
    first[salt.length + 2] = (index >>> 8) & 0xff;
    first[salt.length + 3] = index & 0xff;
    const u1 = hmacFrom(f, states, first);
    const acc = new Int32Array(8);
    for (let i = 0; i < 32; i++) block[i >> 2] = 0;
    for (let i = 0; i < 32; i++) block[i >> 2] |= u1[i] << (24 - (i & 3) * 8);
    block[8] = 0x80000000;
    for (let i = 0; i < 8; i++) acc[i] = block[i];
    for (let n = 1; n < iterations; n++) {
      h.set(states.inner);
      f.compress(h, block, 0);
      for (let i = 0; i < 8; i++) block[i] = h[i];
      h.set(states.outer);
      f.compress(h, block, 0);
      for (let i = 0; i < 8; i++) {
        block[i] = h[i];
        acc[i] ^= h[i];
      }
    }
    const bytes = digestBytes(acc);
    const take = Math.min(32, length - written);
    out.set(bytes.subarray(0, take), written);
    written += take;
  }
  return out;
}

/** PBKDF2-HMAC-SHA256. */
export function pbkdf2Sha256(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  return pbkdf2With(SHA256, password, salt, iterations, length);
}

export const SHA256: WordHash = { iv: INITIAL, compress };
