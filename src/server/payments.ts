import type { Charge, ChargeRequest } from '../core/protocol';

/** What the trading platform learns from one charge attempt. */
export type ChargeOutcome =
  | { status: 'succeeded' }
  | { status: 'declined'; declineCode: string }
  /** No answer in time, or none usable: the reconciler will ask again. */
  | { status: 'unknown'; reason: string };

export type LookupOutcome = ChargeOutcome | { status: 'not_found' };

/**
 * The connection to the payment platform (PROTOCOL.md §8). A charge carries the charge id as its
 * `Idempotency-Key`, so retrying after a 5xx or a dropped connection can never charge twice.
 */
export class PaymentConnector {
  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly attempts = 3,
  ) {}

  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    const deadline = Date.now() + this.timeoutMs;
    let last = 'no attempt';
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const res = await fetch(`${this.baseUrl}/v1/charges`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': request.chargeId },
          body: JSON.stringify(request),
          signal: AbortSignal.timeout(left),
        });
        const text = await res.text();
        if (res.status >= 500) {
          last = `HTTP ${res.status}`;
          await pause(Math.min(50 * attempt, Math.max(0, deadline - Date.now())));
          continue;
        }
        if (res.status === 200 || res.status === 201) return outcomeOf(JSON.parse(text) as Charge);
        return { status: 'declined', declineCode: 'processing_error' };
      } catch (error) {
        const name = (error as Error).name;
        if (name === 'TimeoutError' || name === 'AbortError') return { status: 'unknown', reason: 'timed out' };
        last = (error as Error).message;
      }
    }
    return { status: 'unknown', reason: last };
  }

  /** `GET /v1/charges/{id}`: how an unknown outcome is settled. */
  async lookup(chargeId: string): Promise<LookupOutcome> {
    try {
      const res = await fetch(`${this.baseUrl}/v1/charges/${encodeURIComponent(chargeId)}`, {
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (res.status === 404) return { status: 'not_found' };
      if (res.status !== 200) return { status: 'unknown', reason: `HTTP ${res.status}` };
      return outcomeOf((await res.json()) as Charge);
    } catch (error) {
      return { status: 'unknown', reason: (error as Error).message };
    }
  }
}

function outcomeOf(charge: Charge): ChargeOutcome {
  if (charge.status === 'succeeded') return { status: 'succeeded' };
  if (charge.status === 'declined') return { status: 'declined', declineCode: charge.declineCode ?? 'card_declined' };
  return { status: 'unknown', reason: `status ${String((charge as { status?: unknown }).status)}` };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
