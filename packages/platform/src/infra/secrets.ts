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

/** How secrets are sealed at rest: AES-256-GCM (default) or SM4-CTR with HMAC-SM3 (国密). */
export type SealMode = 'aes-256-gcm' | 'sm4';
export const SEAL_MODES: readonly SealMode[] = ['aes-256-gcm', 'sm4'];

/**
 * Encryption at rest under the master key, the record's id as associated data so a ciphertext
 * cannot be moved to another row. By default AES-256-GCM with a fresh 12-byte IV, stored as
 * `v1.<iv>.<tag>.<ciphertext>` in hex; with `sm4`, SM4-CTR with a fresh 16-byte IV and an
 * HMAC-SM3 tag over the context, IV and ciphertext (encrypt-then-MAC), stored as
 * `sm4.<iv>.<tag>.<ciphertext>`.
 */
export class Sealer {
  private readonly key: Buffer;
  private readonly sm4Key?: Buffer;
  private readonly sm4MacKey?: Buffer;
  private readonly cardKey: Buffer;
  private readonly fingerprintKey: Buffer;
  private readonly openpidKey: Buffer;
  private readonly dashboardKey: Buffer;

  constructor(
    masterKeyHex: string,
    readonly mode: SealMode = 'aes-256-gcm',
  ) {
    if (!/^[0-9a-fA-F]{64}$/.test(masterKeyHex))
      throw new Error('the master key must be 64 hex characters');
    this.key = Buffer.from(masterKeyHex, 'hex');
    if (mode === 'sm4') {
      // Encrypt-then-MAC: an SM4 key and an HMAC-SM3 key, each derived for that one purpose.
      this.sm4Key = Buffer.from(
        hkdfSync('sha256', this.key, Buffer.alloc(0), 'cardpay seal sm4 v1', 16),
      );
      this.sm4MacKey = Buffer.from(
        hkdfSync('sha256', this.key, Buffer.alloc(0), 'cardpay seal hmac-sm3 v1', 32),
      );
    }
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
    if (this.mode === 'sm4')
      return this.sealSm4(typeof plain === 'string' ? Buffer.from(plain, 'utf8') : plain, context);
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
    if (this.mode === 'sm4') return this.openSm4(sealed, context);
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined)
      throw new Error('not a sealed value');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'hex'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'hex'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'hex')), decipher.final()]);
  }

  /** The MAC of an SM4-sealed value: over the version, the context, the IV and the ciphertext. */
  private sm4Tag(context: string, iv: Buffer, body: Buffer): Buffer {
    return createHmac('sm3', this.sm4MacKey!)
      .update(`sm4v1\n${context}\n`, 'utf8')
      .update(iv)
      .update(body)
      .digest();
  }

  private sealSm4(plain: Buffer, context: string): string {
    const iv = randomPooled(16);
    const cipher = createCipheriv('sm4-ctr', this.sm4Key!, iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return [
      'sm4',
      iv.toString('hex'),
      this.sm4Tag(context, iv, body).toString('hex'),
      body.toString('hex'),
    ].join('.');
  }

  private openSm4(sealed: string, context: string): Buffer {
    const [version, ivHex, tagHex, bodyHex] = sealed.split('.');
    if (version !== 'sm4' || !ivHex || !tagHex || bodyHex === undefined)
      throw new Error('not a value sealed with SM4');
    const iv = Buffer.from(ivHex, 'hex');
    const body = Buffer.from(bodyHex, 'hex');
    const tag = Buffer.from(tagHex, 'hex');
    const expected = this.sm4Tag(context, iv, body);
    if (tag.length !== expected.length || !timingSafeEqual(tag, expected))
      throw new Error('a sealed value failed its check');
    const decipher = createDecipheriv('sm4-ctr', this.sm4Key!, iv);
    return Buffer.concat([decipher.update(body), decipher.final()]);
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

/** [A-Za-z0-9] in byte order: a number written with them sorts as the number does. */
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * An opaque id: the type prefix, the time it was made in 8 characters that sort as the time does
 * (milliseconds in base 62, enough for 6,900 years), then 13 characters drawn uniformly from
 * [A-Za-z0-9] (77 bits). Ids made together sort together, so the rows they key (sessions,
 * payments, events, their unique order and charge ids) go into the last pages of each index
 * rather than into random ones: a batch of writes changes fewer pages, and each commit copies
 * fewer into SQLite's journal or WAL (or PostgreSQL's). Measured on SQLite in memory, a
 * checkout's statements took 3–14 % less time. Nothing relies on the order; the time
 * an id tells is no secret (each record's creation time is in its answers).
 */
export function newId(prefix: string, at = Date.now()): string {
  let id = '';
  for (let t = Math.max(0, Math.floor(at)), i = 0; i < 8; i++, t = Math.floor(t / 62))
    id = ALPHABET[t % 62] + id;
  id = `${prefix}_${id}`;
  const length = prefix.length + 22;
  while (id.length < length) {
    for (const b of randomPooled(16)) {
      // 248 = 4 × 62: bytes above it are dropped so that every character is equally likely.
      if (b < 248 && id.length < length) id += ALPHABET[b % 62];
    }
  }
  return id;
}

export function randomHex(bytes: number): string {
  return randomPooled(bytes).toString('hex');
}
