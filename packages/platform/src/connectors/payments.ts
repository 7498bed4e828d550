import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type {
  Charge,
  ChargeRequest,
  PaymentPlatformRefund,
  RefundRequest,
  Verification,
  VerificationRequest,
} from 'cardpay';

/** What the trading platform learns from one charge attempt. */
export type ChargeOutcome =
  | { status: 'succeeded' }
  | { status: 'declined'; declineCode: string }
  /** No answer in time, or none usable: the reconciler will ask again. */
  | { status: 'unknown'; reason: string };

export type LookupOutcome = ChargeOutcome | { status: 'not_found' };

/** What the trading platform learns from one CVV check (PROTOCOL.md §8 `POST /v1/verifications`). */
export type VerificationOutcome =
  | { status: 'verified' }
  | { status: 'declined'; declineCode: string }
  | { status: 'unknown'; reason: string };

/** What the trading platform learns from one refund attempt. */
export type RefundOutcome =
  | { status: 'succeeded' }
  | { status: 'failed'; failureCode: string }
  | { status: 'unknown'; reason: string };

class TimedOut extends Error {}

/**
 * The connection to the payment platform (PROTOCOL.md §8). A charge carries the charge id as its
 * `Idempotency-Key`, so retrying after a 5xx or a dropped connection can never charge twice.
 * Connections are kept alive: the payment platform is called once per checkout.
 */
export class PaymentConnector {
  private readonly url: URL;
  private readonly agent: HttpAgent;

  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly attempts = 3,
  ) {
    this.url = new URL(baseUrl);
    const Agent = this.url.protocol === 'https:' ? HttpsAgent : HttpAgent;
    this.agent = new Agent({ keepAlive: true, maxSockets: 64 });
  }

  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    const res = await this.postOnce('/v1/charges', request.chargeId, request);
    if ('unknown' in res) return { status: 'unknown', reason: res.unknown };
    if (res.status === 200 || res.status === 201) return outcomeOf(JSON.parse(res.text) as Charge);
    return { status: 'declined', declineCode: 'processing_error' };
  }

  /**
   * `POST /v1/verifications`: checks a card's CVV without moving money, under the verification id
   * as `Idempotency-Key`. Nothing rides on an unknown outcome (no money moved): the caller
   * answers 503 and the shopper tries again.
   */
  async verify(request: VerificationRequest): Promise<VerificationOutcome> {
    const res = await this.postOnce('/v1/verifications', request.verificationId, request);
    if ('unknown' in res) return { status: 'unknown', reason: res.unknown };
    if (res.status !== 200 && res.status !== 201)
      return { status: 'unknown', reason: `HTTP ${res.status}` };
    let v: Verification;
    try {
      v = JSON.parse(res.text) as Verification;
    } catch {
      return { status: 'unknown', reason: 'an answer that is not JSON' };
    }
    if (v.status === 'verified') return { status: 'verified' };
    if (v.status === 'declined')
      return { status: 'declined', declineCode: v.declineCode ?? 'card_declined' };
    return { status: 'unknown', reason: `status ${String((v as { status?: unknown }).status)}` };
  }

  /** Whether the payment platform answers at all (any HTTP status) within `timeoutMs`. */
  async reachable(timeoutMs: number): Promise<boolean> {
    try {
      await this.send('GET', '/v1/charges/chg_readiness_probe', timeoutMs, {});
      return true;
    } catch {
      return false;
    }
  }

  /** `GET /v1/charges/{id}`: how an unknown outcome is settled. */
  async lookup(chargeId: string): Promise<LookupOutcome> {
    try {
      const res = await this.send(
        'GET',
        `/v1/charges/${encodeURIComponent(chargeId)}`,
        this.timeoutMs,
        {},
      );
      if (res.status === 404) return { status: 'not_found' };
      if (res.status !== 200) return { status: 'unknown', reason: `HTTP ${res.status}` };
      return outcomeOf(JSON.parse(res.text) as Charge);
    } catch (error) {
      return { status: 'unknown', reason: (error as Error).message };
    }
  }

  /** `POST /v1/refunds` under the refund id as `Idempotency-Key`, the same way as a charge. */
  async refund(request: RefundRequest): Promise<RefundOutcome> {
    const res = await this.postOnce('/v1/refunds', request.refundId, request);
    if ('unknown' in res) return { status: 'unknown', reason: res.unknown };
    if (res.status === 200 || res.status === 201)
      return refundOutcomeOf(JSON.parse(res.text) as PaymentPlatformRefund);
    const code = (JSON.parse(res.text) as { error?: { code?: string } }).error?.code;
    return { status: 'failed', failureCode: code ?? `http_${res.status}` };
  }

  /**
   * POSTs one action under its id as `Idempotency-Key`, retried after a 5xx or a dropped
   * connection within the time limit: never twice in effect. A time-out leaves the outcome
   * unknown (the action may have been done); only the reconciler, asking by id, may decide.
   */
  private async postOnce(
    path: string,
    key: string,
    request: object,
  ): Promise<{ status: number; text: string } | { unknown: string }> {
    const deadline = Date.now() + this.timeoutMs;
    const body = JSON.stringify(request);
    let last = 'no attempt';
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const res = await this.send(
          'POST',
          path,
          left,
          { 'content-type': 'application/json', 'idempotency-key': key },
          body,
        );
        if (res.status < 500) return res;
        last = `HTTP ${res.status}`;
        await pause(Math.min(50 * attempt, Math.max(0, deadline - Date.now())));
      } catch (error) {
        if (error instanceof TimedOut) return { unknown: 'timed out' };
        last = (error as Error).message;
      }
    }
    return { unknown: last };
  }

  /** `GET /v1/refunds/{id}`: how a refund's unknown outcome is settled. */
  async lookupRefund(refundId: string): Promise<RefundOutcome | { status: 'not_found' }> {
    try {
      const res = await this.send(
        'GET',
        `/v1/refunds/${encodeURIComponent(refundId)}`,
        this.timeoutMs,
        {},
      );
      if (res.status === 404) return { status: 'not_found' };
      if (res.status !== 200) return { status: 'unknown', reason: `HTTP ${res.status}` };
      return refundOutcomeOf(JSON.parse(res.text) as PaymentPlatformRefund);
    } catch (error) {
      return { status: 'unknown', reason: (error as Error).message };
    }
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * Told of each request sent, answered (any status) or not (a time-out, a lost connection), with
   * its time in seconds: `cardpay_payment_platform_request_duration_seconds`.
   */
  onRequest?: (call: PaymentCall, answered: boolean, seconds: number) => void;

  private send(
    method: string,
    path: string,
    timeoutMs: number,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; text: string }> {
    const told = this.onRequest;
    if (!told) return this.exchange(method, path, timeoutMs, headers, body);
    const start = performance.now();
    const call = callOf(method, path);
    return this.exchange(method, path, timeoutMs, headers, body).then(
      (answer) => {
        told(call, true, (performance.now() - start) / 1000);
        return answer;
      },
      (error: unknown) => {
        told(call, false, (performance.now() - start) / 1000);
        throw error;
      },
    );
  }

  private exchange(
    method: string,
    path: string,
    timeoutMs: number,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; text: string }> {
    const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const base = this.url.pathname.replace(/\/+$/, '');
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.agent,
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port,
          method,
          path: base + path,
          headers:
            body === undefined
              ? headers
              : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', reject);
        },
      );
      const timer = setTimeout(() => req.destroy(new TimedOut('timed out')), timeoutMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }
}

/** What a request to the payment platform is for, by its method and path (PROTOCOL.md §8). */
export type PaymentCall =
  'charge' | 'verification' | 'refund' | 'charge_lookup' | 'refund_lookup' | 'readiness';

function callOf(method: string, path: string): PaymentCall {
  if (path === '/v1/charges/chg_readiness_probe') return 'readiness';
  if (path.startsWith('/v1/charges')) return method === 'POST' ? 'charge' : 'charge_lookup';
  if (path.startsWith('/v1/refunds')) return method === 'POST' ? 'refund' : 'refund_lookup';
  return 'verification';
}

function outcomeOf(charge: Charge): ChargeOutcome {
  if (charge.status === 'succeeded') return { status: 'succeeded' };
  if (charge.status === 'declined')
    return { status: 'declined', declineCode: charge.declineCode ?? 'card_declined' };
  return { status: 'unknown', reason: `status ${String((charge as { status?: unknown }).status)}` };
}

function refundOutcomeOf(r: PaymentPlatformRefund): RefundOutcome {
  if (r.status === 'succeeded') return { status: 'succeeded' };
  if (r.status === 'failed')
    return { status: 'failed', failureCode: r.failureCode ?? 'refund_failed' };
  return { status: 'unknown', reason: `status ${String((r as { status?: unknown }).status)}` };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
