import type { FastifyInstance } from 'fastify';
import {
  RegisterTerminalRequestSchema,
  ResetPasswordRequestSchema,
  TerminalIdentityRequestSchema,
  type RegisterTerminalRequest,
  type ResetPasswordRequest,
  type TerminalIdentityRequest,
} from 'cardpay';
import { resetPassword } from '../../domain/password';
import { SM_SUITE } from '../../infra/suites';
import { identifyTerminal, resolveIdentity } from '../../domain/identity';
import type { Ctx } from '../../domain/context';
import { ApiError, invalid } from '../../infra/errors';
import { newId, randomHex } from '../../infra/secrets';
import { createPublicKey } from 'node:crypto';

export async function terminalRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  app.post(
    '/v1/terminals',
    { config: { body: RegisterTerminalRequestSchema } },
    async (req, reply) => {
      // Counted in the database: several instances share one limit per address.
      const { allowed, retryAfterMs } = await ctx.store.takeRateLimit(
        `register:${req.ip}`,
        ctx.now(),
        ctx.config.registrationsPerMinute,
        60000,
      );
      const wait = allowed ? 0 : Math.max(1, Math.ceil(retryAfterMs / 1000));
      if (wait)
        throw new ApiError(
          429,
          'rate_limited',
          'too many terminal registrations from this address',
          { retryAfter: wait },
          true,
        );
      const body = req.body as RegisterTerminalRequest;
      const bio = body.biometric;
      if (bio?.scheme === 'sandbox-p256') {
        if (!bio.publicKey)
          throw invalid('biometric.publicKey is required for the sandbox-p256 scheme');
        try {
          const key = createPublicKey({
            key: Buffer.from(bio.publicKey, 'hex'),
            format: 'der',
            type: 'spki',
          });
          if (
            key.asymmetricKeyType !== 'ec' ||
            key.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
          )
            throw new Error('curve');
        } catch {
          throw invalid('biometric.publicKey must be a P-256 public key in SPKI DER, hex');
        }
      } else if (bio?.scheme === 'soter' && bio.publicKey) {
        throw invalid('biometric.publicKey is not a known field for the soter scheme');
      }
      const id = newId('trm');
      // Who the shopper is in WeChat, when told now: asked before anything is kept, so that a
      // code WeChat refuses leaves no terminal behind.
      const identity = body.identity ? await resolveIdentity(ctx, id, body.identity) : {};
      const secret = randomHex(32);
      const createdAt = new Date(ctx.now()).toISOString();
      await ctx.store.insertTerminal({
        id,
        secretSealed: ctx.sealer.seal(Buffer.from(secret, 'hex'), `terminal-secret:${id}`),
        pinKeySealed: ctx.sealer.seal(Buffer.from(body.password.key, 'hex'), `pin-key:${id}`),
        salt: body.password.salt,
        iterations: body.password.iterations,
        biometricScheme: bio?.scheme ?? null,
        biometricPublicKey: bio?.publicKey ?? null,
        deviceLabel: body.deviceLabel ?? null,
        createdAt,
        authFailures: 0,
        lockedUntil: 0,
        authLeaseUntil: 0,
        ...identity,
        // The default suite is kept as null: rows made before suites existed read the same.
        suite: body.suite === SM_SUITE ? SM_SUITE : null,
      });
      return reply.code(201).send({
        terminalId: id,
        terminalSecret: secret,
        createdAt,
        suite: body.suite ?? 'cardpay-v1',
      });
    },
  );
  app.post(
    '/v1/terminals/:id/password',
    { config: { signed: true, body: ResetPasswordRequestSchema } },
    async (req) =>
      resetPassword(
        ctx,
        req.terminal!,
        (req.params as { id: string }).id,
        req.body as ResetPasswordRequest,
      ),
  );
  app.post(
    '/v1/terminals/:id/identity',
    { config: { signed: true, body: TerminalIdentityRequestSchema } },
    async (req) =>
      identifyTerminal(
        ctx,
        req.terminal!,
        (req.params as { id: string }).id,
        req.body as TerminalIdentityRequest,
      ),
  );
}
