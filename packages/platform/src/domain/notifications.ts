import { lookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { MerchantOrder, Payment, Refund } from 'cardpay';
import { newId } from '../infra/secrets';
import type { EventRow, Write } from '../store/types';
import { signWebhook } from 'cardpay/node';
import { addressKind } from '../infra/config';
import { Background } from './background';
import type { Ctx } from './context';

// Notifications (PROTOCOL.md §7.3): an event is written in the transaction that decides an
// outcome (an outbox), then delivered by this worker, signed, retried with growing delays from
// the database, so a restart loses none and a slow receiver never holds up a checkout.

export type EventType =
  'payment.succeeded' | 'payment.failed' | 'refund.succeeded' | 'refund.failed';

/** The write that records an event; delivered only where the merchant has a webhook. */
export function eventWrite(
  ctx: Ctx,
  merchantId: string,
  type: EventType,
  data: { order?: MerchantOrder; payment?: Payment & { sessionId: string }; refund?: Refund },
): Write {
  const id = newId('evt');
  const createdAt = new Date(ctx.now()).toISOString();
  const hooked = !!ctx.config.merchants.find((m) => m.id === merchantId)?.webhook;
  const row: EventRow = {
    id,
    merchantId,
    type,
    createdAt,
    body: JSON.stringify({ id, type, createdAt, data }),
    delivery: hooked ? 'pending' : 'none',
    attempts: 0,
    nextAttemptAt: hooked ? ctx.now() : null,
  };
  return { kind: 'insertEvent', row };
}

/** Delay before attempt `n + 1`, in units of the base: about 10 s, 1 min, 5 min, 30 min, 2 h, then 6 h. */
const STEPS = [1, 6, 30, 180, 720, 2160];
const GIVE_UP_MS = 3 * 24 * 3600 * 1000;

/**
 * `POST /v1/merchant/events/{id}/redeliver` (PROTOCOL.md §7.3): one more delivery, now, whatever
 * the event's state; false when the merchant has no webhook to deliver to.
 */
export async function redeliver(ctx: Ctx, e: EventRow): Promise<boolean> {
  if (!ctx.config.merchants.find((m) => m.id === e.merchantId)?.webhook) return false;
  await ctx.store.commit([
    { kind: 'updateEvent', id: e.id, patch: { delivery: 'pending', nextAttemptAt: ctx.now() } },
  ]);
  // Soon rather than at the next pass: the merchant is watching.
  void ctx.notifier.tick().catch(() => undefined);
  return true;
}

export class Notifier extends Background {
  protected async pass(): Promise<void> {
    const { store, config } = this.ctx;
    const due = await store.claimDueEvents(this.ctx.now(), config.webhookTimeoutMs + 5000, 20);
    await Promise.all(due.map((e) => this.deliver(e)));
  }

  private async deliver(e: EventRow): Promise<void> {
    const { config, store } = this.ctx;
    const hook = config.merchants.find((m) => m.id === e.merchantId)?.webhook;
    if (!hook) {
      await store.commit([
        { kind: 'updateEvent', id: e.id, patch: { delivery: 'none', nextAttemptAt: null } },
      ]);
      return;
    }
    const t = Math.floor(this.ctx.now() / 1000);
    const started = Date.now();
    const { status, error } = await post(
      hook.url,
      e.body,
      signWebhook(hook.secret, e.body, t),
      config.webhookTimeoutMs,
      config.allowPrivateWebhooks,
    );
    const attempts = e.attempts + 1;
    // Each attempt is kept for the merchant to see (`GET /v1/merchant/events/{id}`).
    const delivery: Write = {
      kind: 'insertDelivery',
      row: {
        eventId: e.id,
        at: this.ctx.now(),
        status: status || null,
        error: status ? null : error,
        ms: Date.now() - started,
      },
    };
    if (status >= 200 && status < 300) {
      await store.commit([
        delivery,
        {
          kind: 'updateEvent',
          id: e.id,
          patch: { delivery: 'delivered', attempts, nextAttemptAt: null },
        },
      ]);
      return;
    }
    const now = this.ctx.now();
    if (now - Date.parse(e.createdAt) > GIVE_UP_MS) {
      this.ctx.log?.error(
        { event: 'notification_given_up', eventId: e.id, merchantId: e.merchantId, attempts },
        'notification given up after three days of retries',
      );
      await store.commit([
        delivery,
        {
          kind: 'updateEvent',
          id: e.id,
          patch: { delivery: 'failed', attempts, nextAttemptAt: null },
        },
      ]);
      return;
    }
    const wait = config.webhookRetryBaseMs * STEPS[Math.min(e.attempts, STEPS.length - 1)];
    await store.commit([
      delivery,
      { kind: 'updateEvent', id: e.id, patch: { attempts, nextAttemptAt: now + wait } },
    ]);
  }
}

/**
 * The address lookup of an `https://` delivery: a name that resolves to a private, link-local or
 * metadata address is refused as the URL itself would be (a name can be pointed anywhere after
 * the config was checked).
 */
const publicOnly: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, options, (error, address, family) => {
    if (error) return callback(error, address, family);
    const addresses = Array.isArray(address) ? address : [{ address, family }];
    const inner = addresses.find((a) => {
      const kind = addressKind(a.address);
      return kind !== 'public' && kind !== 'name';
    });
    if (inner)
      return callback(new Error(`${hostname} resolves to ${inner.address}`), address, family);
    callback(null, address, family);
  });
};

/** POSTs the event: the status, or 0 and why no answer came (in words, never a secret). */
function post(
  url: string,
  body: string,
  signature: string,
  timeoutMs: number,
  allowPrivate: boolean,
): Promise<{ status: number; error: string }> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return resolve({ status: 0, error: 'the webhook URL is not a URL' });
    }
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      u,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'cardpay-signature': signature,
          'user-agent': 'CardPay-Webhooks/1',
        },
        ...(u.protocol === 'https:' && !allowPrivate ? { lookup: publicOnly } : {}),
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, error: '' });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error('timed out')), timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({
        status: 0,
        error:
          e.message === 'timed out' ? 'no answer in time' : (e.code ?? 'no answer').toLowerCase(),
      });
    });
    req.end(body);
  });
}
