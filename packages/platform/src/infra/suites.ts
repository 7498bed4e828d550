import { createHash, createHmac } from 'node:crypto';

// The cryptographic suites of PROTOCOL.md §3.1: a terminal signs, hashes bodies and proves its
// password with SHA-256 (`cardpay-v1`, the default) or with China's SM3 (`cardpay-sm-v1`), as it
// chose at registration. Node's OpenSSL has both.

export const SM_SUITE = 'cardpay-sm-v1';

/** The digest a terminal's suite uses: `sm3` for `cardpay-sm-v1`, `sha256` otherwise. */
export function digestOf(terminal: { suite?: string | null } | undefined): 'sha256' | 'sm3' {
  return terminal?.suite === SM_SUITE ? 'sm3' : 'sha256';
}

/** hex(digest(data)). */
export function hashHex(digest: 'sha256' | 'sm3', data: Buffer | string): string {
  return createHash(digest).update(data).digest('hex');
}

/** hex(HMAC-digest(key, data)). */
export function hmacHex(digest: 'sha256' | 'sm3', key: Buffer, data: Buffer | string): string {
  return createHmac(digest, key).update(data).digest('hex');
}
