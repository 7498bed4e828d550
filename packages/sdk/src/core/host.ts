import type { BiometricMode, BiometricScheme, ScanType, TerminalIdentityRequest } from './protocol';

/**
 * The single seam between the SDK and the outside world. The plugin passes the wx host, a Taro
 * app the taro host, tests and tools the node host (`src/hosts`).
 */
export interface Host {
  /** Performs one HTTP exchange. Resolves for every HTTP status; rejects with a {@link HostError} only when no answer arrived. */
  request(req: HostRequest): Promise<HostResponse>;
  /** Opens the scanner. A user who backs out is `{ ok: false, reason: 'cancelled' }`, not a rejection. */
  scanCode(options: { scanType: ScanType[] }): Promise<ScanOutcome>;
  /** The plugin's private key-value storage. */
  storage: HostStorage;
  /**
   * Cryptographically strong random bytes, where the host has a source (Node, a host lending its
   * own `wx.getRandomValues`). Absent in a WeChat plugin: the SDK then makes its nonces, keys and
   * salts unique with a keyed generator (`UniqueValues`), since none of them needs to be secret.
   */
  randomBytes?(length: number): Promise<Uint8Array>;
  /** Facts about the device (model, screen, versions) mixed into that generator's seed. */
  entropy?(): string;
  /** Present where the host lends a biometric authenticator (SOTER through the host bridge, or a sandbox key). */
  biometric?: BiometricProvider;
  /** Milliseconds since the epoch; defaults to `Date.now`. */
  now?(): number;
  /** A short device description sent at registration (no personal data). */
  deviceLabel?: string;
  /**
   * Who the shopper is in the host app (PROTOCOL.md §2.1): its AppID and fresh login codes, where
   * the host lends its `wx.login`. Needed for SOTER in production; undefined when not known.
   */
  identity?(): Promise<TerminalIdentityRequest | undefined>;
}

export interface HostRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  /** The exact bytes to send, as a UTF-8 string (the signature covers these bytes). */
  body?: string;
  timeoutMs: number;
}

export interface HostResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The raw body bytes: the response signature covers exactly these. */
  body: Uint8Array;
}

/**
 * Why a request produced no answer: the network, the time limit, or `domain`: the runtime refused
 * the URL itself (a WeChat plugin may reach only the domains its owner registered).
 */
export class HostError extends Error {
  readonly kind: 'network' | 'timeout' | 'domain';
  constructor(kind: 'network' | 'timeout' | 'domain', message: string) {
    super(message);
    this.name = 'HostError';
    this.kind = kind;
  }
}

export type ScanOutcome =
  | { ok: true; result: string; scanType: ScanType }
  | { ok: false; reason: 'cancelled' | 'denied' | 'failed'; message: string };

export interface HostStorage {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface BiometricAssertion {
  mode: BiometricMode;
  /** The exact text that was signed; it contains the platform's challenge. */
  resultJSON: string;
  /** Hex signature over the UTF-8 bytes of `resultJSON`. */
  signature: string;
  /** SOTER only: its `resultJSONSignature` exactly as it returned it (base64). */
  resultJSONSignature?: string;
}

/**
 * A biometric authenticator. `soter` wraps the host's `wx.startSoterAuthentication` (plugins
 * cannot call it themselves); `sandbox-p256` is a software key for tests and the demo.
 */
export interface BiometricProvider {
  scheme: BiometricScheme;
  /** SPKI DER, hex: only for `sandbox-p256` (SOTER keys live with the messaging app). */
  publicKey?: string;
  /** Resolves to the modes this device has enrolled (empty when none). */
  available(): Promise<BiometricMode[]>;
  /** Asks the user to authenticate and signs the challenge. Rejects with a CardPayError (`biometric_cancelled`, `biometric_failed`). */
  authenticate(challenge: string, mode: BiometricMode): Promise<BiometricAssertion>;
}
