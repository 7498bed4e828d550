import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  CreateMerchantOrderRequestSchema,
  CreateRefundRequestSchema,
  type CreateMerchantOrderRequest,
  type CreateRefundRequest,
  validate,
} from 'cardpay';
import type { Ctx } from '../../domain/context';
import { idempotencyLeaseMs, type MerchantConfig } from '../../infra/config';
import { ApiError, invalid } from '../../infra/errors';
import { hexEqual, newId, sha256 } from '../../infra/secrets';
import { actOn, sealReply } from '../idempotency';
import { createRefund, orderView, viewRefund } from '../../domain/refunds';
import { redeliver } from '../../domain/notifications';
import { dayBounds, statementLines } from '../../domain/statements';
import { Readable } from 'node:stream';

/** Bearer authentication: the key's SHA-256 is compared, in constant time, with each merchant's. */
function merchantOf(ctx: Ctx, req: FastifyRequest): MerchantConfig {
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{8,256})$/.exec(header) : null;
  const digest = m ? sha256(m[1]) : '';
  let found: MerchantConfig | undefined;
  for (const merchant of ctx.config.merchants)
    if (hexEqual(merchant.apiKeySha256, digest || '00')) found = merchant;
  if (!found)
    throw new ApiError(
      401,
      'unauthorized',
      m
        ? 'this merchant API key is not known here: check it for a typo, and that it belongs to this platform'
        : 'Authorization must be "Bearer <merchant API key>"',
    );
  return found;
}

/**
 * Merchant idempotency (PROTOCOL.md §4 per merchant): the first request with a key acts, a repeat
 * with the same body gets its answer again, another body a conflict.
 */
async function idempotent(
  ctx: Ctx,
  merchant: MerchantConfig,
  req: FastifyRequest,
  reply: FastifyReply,
  required: boolean,
  act: () => Promise<{ status: number; body: unknown }>,
) {
  const key = req.headers['idempotency-key'];
  if (key === undefined && !required) {
    const r = await act();
    return reply.code(r.status).send(r.body);
  }
  if (typeof key !== 'string' || !/^[A-Za-z0-9_-]{8,64}$/.test(key))
    throw invalid('Idempotency-Key must be 8 to 64 characters of [A-Za-z0-9_-]');
  const scope = `merchant:${merchant.id}`;
  const seen = await ctx.store.beginIdempotent(
    scope,
    key,
    ctx.sealer.fingerprint(req.method, req.url, sha256(req.rawBody ?? Buffer.alloc(0))),
    ctx.now(),
    ctx.config.idempotencyTtlMs,
    idempotencyLeaseMs(ctx.config),
  );
  if (!actOn(ctx.sealer, scope, key, seen, reply)) return reply;
  try {
    const r = await act();
    const text = JSON.stringify(r.body);
    await ctx.store.finishIdempotent(scope, key, r.status, sealReply(ctx.sealer, scope, key, text));
    return reply
      .code(r.status)
      .header('content-type', 'application/json; charset=utf-8')
      .send(text);
  } catch (error) {
    // A refused request is an outcome too (the same key answers it again); a crash is not.
    if (error instanceof ApiError && error.status < 500 && error.status !== 429)
      await ctx.store.finishIdempotent(
        scope,
        key,
        error.status,
        sealReply(ctx.sealer, scope, key, JSON.stringify(error.body())),
      );
    else await ctx.store.abandonIdempotent(scope, key);
    throw error;
  }
}

export async function merchantRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  app.post(
    '/v1/merchant/orders',
    { config: { body: CreateMerchantOrderRequestSchema } },
    async (req, reply) => {
      const merchant = merchantOf(ctx, req);
      const body = req.body as CreateMerchantOrderRequest;
      if (!merchant.currencies.includes(body.currency))
        throw invalid(`currency ${body.currency} is not accepted by ${merchant.id}`);
      const { row, created } = await ctx.store.putMerchantOrder({
        orderRef: newId('mor'),
        merchantId: merchant.id,
        merchantOrderId: body.merchantOrderId,
        amount: body.amount,
        currency: body.currency,
        description: body.description ?? null,
        status: 'open',
        createdAt: new Date(ctx.now()).toISOString(),
        paymentId: null,
        claimPaymentId: null,
        refundReserved: 0,
      });
      if (!created && (row.amount !== body.amount || row.currency !== body.currency)) {
        throw new ApiError(
          409,
          'idempotency_conflict',
          `merchant order ${body.merchantOrderId} exists with another amount`,
        );
      }
      return reply.code(created ? 201 : 200).send(await orderView(ctx, row));
    },
  );

  app.post('/v1/merchant/orders/:orderRef/refunds', async (req, reply) => {
    const merchant = merchantOf(ctx, req);
    const orderRef = (req.params as { orderRef: string }).orderRef;
    // The body may be left out: a refund of all that is still refundable.
    const checked = validate<CreateRefundRequest>(CreateRefundRequestSchema, req.body ?? {});
    if (!checked.ok) throw invalid(checked.message);
    return idempotent(ctx, merchant, req, reply, true, async () => ({
      status: 201,
      body: await createRefund(
        ctx,
        merchant,
        orderRef,
        checked.value,
        req.headers['idempotency-key'] as string,
      ),
    }));
  });

  app.get('/v1/merchant/refunds/:refundId', async (req) =>
    viewRefund(ctx, merchantOf(ctx, req), (req.params as { refundId: string }).refundId),
  );

  app.get('/v1/merchant/events', async (req) => {
    const merchant = merchantOf(ctx, req);
    const q = req.query as Record<string, unknown>;
    for (const name of Object.keys(q))
      if (name !== 'after' && name !== 'limit')
        throw invalid(`${name} is not a known query parameter`);
    const after = q.after;
    if (
      after !== undefined &&
      (typeof after !== 'string' || !/^evt_[A-Za-z0-9_]{1,60}$/.test(after))
    )
      throw invalid('after must be an event id (evt_…)');
    const limitText = q.limit ?? '50';
    if (
      typeof limitText !== 'string' ||
      !/^\d{1,3}$/.test(limitText) ||
      +limitText < 1 ||
      +limitText > 200
    )
      throw invalid('limit must be a whole number from 1 to 200');
    const limit = Number(limitText);
    // One more than asked tells whether another page follows.
    const rows = await ctx.store.listEvents(merchant.id, after as string | undefined, limit + 1);
    const page = rows.slice(0, limit);
    return {
      events: page.map((e) => JSON.parse(e.body) as unknown),
      nextCursor: rows.length > limit ? page[page.length - 1].id : null,
    };
  });

  /** The merchant's own event, or 404 (another merchant's is as unknown as none). */
  const eventOf = async (req: FastifyRequest) => {
    const merchant = merchantOf(ctx, req);
    const id = (req.params as { id: string }).id;
    const e = /^evt_[A-Za-z0-9_]{1,60}$/.test(id) ? await ctx.store.getEvent(id) : undefined;
    if (!e || e.merchantId !== merchant.id)
      throw new ApiError(404, 'not_found', `no event ${id} for this merchant`);
    return e;
  };

  // An event with its last 20 delivery attempts (PROTOCOL.md §7.3).
  app.get('/v1/merchant/events/:id', async (req) => {
    const e = await eventOf(req);
    const deliveries = await ctx.store.listDeliveries(e.id, 20);
    return {
      ...(JSON.parse(e.body) as object),
      delivery: e.delivery,
      deliveries: deliveries.map((d) => ({
        at: new Date(d.at).toISOString(),
        status: d.status,
        ...(d.error ? { error: d.error } : {}),
        ms: d.ms,
      })),
    };
  });

  // One more delivery of an event, now (§7.3).
  app.post('/v1/merchant/events/:id/redeliver', async (req, reply) => {
    const e = await eventOf(req);
    if (!(await redeliver(ctx, e)))
      throw new ApiError(
        409,
        'invalid_state',
        'this merchant has no webhook to deliver to; its events are listed at GET /v1/merchant/events',
      );
    return reply.code(202).send({ id: e.id, delivery: 'pending' });
  });

  // The day's statement as CSV, streamed (§7.4).
  app.get('/v1/merchant/statements/:day', async (req, reply) => {
    const merchant = merchantOf(ctx, req);
    const day = (req.params as { day: string }).day.replace(/\.csv$/, '');
    const bounds = dayBounds(day, ctx.config.statementTimeZone);
    if (!bounds) throw invalid('the statement date must be a day as YYYY-MM-DD, e.g. 2026-12-05');
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="cardpay-${merchant.id}-${day}.csv"`)
      .send(Readable.from(statementLines(ctx, merchant.id, bounds)));
  });

  app.get('/v1/merchant/orders', async (req) => {
    const merchant = merchantOf(ctx, req);
    const q = listQuery(req.query as Record<string, unknown>);
    const rows = await ctx.store.listMerchantOrders({ merchantId: merchant.id, ...q });
    const last = rows[rows.length - 1];
    return {
      orders: await Promise.all(rows.map((r) => orderView(ctx, r))),
      // A full page may be the last one; its next page is then empty (PROTOCOL.md §7.1).
      nextCursor:
        rows.length === q.limit && last ? encodeCursor(last.createdAt, last.orderRef) : null,
    };
  });

  app.get('/v1/merchant/orders/:orderRef', async (req) => {
    const merchant = merchantOf(ctx, req);
    const row = await ctx.store.getMerchantOrder((req.params as { orderRef: string }).orderRef);
    if (!row || row.merchantId !== merchant.id)
      throw new ApiError(404, 'order_unknown', 'no such order for this merchant');
    return orderView(ctx, row);
  });
}

const ORDER_STATUSES = ['open', 'paid', 'failed', 'partially_refunded', 'refunded'];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The listing's query parameters, each checked; a bad one is named in a 400. */
function listQuery(raw: Record<string, unknown>) {
  const known = ['status', 'createdFrom', 'createdTo', 'limit', 'cursor'];
  for (const name of Object.keys(raw))
    if (!known.includes(name)) throw invalid(`${name} is not a known query parameter`);
  const one = (name: string): string | undefined => {
    const v = raw[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalid(`${name} must be given once`);
    return v;
  };
  const status = one('status');
  if (status !== undefined && !ORDER_STATUSES.includes(status))
    throw invalid(`status must be one of ${ORDER_STATUSES.join(', ')}`);
  const time = (name: string) => {
    const v = one(name);
    if (v !== undefined && (!ISO.test(v) || Number.isNaN(Date.parse(v))))
      throw invalid(`${name} must be an ISO 8601 UTC time with milliseconds`);
    return v;
  };
  const from = time('createdFrom');
  const to = time('createdTo');
  const limitText = one('limit');
  const limit = limitText === undefined ? 50 : Number(limitText);
  if (!/^\d{1,3}$/.test(limitText ?? '50') || limit < 1 || limit > 200)
    throw invalid('limit must be a whole number from 1 to 200');
  const cursor = one('cursor');
  const before = cursor === undefined ? undefined : decodeCursor(cursor);
  return { status, from, to, limit, before };
}

/** An opaque position: the last order's creation time and reference. */
function encodeCursor(createdAt: string, orderRef: string): string {
  return Buffer.from(`${createdAt}|${orderRef}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; orderRef: string } {
  const [createdAt, orderRef, extra] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (
    extra !== undefined ||
    !createdAt ||
    !ISO.test(createdAt) ||
    !/^mor_\w{1,60}$/.test(orderRef ?? '')
  )
    throw invalid('cursor is not one this platform gave');
  return { createdAt, orderRef };
}
