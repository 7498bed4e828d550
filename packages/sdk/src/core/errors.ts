/**
 * Error codes. The first group is the wire protocol's (PROTOCOL.md); the second is the SDK's own,
 * for what happens on the device before or instead of a platform answer.
 */
export type ProtocolErrorCode =
  | 'invalid_request'
  | 'payload_too_large'
  | 'rate_limited'
  | 'unauthorized'
  | 'not_found'
  | 'terminal_unknown'
  | 'timestamp_skew'
  | 'nonce_reused'
  | 'signature_invalid'
  | 'idempotency_conflict'
  | 'idempotency_in_progress'
  | 'invalid_state'
  | 'session_expired'
  | 'session_not_found'
  | 'merchant_unknown'
  | 'order_unknown'
  | 'order_already_paid'
  | 'order_payment_in_progress'
  | 'order_not_paid'
  | 'refund_exceeds_charge'
  | 'invalid_card'
  | 'unsupported_card'
  | 'amount_mismatch'
  | 'confirm_token_invalid'
  | 'challenge_stale'
  | 'auth_failed'
  | 'auth_locked'
  | 'payment_declined'
  | 'payment_unavailable'
  | 'card_not_bound'
  | 'cvv_invalid'
  | 'identity_invalid'
  | 'identity_required'
  | 'wechat_unavailable'
  | 'internal_error';

export type SdkErrorCode =
  | 'scan_cancelled'
  | 'scan_denied'
  | 'scan_failed'
  | 'network_error'
  | 'timeout'
  | 'response_unverified'
  | 'response_invalid'
  | 'not_enrolled'
  | 'password_format'
  | 'password_weak'
  | 'password_mismatch'
  | 'biometric_unavailable'
  | 'biometric_cancelled'
  | 'biometric_failed'
  | 'cvv_format'
  | 'storage_error'
  | 'config_invalid'
  | 'webhook_signature_invalid'
  | 'webhook_timestamp_skew'
  | 'invalid_argument';

export type CardPayErrorCode = ProtocolErrorCode | SdkErrorCode;

export interface CardPayErrorOptions {
  retryable?: boolean;
  /** HTTP status, when the error came from the platform. */
  status?: number;
  /** Extra top-level fields of a platform error body (`state`, `authPrompt`, `declineCode`, …) or SDK details. */
  details?: Record<string, unknown>;
}

/**
 * The one error type of the SDK. `code` is stable and machine-readable; `message` is for
 * developers (English); the plugin maps `code` to words a user understands.
 *
 * @example
 * try { await client.getSession(id) } catch (e) {
 *   if (isCardPayError(e) && e.retryable) scheduleRetry()
 * }
 */
export class CardPayError extends Error {
  readonly code: CardPayErrorCode;
  readonly retryable: boolean;
  readonly status?: number;
  readonly details: Record<string, unknown>;

  constructor(code: CardPayErrorCode, message: string, options: CardPayErrorOptions = {}) {
    super(message);
    // Set explicitly: minifiers rename classes, and `instanceof` breaks across bundles.
    this.name = 'CardPayError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.status = options.status;
    this.details = options.details ?? {};
  }

  /** The `{ code, message }` pair the component's `fail` event carries. */
  toJSON(): { code: CardPayErrorCode; message: string; retryable: boolean } {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

/** True for any CardPayError, also one made by another copy of the SDK. */
export function isCardPayError(value: unknown): value is CardPayError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { name?: unknown }).name === 'CardPayError' &&
    typeof (value as { code?: unknown }).code === 'string'
  );
}
