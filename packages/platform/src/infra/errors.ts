import type { ProtocolErrorCode } from 'cardpay';

/** An error answer of PROTOCOL.md §1: status, code, a developer message, and optional top-level fields. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ProtocolErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly retryable = false,
    /** Fields that belong inside `error` (such as a decline's `declineCode`). */
    readonly errorFields: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): Record<string, unknown> {
    return {
      error: {
        code: this.code,
        message: this.message,
        retryable: this.retryable,
        ...this.errorFields,
      },
      ...this.extra,
    };
  }
}

export const invalid = (message: string) => new ApiError(400, 'invalid_request', message);
