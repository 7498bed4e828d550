import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  CreateMerchantOrderRequestSchema,
  type CreateMerchantOrderRequest,
  type MerchantOrder,
} from '../../../core/protocol';
import type { Ctx } from '../../domain/context';
import type { MerchantConfig } from '../../config';
import { ApiError, invalid } from '../../errors';
import { hexEqual, newId, sha256 } from '../../secrets';
import type { MerchantOrderRow } from '../../store/types';
import { paymentView } from '../../domain/checkout';

/** Bearer authentication: the key's SHA-256 is compared, in constant time, with each merchant's. */
function merchantOf(ctx: Ctx, req: FastifyRequest): MerchantConfig {
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{8,256})$/.exec(header) : null;
  const digest = m ? sha256(m[1]) : '';
  let found: MerchantConfig | undefined;
  for (const merchant of ctx.config.merchants)
    if (hexEqual(merchant.apiKeySha256, digest || '00')) found = merchant;
  if (!found)
    throw new ApiError(401, 'unauthorized', 'Authorization must be "Bearer <merchant API key>"');
  return found;
}

async function orderView(ctx: Ctx, row: MerchantOrderRow): Promise<MerchantOrder> {
  const view: MerchantOrder = {
    orderRef: row.orderRef,
    merchantId: row.merchantId,
    merchantOrderId: row.merchantOrderId,
    amount: row.amount,
    currency: row.currency,
    status: row.status,
    createdAt: row.createdAt,
    ...(row.description ? { description: row.description } : {}),
  };
  if (row.paymentId) {
    const p = await ctx.store.getPayment(row.paymentId);
    if (p) view.payment = paymentView(p);
  }
  return view;
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

  app.get('/v1/merchant/orders/:orderRef', async (req) => {
    const merchant = merchantOf(ctx, req);
    const row = await ctx.store.getMerchantOrder((req.params as { orderRef: string }).orderRef);
    if (!row || row.merchantId !== merchant.id)
      throw new ApiError(404, 'order_unknown', 'no such order for this merchant');
    return orderView(ctx, row);
  });
}
