import { constantTimeEqual, hashHex, hexBytes, signRequest, signResponse } from './crypto';
import { toHex, utf8Decode } from './encoding';
import { CardPayError, type CardPayErrorCode } from './errors';
import { delay } from './timers';
import type { Host, HostResponse } from './host';
import {
  AuthenticateResponseSchema,
  ConfirmResponseSchema,
  ErrorBodySchema,
  OrderResponseSchema,
  RegisterTerminalResponseSchema,
  ResetPasswordResponseSchema,
  TerminalIdentityResponseSchema,
  type TerminalIdentityRequest,
  type ResetPasswordRequest,
  type ResetPasswordResponse,
  SessionCreatedSchema,
  SessionViewSchema,
  type AuthenticateRequest,
  type AuthenticateResponse,
  type ConfirmRequest,
  type ConfirmResponse,
  type CreateSessionRequest,
  type ErrorBody,
  type OrderRequest,
  type OrderResponse,
  type RegisterTerminalRequest,
  type Suite,
  type RegisterTerminalResponse,
  type SessionCreated,
  type SessionView,
} from './protocol';
import { validate, type Schema } from './schema';
import { UniqueValues } from './unique';

/** What a terminal needs to sign requests: the platform's answer to registration. */
export interface TerminalIdentity {
  terminalId: string;
  terminalSecret: string;
  /** The suite it registered with (PROTOCOL.md §3.1); absent means `cardpay-v1`. */
  suite?: Suite;
}

export interface PlatformClientOptions {
  /** The trading platform's base URL, e.g. `https://pay.example.com` (no trailing slash needed). */
  baseUrl: string;
  host: Host;
  /** Per-transmission time limit. Default 10 s. */
  timeoutMs?: number;
  /** Transmissions per logical action, the first included. Default 3. */
  maxAttempts?: number;
  /** First backoff delay; it doubles each retry, with jitter. Default 300 ms. */
  backoffMs?: number;
  /**
   * Longest wait honoured from a `Retry-After` header. Default 5 s. An answer that asks for a
   * longer pause is not retried: its error reaches the caller at once.
   */
  maxRetryAfterMs?: number;
  /** How to wait; tests pass a fake. Default `setTimeout`. */
  sleep?: (ms: number) => Promise<void>;
}

interface Call {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  idempotencyKey?: string;
  signed: boolean;
  schema: Schema;
}

/**
 * The terminal's side of PROTOCOL.md §2–§5: signs every request, verifies every response's
 * signature, keeps an action's `Idempotency-Key` across its retries while drawing a fresh nonce
 * per transmission, and retries only what is safe to retry.
 *
 * @example
 * const client = new PlatformClient({ baseUrl, host })
 * client.identity = await loadIdentity()
 * const session = await client.createSession({ merchantId: 'mch_sandbox' }, await client.newIdempotencyKey())
 */
export class PlatformClient {
  readonly baseUrl: string;
  /** The signing identity; set after registration or when loaded from storage. */
  identity?: TerminalIdentity;
  /** Where nonces, idempotency keys and the enrolment salt come from: never repeated. */
  readonly unique: UniqueValues;
  private readonly host_: Host;
  private readonly timeoutMs_: number;
  private readonly maxAttempts_: number;
  private readonly backoffMs_: number;
  private readonly maxRetryAfterMs_: number;
  private readonly sleep_: (ms: number) => Promise<void>;
  /** Server clock minus ours, learnt from a `timestamp_skew` answer. */
  private skewMs_ = 0;

  constructor(options: PlatformClientOptions) {
    this.baseUrl = normaliseBaseUrl(options.baseUrl);
    this.host_ = options.host;
    this.timeoutMs_ = options.timeoutMs ?? 10000;
    this.maxAttempts_ = Math.max(1, options.maxAttempts ?? 3);
    this.backoffMs_ = options.backoffMs ?? 300;
    this.maxRetryAfterMs_ = options.maxRetryAfterMs ?? 5000;
    this.sleep_ = options.sleep ?? delay;
    this.unique = new UniqueValues(options.host);
  }

  /** A new key for one logical action (32 hex characters). */
  async newIdempotencyKey(): Promise<string> {
    return toHex(await this.unique.bytes(16, 'idempotency'));
  }

  /** `POST /v1/terminals` (unsigned). */
  async register(body: RegisterTerminalRequest): Promise<RegisterTerminalResponse> {
    return this.call_({
      method: 'POST',
      path: '/v1/terminals',
      body,
      signed: false,
      schema: RegisterTerminalResponseSchema,
    });
  }

  /**
   * `POST /v1/terminals/{id}/password` (PROTOCOL.md §5.7): a new password key for this terminal,
   * proven by a card bound to it and that card's CVV.
   */
  async resetPassword(
    body: ResetPasswordRequest,
    idempotencyKey: string,
  ): Promise<ResetPasswordResponse> {
    const id = this.identity?.terminalId;
    if (!id) throw new CardPayError('not_enrolled', 'resetPassword needs an enrolled terminal');
    return this.post_(
      `/v1/terminals/${encodeURIComponent(id)}/password`,
      body,
      idempotencyKey,
      ResetPasswordResponseSchema,
    );
  }

  /**
   * `POST /v1/terminals/{id}/identity` (PROTOCOL.md §2.1): who the shopper is in WeChat, for a
   * terminal registered without it.
   */
  async identify(
    body: TerminalIdentityRequest,
    idempotencyKey: string,
  ): Promise<{ terminalId: string; hostAppId: string; linked?: boolean }> {
    const id = this.identity?.terminalId;
    if (!id) throw new CardPayError('not_enrolled', 'identify needs an enrolled terminal');
    return this.post_(
      `/v1/terminals/${encodeURIComponent(id)}/identity`,
      body,
      idempotencyKey,
      TerminalIdentityResponseSchema,
    );
  }

  /** `POST /v1/sessions`: the card-number input port. */
  async createSession(body: CreateSessionRequest, idempotencyKey: string): Promise<SessionCreated> {
    return this.post_('/v1/sessions', body, idempotencyKey, SessionCreatedSchema);
  }

  /** `POST /v1/sessions/{id}/order`. */
  async submitOrder(
    sessionId: string,
    body: OrderRequest,
    idempotencyKey: string,
  ): Promise<OrderResponse> {
    return this.post_(sessionPath(sessionId, '/order'), body, idempotencyKey, OrderResponseSchema);
  }

  /** `POST /v1/sessions/{id}/confirm`. */
  async confirm(
    sessionId: string,
    body: ConfirmRequest,
    idempotencyKey: string,
  ): Promise<ConfirmResponse> {
    return this.post_(
      sessionPath(sessionId, '/confirm'),
      body,
      idempotencyKey,
      ConfirmResponseSchema,
    );
  }

  /** `POST /v1/sessions/{id}/authenticate`. */
  async authenticate(
    sessionId: string,
    body: AuthenticateRequest,
    idempotencyKey: string,
  ): Promise<AuthenticateResponse> {
    return this.post_(
      sessionPath(sessionId, '/authenticate'),
      body,
      idempotencyKey,
      AuthenticateResponseSchema,
    );
  }

  /** `POST /v1/sessions/{id}/cancel` (an extension of the reference platform): ends a session before `processing`. */
  async cancel(sessionId: string, idempotencyKey: string): Promise<SessionView> {
    return this.post_(sessionPath(sessionId, '/cancel'), {}, idempotencyKey, SessionViewSchema);
  }

  /** A signed POST under an idempotency key, its answer checked against `schema`. */
  private post_<T>(
    path: string,
    body: unknown,
    idempotencyKey: string,
    schema: Schema,
  ): Promise<T> {
    return this.call_({ method: 'POST', path, body, idempotencyKey, signed: true, schema });
  }

  /** `GET /v1/sessions/{id}`: where a session stands, after a lost response or a restart. */
  async getSession(sessionId: string): Promise<SessionView> {
    return this.call_({
      method: 'GET',
      path: sessionPath(sessionId, ''),
      signed: true,
      schema: SessionViewSchema,
    });
  }

  private async call_<T>(call: Call): Promise<T> {
    if (call.signed && !this.identity) {
      throw new CardPayError(
        'not_enrolled',
        'this terminal is not registered: enrol before making signed requests',
      );
    }
    const bodyText = call.body === undefined ? undefined : JSON.stringify(call.body);
    const suite = this.identity?.suite;
    const bodyHash = hashHex(bodyText ?? '', suite);
    // Safe to send again: reads, keyed actions (the server answers a repeat from its record), and
    // registration (a lost answer at worst leaves an unused terminal behind).
    const repeatable = call.method === 'GET' || call.idempotencyKey !== undefined || !call.signed;
    let resynced = false;
    let attempt = 0;
    for (;;) {
      attempt++;
      const nonce = toHex(await this.unique.bytes(16, 'nonce'));
      const headers: Record<string, string> = { accept: 'application/json' };
      if (bodyText !== undefined) headers['content-type'] = 'application/json';
      if (call.idempotencyKey) headers['idempotency-key'] = call.idempotencyKey;
      if (call.signed && this.identity) {
        const timestamp = String(Math.floor((this.now_() + this.skewMs_) / 1000));
        headers['x-cardpay-terminal'] = this.identity.terminalId;
        headers['x-cardpay-timestamp'] = timestamp;
        headers['x-cardpay-nonce'] = nonce;
        headers['x-cardpay-signature'] = signRequest(
          this.secret_(),
          { method: call.method, path: call.path, timestamp, nonce, bodyHash },
          suite,
        );
      }

      let response: HostResponse;
      try {
        response = await this.host_.request({
          method: call.method,
          url: this.baseUrl + call.path,
          headers,
          body: bodyText,
          timeoutMs: this.timeoutMs_,
        });
      } catch (cause) {
        if ((cause as { kind?: string })?.kind === 'domain') {
          throw new CardPayError(
            'config_invalid',
            `${this.baseUrl} is not in the plugin's request domain list: the plugin's owner registers the trading platform's domain in the plugin's admin console; a merchant cannot point platformUrl elsewhere`,
          );
        }
        const timedOut = (cause as { kind?: string })?.kind === 'timeout';
        const error = new CardPayError(
          timedOut ? 'timeout' : 'network_error',
          `${call.method} ${call.path}: ${timedOut ? 'no answer in time' : 'the platform could not be reached'}`,
          { retryable: true },
        );
        if (repeatable && attempt < this.maxAttempts_) {
          await this.sleep_(this.backoff_(attempt));
          continue;
        }
        throw error;
      }

      const text = utf8Decode(response.body);
      if (call.signed && !this.verify_(response, nonce, text)) {
        // An unsigned 5xx comes from something in front of the platform (a proxy, a load balancer).
        // Its body proves nothing, but a retry is safe, so it counts as the network failing.
        if (repeatable && attempt < this.maxAttempts_) {
          await this.sleep_(this.retryDelay_(attempt, response) ?? this.backoff_(attempt));
          continue;
        }
        throw new CardPayError(
          'network_error',
          `${call.method} ${call.path}: HTTP ${response.status} from in front of the platform`,
          { retryable: true, status: response.status },
        );
      }
      const parsed = parseJson(text);
      if (response.status >= 200 && response.status < 300) {
        const checked = validate<T>(call.schema, parsed);
        if (!checked.ok) {
          throw new CardPayError(
            'response_invalid',
            `${call.method} ${call.path}: unexpected answer: ${checked.message}`,
          );
        }
        return checked.value;
      }

      const error = toError(response.status, parsed, call);
      if (error.code === 'timestamp_skew' && !resynced) {
        const serverSeconds = Number(response.headers['x-cardpay-timestamp']);
        if (Number.isFinite(serverSeconds)) {
          this.skewMs_ = serverSeconds * 1000 - this.now_();
          resynced = true;
          attempt--; // a re-sync is not a retry
          continue;
        }
      }
      // A platform that asks for a longer pause than this client may wait is not asked again
      // early: that would only spend its limits (and the shopper's time) for nothing.
      const delay = this.retryDelay_(attempt, response);
      if (
        error.retryable &&
        repeatable &&
        attempt < this.maxAttempts_ &&
        isTransient(error.code, response.status) &&
        delay !== undefined
      ) {
        await this.sleep_(delay);
        continue;
      }
      throw error;
    }
  }

  /**
   * Rejects any answer whose signature is missing or wrong: it cannot be told from a forgery or a
   * replay. Returns false for an unsigned 5xx, which the caller treats as a transport failure.
   */
  private verify_(response: HostResponse, nonce: string, text: string): boolean {
    const timestamp = response.headers['x-cardpay-timestamp'];
    const signature = response.headers['x-cardpay-signature'];
    if (!timestamp || !signature) {
      if (response.status >= 500) return false;
      // The one answer a server cannot sign: it does not know this terminal.
      if (response.status === 401 && codeOf(parseJson(text)) === 'terminal_unknown') {
        throw new CardPayError('terminal_unknown', 'the platform does not know this terminal', {
          status: 401,
        });
      }
      throw new CardPayError('response_unverified', 'the platform answer carries no signature');
    }
    const suite = this.identity?.suite;
    const expected = signResponse(
      this.secret_(),
      {
        status: response.status,
        timestamp,
        requestNonce: nonce,
        bodyHash: hashHex(response.body, suite),
      },
      suite,
    );
    if (!constantTimeEqual(expected, signature)) {
      throw new CardPayError('response_unverified', 'the platform answer has a wrong signature');
    }
    return true;
  }

  private secret_(): Uint8Array {
    const bytes = this.identity && hexBytes(this.identity.terminalSecret, 32);
    if (!bytes)
      throw new CardPayError('not_enrolled', 'the stored terminal secret is not 32 bytes of hex');
    return bytes;
  }

  private now_(): number {
    return this.host_.now ? this.host_.now() : Date.now();
  }

  private backoff_(attempt: number): number {
    const base = this.backoffMs_ * 2 ** (attempt - 1);
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  /** How long to wait before the next attempt; undefined when the platform asks for longer than allowed. */
  private retryDelay_(attempt: number, response: HostResponse): number | undefined {
    const retryAfter = Number(response.headers['retry-after']);
    if (Number.isFinite(retryAfter) && retryAfter >= 0)
      return retryAfter * 1000 <= this.maxRetryAfterMs_ ? retryAfter * 1000 : undefined;
    return this.backoff_(attempt);
  }
}

function isTransient(code: CardPayErrorCode, status: number): boolean {
  return status >= 500 || code === 'idempotency_in_progress' || code === 'rate_limited';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function codeOf(body: unknown): string | undefined {
  const error = (body as ErrorBody | undefined)?.error;
  return typeof error?.code === 'string' ? error.code : undefined;
}

function toError(status: number, body: unknown, call: Call): CardPayError {
  const checked = validate<ErrorBody>(ErrorBodySchema, body);
  if (!checked.ok) {
    return new CardPayError(
      status >= 500 ? 'internal_error' : 'response_invalid',
      `${call.method} ${call.path}: HTTP ${status} without a CardPay error body`,
      { status, retryable: status >= 500 },
    );
  }
  // Fields inside `error` beyond its three (a decline's `declineCode`) join the top-level ones.
  const { error, ...top } = checked.value;
  const { code, message, retryable, ...inner } = error;
  return new CardPayError(code as CardPayErrorCode, message, {
    status,
    retryable: retryable === true,
    details: { ...inner, ...top },
  });
}

function sessionPath(sessionId: string, suffix: string): string {
  if (!/^ses_[A-Za-z0-9_]{1,60}$/.test(sessionId)) {
    throw new CardPayError(
      'invalid_argument',
      `expected a session id like "ses_…", got ${JSON.stringify(sessionId)}`,
    );
  }
  return `/v1/sessions/${sessionId}${suffix}`;
}

/**
 * Checks a platform URL: `https://`, or `http://` on a loopback address during development.
 * Returns it without a trailing slash; throws `config_invalid` otherwise.
 */
export function normaliseBaseUrl(url: string): string {
  const m =
    typeof url === 'string' ? /^(https?):\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(url.trim()) : null;
  if (!m) {
    throw new CardPayError(
      'config_invalid',
      `platformUrl must be an absolute http(s) URL, got ${JSON.stringify(url)}`,
    );
  }
  const hostname = m[2].replace(/:\d+$/, '').toLowerCase();
  const loopback =
    hostname === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]';
  if (m[1].toLowerCase() !== 'https' && !loopback) {
    throw new CardPayError(
      'config_invalid',
      `platformUrl must use https:// (plain http only on loopback, in development), got ${url}`,
    );
  }
  return url.trim().replace(/\/+$/, '');
}
