import { readCard, type ResetPasswordRequest, type ResetPasswordResponse } from 'cardpay';
import type { Ctx } from './context';
import { securityEvent } from './security-events';
import { ApiError } from '../infra/errors';
import { newId } from '../infra/secrets';
import type { TerminalRow } from '../store/types';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
/** Password resets one terminal may make in any 24 hours (PROTOCOL.md §5.7). */
export const RESETS_PER_DAY = 3;

/**
 * `POST /v1/terminals/{id}/password` (PROTOCOL.md §5.7): the shopper who forgot the password
 * proves the cardholder instead, with a card bound to this terminal and its CVV, checked by the
 * payment platform without a charge. The check is a card-testing attempt like a payment (it takes
 * a slot first, across instances), a refused CVV is a failure toward the terminal's lock, and a
 * terminal makes at most three resets a day, even while locked.
 */
export async function resetPassword(
  ctx: Ctx,
  terminal: TerminalRow,
  terminalId: string,
  body: ResetPasswordRequest,
): Promise<ResetPasswordResponse> {
  if (terminalId !== terminal.id)
    throw new ApiError(404, 'not_found', 'a terminal may reset its own password only');
  const read = readCard(body.card.payload);
  if (!read.ok)
    throw new ApiError(422, 'invalid_card', read.message, {
      reason: read.reason,
      ...(read.detected ? { detected: read.detected } : {}),
    });
  const cardHash = ctx.sealer.cardHash(read.card.pan);
  if (!(await ctx.store.isCardBound(terminal.id, cardHash)))
    throw new ApiError(
      422,
      'card_not_bound',
      'this card has not paid on this terminal; use a card that has, or enrol again',
    );

  const now = ctx.now();
  const check = {
    id: newId('vrf'),
    terminalId: terminal.id,
    cardHash,
    status: 'pending' as const,
    createdAt: now,
  };
  const { cardDeclinesPerHour, terminalDeclinesPerHour } = ctx.config.velocity;
  const reserved = await ctx.store.commit([
    {
      kind: 'reserveAttempt',
      terminalId: terminal.id,
      cardHash,
      since: now - HOUR,
      cardLimit: cardDeclinesPerHour,
      terminalLimit: terminalDeclinesPerHour,
    },
    { kind: 'capResets', terminalId: terminal.id, since: now - DAY, limit: RESETS_PER_DAY },
    { kind: 'insertCardCheck', row: check },
  ]);
  if (!reserved) {
    const n = await ctx.store.recentAttempts(terminal.id, cardHash, now - HOUR);
    const byVelocity = n.card >= cardDeclinesPerHour || n.terminal >= terminalDeclinesPerHour;
    securityEvent(ctx, byVelocity ? 'velocity_limited' : 'password_resets_capped', {
      terminalId: terminal.id,
    });
    throw new ApiError(
      429,
      'rate_limited',
      byVelocity
        ? 'too many declined attempts with this card or on this terminal; try again later'
        : `at most ${RESETS_PER_DAY} password resets a day on one terminal`,
      { retryAfter: byVelocity ? 3600 : 86400 },
      true,
    );
  }

  const outcome = await ctx.payments.verify({
    verificationId: check.id,
    pan: read.card.pan,
    cvv: body.cvv,
  });
  if (outcome.status === 'unknown') {
    // No money moved: the slot is given back and the shopper may try again.
    await ctx.store.commit([
      { kind: 'updateCardCheck', id: check.id, patch: { status: 'declined' } },
    ]);
    ctx.log?.warn(
      { event: 'payment_platform_unanswered', verificationId: check.id, reason: outcome.reason },
      'the payment platform did not answer a CVV check',
    );
    throw new ApiError(
      503,
      'payment_unavailable',
      'the payment platform could not check the card now; try again shortly',
      { retryAfter: 5 },
      true,
    );
  }
  if (outcome.status === 'declined') {
    const lockedUntil = ctx.now() + ctx.config.lockMs;
    await ctx.store.commit([
      { kind: 'updateCardCheck', id: check.id, patch: { status: 'declined' } },
      {
        kind: 'authFailure',
        terminalId: terminal.id,
        max: ctx.config.maxAuthFailures,
        lockUntil: lockedUntil,
      },
    ]);
    securityEvent(ctx, 'password_reset_refused', { terminalId: terminal.id });
    throw new ApiError(
      422,
      'cvv_invalid',
      'the card’s security code was not accepted',
      { declineCode: outcome.declineCode },
      true,
    );
  }
  const updatedAt = ctx.now();
  await ctx.store.commit([
    { kind: 'updateCardCheck', id: check.id, patch: { status: 'verified' } },
    {
      kind: 'updateTerminal',
      id: terminal.id,
      patch: {
        pinKeySealed: ctx.sealer.seal(
          Buffer.from(body.password.key, 'hex'),
          `pin-key:${terminal.id}`,
        ),
        salt: body.password.salt,
        iterations: body.password.iterations,
        authFailures: 0,
        lockedUntil: 0,
      },
    },
  ]);
  ctx.log?.info(
    { event: 'password_reset', terminalId: terminal.id },
    'a terminal reset its payment password with a bound card',
  );
  return { terminalId: terminal.id, passwordUpdatedAt: new Date(updatedAt).toISOString() };
}
