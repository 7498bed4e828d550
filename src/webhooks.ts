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
  const parts = new Map(
    (header ?? '').split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
    }),
  );
  const t = parts.get('t');
  const v1 = parts.get('v1');
  if (!t || !/^\d{1,12}$/.test(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1))
    throw new CardPayError(
      'webhook_signature_invalid',
      'CardPay-Signature is missing or malformed',
    );
  const body = Buffer.isBuffer(rawBody)
    ? rawBody
    : typeof rawBody === 'string'
      ? Buffer.from(rawBody, 'utf8')
      : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  const expected = Buffer.from(signWebhook(secret, body, Number(t)).slice(-64), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(v1, 'hex')))
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
