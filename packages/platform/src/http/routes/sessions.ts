import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  AuthenticateRequestSchema,
  ConfirmRequestSchema,
  CreateSessionRequestSchema,
  OrderRequestSchema,
  type AuthenticateRequest,
  type ConfirmRequest,
  type CreateSessionRequest,
  type OrderRequest,
} from 'cardpay';
import {
  authenticate,
  cancelSession,
  confirmOrder,
  openSession,
  opensWithoutReads,
  stepReads,
  submitOrder,
  viewSession,
} from '../../domain/checkout';
import type { Ctx } from '../../domain/context';
import { answerFor } from '../idempotency';

// The checkout session's routes (PROTOCOL.md §5): signed, parsed and validated by the app's
// hooks; each hands the terminal and the body to the payment domain and answers what it returns.

const id = (req: FastifyRequest) => (req.params as { id: string }).id;

export async function sessionRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const signed = { signed: true };
  app.post(
    '/v1/sessions',
    {
      config: {
        ...signed,
        body: CreateSessionRequestSchema,
        beginsWithCommit: (req) => opensWithoutReads(ctx, req.body as CreateSessionRequest),
        readAhead: (req) => {
          const { orderRef } = req.body as CreateSessionRequest;
          return orderRef ? { order: orderRef } : undefined;
        },
      },
    },
    async (req, reply) => {
      const body = req.body as CreateSessionRequest;
      if (req.begin) {
        let view;
        try {
          view = await openSession(ctx, req.terminal!, body, answerFor(ctx.sealer, req), {
            withBegin: req.begin.withCommit,
          });
        } catch (error) {
          // Begun alone first, as any request is before its error is answered (PROTOCOL.md §3).
          if (!(await req.begin.alone())) return reply;
          throw error;
        }
        if (view) return reply.code(201).send(view);
        if (!(await req.begin.alone())) return reply;
      }
      return reply.code(201).send(
        await openSession(ctx, req.terminal!, body, answerFor(ctx.sealer, req), {
          order: req.orderAhead,
        }),
      );
    },
  );
  app.get('/v1/sessions/:id', { config: signed }, async (req) =>
    viewSession(ctx, req.terminal!, id(req)),
  );
  app.post(
    '/v1/sessions/:id/order',
    {
      config: {
        ...signed,
        body: OrderRequestSchema,
        readAhead: (req) => ({ session: id(req), ...stepReads.order(req.body as OrderRequest) }),
      },
    },
    async (req) =>
      submitOrder(
        ctx,
        req.terminal!,
        id(req),
        req.body as OrderRequest,
        answerFor(ctx.sealer, req),
        req.ahead,
      ),
  );
  app.post(
    '/v1/sessions/:id/confirm',
    {
      config: {
        ...signed,
        body: ConfirmRequestSchema,
        readAhead: (req) => ({ session: id(req), ...stepReads.confirm() }),
      },
    },
    async (req) =>
      confirmOrder(
        ctx,
        req.terminal!,
        id(req),
        req.body as ConfirmRequest,
        answerFor(ctx.sealer, req),
        req.ahead,
      ),
  );
  app.post('/v1/sessions/:id/cancel', { config: signed }, async (req) =>
    cancelSession(ctx, req.terminal!, id(req), answerFor(ctx.sealer, req)),
  );
  app.post(
    '/v1/sessions/:id/authenticate',
    {
      config: {
        ...signed,
        body: AuthenticateRequestSchema,
        readAhead: (req, at) => ({ session: id(req), ...stepReads.authenticate(at) }),
      },
    },
    async (req) =>
      authenticate(
        ctx,
        req.terminal!,
        id(req),
        req.body as AuthenticateRequest,
        answerFor(ctx.sealer, req),
        req.ahead,
      ),
  );
}
