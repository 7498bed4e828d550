import { createHmac, timingSafeEqual } from 'node:crypto';
import { CardPayError } from './core/errors';

// Notification signatures (PROTOCOL.md §7.3), for the platform that signs and the merchant's
// server that checks: `CardPay-Signature: t=<Unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`,
// keyed with the UTF-8 bytes of the whole secret, `whsec_` included. Node's crypto only.

/** The `CardPay-Signature` header for `body` at Unix time `t`. */
export function signWebhook(secret: string, body: string | Buffer, t: number): string {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${t}.`)
    .update(body)
    .digest('hex');
  return `t=${t},v1=${mac}`;
}

export interface WebhookEvent {
  id: string;
  type: 'payment.succeeded' | 'payment.failed' | 'refund.succeeded' | 'refund.failed';
  createdAt: string;
  data: Record<string, unknown>;
}

/**
 * Checks a notification as received (the raw body bytes, before any JSON parsing) and returns the
 * event. Throws `CardPayError` `webhook_signature_invalid` (missing, malformed or wrong signature)
 * or `webhook_timestamp_skew` (signed more than `toleranceS` from now). Dedupe by `event.id`.
 *
 * @example
 * app.post('/cardpay', { config: { rawBody: true } }, (req, reply) => {
 *   const event = verifyWebhook(req.rawBody, req.headers['cardpay-signature'], process.env.CARDPAY_WEBHOOK_SECRET)
 *   ...
 * })
 */
export function verifyWebhook(
  rawBody: string | Buffer | Uint8Array,
  signatureHeader: string | string[] | undefined,
  secret: string,
  options: { toleranceS?: number; now?: number } = {},
): WebhookEvent {
  const header = Array.isArray(signatureHeader) ? signatureHeader[0] : signatureHeader;
  // `t=…` once, and one `v1=…` or more: while a secret is rotated, the platform may sign with
  // both, and a receiver that knows either accepts (as Stripe's receivers do).
  const ts: string[] = [];
  const v1s: string[] = [];
  for (const part of (header ?? '').split(',')) {
    const i = part.indexOf('=');
    const name = part.slice(0, i).trim();
    const value = part.slice(i + 1).trim();
    if (name === 't') ts.push(value);
    else if (name === 'v1') v1s.push(value);
  }
  const [t] = ts;
  // A time is written one way only: no sign, no leading zero, no second `t`.
  if (
    ts.length !== 1 ||
    !/^(0|[1-9]\d{0,11})$/.test(t) ||
    v1s.length === 0 ||
    !v1s.every((v) => /^[0-9a-f]{64}$/.test(v))
  )
    throw new CardPayError(
      'webhook_signature_invalid',
      'CardPay-Signature is missing or malformed',
    );
  const body = Buffer.isBuffer(rawBody)
    ? rawBody
    : typeof rawBody === 'string'
      ? Buffer.from(rawBody, 'utf8')
      : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  // Over the header's own `t` text, compared with every `v1` (each in constant time).
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${t}.`)
    .update(body)
    .digest();
  let matched = false;
  for (const v of v1s) matched = timingSafeEqual(expected, Buffer.from(v, 'hex')) || matched;
  if (!matched)
    throw new CardPayError(
      'webhook_signature_invalid',
      'CardPay-Signature does not match the body',
    );
  const now = options.now ?? Date.now();
  if (Math.abs(now / 1000 - Number(t)) > (options.toleranceS ?? 300))
    throw new CardPayError('webhook_timestamp_skew', 'the notification was signed too long ago');
  try {
    return JSON.parse(body.toString('utf8')) as WebhookEvent;
  } catch {
    throw new CardPayError('webhook_signature_invalid', 'the signed body is not JSON');
  }
}
