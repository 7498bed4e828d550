import * as crypto from 'node:crypto';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
} from 'node:crypto';

/**
 * Encryption at rest: AES-256-GCM under the master key, a fresh 12-byte IV per value, the
 * record's id as associated data so a ciphertext cannot be moved to another row.
 * Stored as `v1.<iv>.<tag>.<ciphertext>` in hex.
 */
export class Sealer {
  private readonly key: Buffer;
  private readonly cardKey: Buffer;
  private readonly fingerprintKey: Buffer;
  private readonly openpidKey: Buffer;
  private readonly dashboardKey: Buffer;

  constructor(masterKeyHex: string) {
    if (!/^[0-9a-fA-F]{64}$/.test(masterKeyHex))
      throw new Error('the master key must be 64 hex characters');
    this.key = Buffer.from(masterKeyHex, 'hex');
    // A key of its own for card hashes, so the sealing key is never used for two purposes.
    this.cardKey = createHmac('sha256', this.key).update('cardpay card hash v1').digest();
    this.fingerprintKey = Buffer.from(
      hkdfSync('sha256', this.key, Buffer.alloc(0), 'cardpay idempotency fingerprint v1', 32),
    );
    this.openpidKey = Buffer.from(
      hkdfSync('sha256', this.key, Buffer.alloc(0), 'cardpay openpid hash v1', 32),
    );
    this.dashboardKey = Buffer.from(
      hkdfSync('sha256', this.key, Buffer.alloc(0), 'cardpay dashboard session v1', 32),
    );
  }

  /**
   * The dashboard's MAC (its session cookies, their CSRF tokens): every instance with the master
   * key checks what another made, and nothing else can make one.
   */
  dashboardMac(data: string): string {
    return createHmac('sha256', this.dashboardKey).update(data, 'utf8').digest('hex');
  }

  /**
   * A keyed hash of a shopper's openpid (PROTOCOL.md §2.1), with the host app it belongs to: what
   * finds the terminals of one shopper in one app, never the openpid itself.
   */
  openpidHash(hostAppId: string, openpid: string): string {
    return createHmac('sha256', this.openpidKey)
      .update(`${hostAppId}\n${openpid}`, 'utf8')
      .digest('hex');
  }

  /**
   * What an idempotency record keeps to recognise "the same request" (PROTOCOL.md §4): a keyed
   * hash of `METHOD path hex(SHA-256(body))`. A plain hash of a body that carried a card number
   * or a password proof would let a reader of a database copy test guesses of them offline; this
   * one cannot be computed without the master key.
   */
  fingerprint(method: string, path: string, bodyHash: string): string {
    return this.rekeyFingerprint(`${method} ${path} ${bodyHash}`);
  }

  /**
   * The keyed form of a fingerprint in the form the records kept before it was keyed
   * (`METHOD path hex(SHA-256(body))`): the upgrade turns every such record into this.
   */
  rekeyFingerprint(legacy: string): string {
    return createHmac('sha256', this.fingerprintKey).update(legacy, 'utf8').digest('hex');
  }

  /**
   * A keyed hash of a card number: what card bindings and velocity limits are kept by. Without the
   * master key it cannot be tested against the (small) space of card numbers.
   */
  cardHash(pan: string): string {
    return createHmac('sha256', this.cardKey).update(pan, 'utf8').digest('hex');
  }

  seal(plain: Buffer | string, context: string): string {
    const iv = randomPooled(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([
      cipher.update(typeof plain === 'string' ? Buffer.from(plain, 'utf8') : plain),
      cipher.final(),
    ]);
    return [
      'v1',
      iv.toString('hex'),
      cipher.getAuthTag().toString('hex'),
      body.toString('hex'),
    ].join('.');
  }

  open(sealed: string, context: string): Buffer {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined)
      throw new Error('not a sealed value');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'hex'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'hex'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'hex')), decipher.final()]);
  }
}

/** `crypto.hash` (Node 20.12 and later): half the cost of a Hash object for a small input. */
const oneShot = (crypto as { hash?: (alg: string, data: Buffer | string, enc: 'hex') => string })
  .hash;
/** hex(SHA-256), strings as UTF-8. */
export function sha256(data: Buffer | string): string {
  return oneShot ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

/** Constant-time equality of two hex strings (false for different lengths, without early exit on content). */
export function hexEqual(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'hex');
  const b = Buffer.from(given, 'hex');
  if (a.length !== b.length || a.length * 2 !== expected.length || b.length * 2 !== given.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

// Random bytes drawn 4 KiB at a time from the system's generator and each handed out once: a
// request needs a few ids, and one call per id showed in the profile (3.5 % of the server's CPU).
const pool = Buffer.alloc(4096);
let poolAt = pool.length;
function randomPooled(n: number): Buffer {
  if (n > pool.length) return randomBytes(n);
  if (poolAt + n > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += n;
  return pool.subarray(poolAt - n, poolAt);
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** An opaque id: the type prefix and 20 characters drawn uniformly from [A-Za-z0-9] (119 bits). */
export function newId(prefix: string): string {
  let id = `${prefix}_`;
  while (id.length < prefix.length + 21) {
    for (const b of randomPooled(24)) {
      // 248 = 4 × 62: bytes above it are dropped so that every character is equally likely.
      if (b < 248 && id.length < prefix.length + 21) id += ALPHABET[b % 62];
    }
  }
  return id;
}

export function randomHex(bytes: number): string {
  return randomPooled(bytes).toString('hex');
}
