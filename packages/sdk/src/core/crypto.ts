import { fromHex, toHex, utf8Encode } from './encoding';
import type { Suite } from './protocol';
import { digestWith, hmacWith, pbkdf2With, SHA256, type WordHash } from './sha256';
import { SM3 } from './sm3';

// The signing and proof rules of PROTOCOL.md §2, §3 and §5.4, in one place for client and server.
// Each takes the terminal's suite (§3.1): SHA-256 by default, SM3 under `cardpay-sm-v1`.

export type Bytes = Uint8Array;

function bytesOf(data: Bytes | string): Bytes {
  return typeof data === 'string' ? utf8Encode(data) : data;
}

/** The hash a suite is built on: SM3 for `cardpay-sm-v1`, SHA-256 otherwise. */
function hashOf(suite: Suite | undefined): WordHash {
  return suite === 'cardpay-sm-v1' ? SM3 : SHA256;
}

/** hex of the suite's hash of `data`: SHA-256, or SM3 under `cardpay-sm-v1`; strings as UTF-8. */
export function hashHex(data: Bytes | string, suite?: Suite): string {
  return toHex(digestWith(hashOf(suite), bytesOf(data)));
}

/** hex of the suite's HMAC: HMAC-SHA256, or HMAC-SM3 under `cardpay-sm-v1`; strings as UTF-8. */
export function macHex(key: Bytes, message: Bytes | string, suite?: Suite): string {
  return toHex(hmacWith(hashOf(suite), key, bytesOf(message)));
}

/** hex(SHA-256(data)); strings are hashed as UTF-8. */
export function sha256Hex(data: Bytes | string): string {
  return hashHex(data);
}

/** hex(HMAC-SHA256(key, message)); strings are hashed as UTF-8. */
export function hmacSha256Hex(key: Bytes, message: Bytes | string): string {
  return macHex(key, message);
}

/** The least iteration count PROTOCOL.md §2 allows, and the SDK's default. */
export const MIN_PBKDF2_ITERATIONS = 10000;

/**
 * The password key of PROTOCOL.md §2: PBKDF2-HMAC-SHA256(password, salt, iterations, 32 bytes)
 * (PBKDF2-HMAC-SM3 under `cardpay-sm-v1`). The password never leaves the device; only this key
 * (at registration) and proofs derived from it do.
 */
export function derivePinKey(
  password: string,
  salt: Bytes,
  iterations: number,
  suite?: Suite,
): Bytes {
  return pbkdf2With(hashOf(suite), utf8Encode(password), salt, iterations, 32);
}

/** hex(SHA-256('')), the body hash of a request without a body. */
export const EMPTY_BODY_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface CanonicalRequestParts {
  method: string;
  /** Path with its query string, exactly as sent. */
  path: string;
  timestamp: string;
  nonce: string;
  /** hex(SHA-256(raw body bytes)); see {@link EMPTY_BODY_HASH}. */
  bodyHash: string;
}

/** The five lines of PROTOCOL.md §3, joined by `\n`, no trailing newline. */
export function canonicalRequest(p: CanonicalRequestParts): string {
  return [p.method.toUpperCase(), p.path, p.timestamp, p.nonce, p.bodyHash].join('\n');
}

export interface CanonicalResponseParts {
  status: number;
  timestamp: string;
  /** The nonce of the request this answers: it binds the response to that one transmission. */
  requestNonce: string;
  bodyHash: string;
}

/** Status, response timestamp, the request's nonce, body hash; joined by `\n`. */
export function canonicalResponse(p: CanonicalResponseParts): string {
  return [String(p.status), p.timestamp, p.requestNonce, p.bodyHash].join('\n');
}

/** `X-CardPay-Signature` of a request. */
export function signRequest(secret: Bytes, parts: CanonicalRequestParts, suite?: Suite): string {
  return macHex(secret, canonicalRequest(parts), suite);
}

/** `X-CardPay-Signature` of a response. */
export function signResponse(secret: Bytes, parts: CanonicalResponseParts, suite?: Suite): string {
  return macHex(secret, canonicalResponse(parts), suite);
}

/**
 * Compares two strings in time that depends only on their lengths, so a signature or proof cannot
 * be guessed byte by byte from response times. Pass the expected value as `a`: the time depends
 * on its length only.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) {
    diff |= a.charCodeAt(i) ^ (i < b.length ? b.charCodeAt(i) : 0);
  }
  return diff === 0;
}

export interface ProofInput {
  sessionId: string;
  challenge: string;
  orderId: string;
  amount: number;
  currency: string;
}

/** The message a password proof signs: bound to this prompt and the amount the user confirmed. */
export function authMessage(p: ProofInput): string {
  return [
    'cardpay-auth-v1',
    p.sessionId,
    p.challenge,
    p.orderId,
    String(p.amount),
    p.currency,
  ].join('\n');
}

/** `proof` of a `password` factor: hex(HMAC-SHA256(pinKey, message)), or HMAC-SM3. */
export function passwordProof(pinKey: Bytes, input: ProofInput, suite?: Suite): string {
  return macHex(pinKey, authMessage(input), suite);
}

/** Parses a lower-case hex value of an exact byte length, or returns undefined. */
export function hexBytes(hex: string, length?: number): Bytes | undefined {
  if (!/^[0-9a-f]*$/.test(hex)) return undefined;
  const bytes = fromHex(hex);
  if (!bytes || (length !== undefined && bytes.length !== length)) return undefined;
  return bytes;
}
