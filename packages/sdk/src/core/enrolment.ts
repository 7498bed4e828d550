import type { PlatformClient, TerminalIdentity } from './client';
import { derivePinKey, hexBytes, MIN_PBKDF2_ITERATIONS, sha256Hex } from './crypto';
import { toHex } from './encoding';
import { CardPayError } from './errors';
import type { Host } from './host';
import { SUITES, type BiometricScheme, type Suite } from './protocol';

/** What the terminal keeps in its private storage (PROTOCOL.md §2); never the password or its key. */
export interface TerminalCredentials extends TerminalIdentity {
  salt: string;
  iterations: number;
  biometricScheme?: BiometricScheme;
  createdAt?: string;
}

export type PasswordProblem = 'format' | 'weak' | 'mismatch';

// Common choices that no simple rule below catches (date-like and keypad-shape favourites).
const COMMON = new Set([
  '520131',
  '520520',
  '521521',
  '147258',
  '258369',
  '369258',
  '159357',
  '147852',
  '741852',
  '123321',
  '654123',
  '123654',
  '110110',
]);

/**
 * Why a 6-digit payment password is refused, or undefined when it is acceptable. Refuses repeated
 * digits (000000), runs (123456, 987654, 890123), short repeating patterns (121212, 123123),
 * doubled digits (112233) and a short list of popular choices.
 */
export function passwordWeakness(password: string): 'format' | 'weak' | undefined {
  if (!/^[0-9]{6}$/.test(password)) return 'format';
  const d = Array.from(password, (c) => c.charCodeAt(0) - 48);
  const steps = d.slice(1).map((v, i) => (v - d[i] + 10) % 10);
  if (steps.every((s) => s === steps[0]) && (steps[0] === 0 || steps[0] === 1 || steps[0] === 9))
    return 'weak';
  if (password.slice(0, 2).repeat(3) === password || password.slice(0, 3).repeat(2) === password)
    return 'weak';
  if (d[0] === d[1] && d[2] === d[3] && d[4] === d[5]) return 'weak';
  if (COMMON.has(password)) return 'weak';
  return undefined;
}

/** Throws the matching CardPayError when a new password and its repetition cannot be used. */
export function checkNewPassword(password: string, repeat: string): void {
  const weakness = passwordWeakness(password);
  if (weakness === 'format')
    throw new CardPayError('password_format', 'the payment password is exactly 6 digits');
  if (weakness === 'weak') {
    throw new CardPayError('password_weak', 'the payment password is too easy to guess');
  }
  if (password !== repeat)
    throw new CardPayError('password_mismatch', 'the two entries of the new password differ');
}

/** The storage key of a terminal's credentials: one terminal per platform URL. */
export function credentialsKey(baseUrl: string): string {
  return `cardpay.terminal.${sha256Hex(baseUrl).slice(0, 16)}`;
}

export async function loadCredentials(
  host: Host,
  baseUrl: string,
): Promise<TerminalCredentials | undefined> {
  const raw = await host.storage.get(credentialsKey(baseUrl));
  if (!raw) return undefined;
  try {
    const c = JSON.parse(raw) as TerminalCredentials;
    const valid =
      typeof c.terminalId === 'string' &&
      hexBytes(c.terminalSecret, 32) !== undefined &&
      hexBytes(c.salt, 16) !== undefined &&
      Number.isInteger(c.iterations) &&
      c.iterations >= MIN_PBKDF2_ITERATIONS &&
      SUITES.includes(c.suite || 'cardpay-v1');
    return valid ? c : undefined;
  } catch {
    return undefined;
  }
}

export async function clearCredentials(host: Host, baseUrl: string): Promise<void> {
  await host.storage.remove(credentialsKey(baseUrl));
}

export interface EnrolOptions {
  host: Host;
  client: PlatformClient;
  password: string;
  repeat: string;
  /** PBKDF2 iterations; at least 10,000 (the default). */
  iterations?: number;
  /** The suite to register with (PROTOCOL.md §3.1); `cardpay-v1` when absent. */
  suite?: Suite;
}

/**
 * First-use enrolment (PROTOCOL.md §2): checks the new password, derives its key from a fresh
 * random salt, registers the terminal (with the biometric key, where the host lends one), and
 * stores the credentials. The password and its key are dropped as soon as they are sent.
 */
export async function enrolTerminal(options: EnrolOptions): Promise<TerminalCredentials> {
  const { host, client, password, repeat, suite } = options;
  checkNewPassword(password, repeat);
  const iterations = Math.max(MIN_PBKDF2_ITERATIONS, options.iterations ?? MIN_PBKDF2_ITERATIONS);
  const salt = await client.unique.bytes(16, 'salt');
  const key = derivePinKey(password, salt, iterations, suite);
  const biometric = host.biometric;
  // SOTER is checked by WeChat for the shopper in the host app: tell who that is (§2.1).
  const identity =
    biometric && biometric.scheme === 'soter' && host.identity ? await host.identity() : undefined;
  const registered = await client.register({
    ...(identity ? { identity } : {}),
    ...(host.deviceLabel ? { deviceLabel: host.deviceLabel.slice(0, 64) } : {}),
    // Absent (dropped from the JSON) when not chosen: the platform's default, cardpay-v1.
    suite,
    password: { salt: toHex(salt), iterations, key: toHex(key) },
    ...(biometric
      ? {
          biometric: biometric.publicKey
            ? { scheme: biometric.scheme, publicKey: biometric.publicKey }
            : { scheme: biometric.scheme },
        }
      : {}),
  });
  key.fill(0);
  const credentials: TerminalCredentials = {
    terminalId: registered.terminalId,
    terminalSecret: registered.terminalSecret,
    suite,
    salt: toHex(salt),
    iterations,
    ...(biometric ? { biometricScheme: biometric.scheme } : {}),
    createdAt: registered.createdAt,
  };
  await storeCredentials(host, client.baseUrl, credentials);
  client.identity = credentials;
  return credentials;
}

/** Keeps a terminal's credentials in the host's private storage. */
export async function storeCredentials(
  host: Host,
  baseUrl: string,
  credentials: TerminalCredentials,
): Promise<void> {
  try {
    await host.storage.set(credentialsKey(baseUrl), JSON.stringify(credentials));
  } catch {
    throw new CardPayError(
      'storage_error',
      'the terminal was registered but its credentials could not be stored',
    );
  }
}
