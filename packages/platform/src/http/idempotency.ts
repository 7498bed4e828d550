import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Answer } from '../domain/context';
import type { Sealer } from '../infra/secrets';
import type { IdempotencyBegin } from '../store/types';
import { ApiError } from '../infra/errors';

// What an idempotency record keeps (PROTOCOL.md §4), for terminals and merchants alike: a keyed
// fingerprint of the request (never a plain hash of a body that carried a card number, a CVV or
// a password proof) and the first answer sealed under the master key, so that a copy of the
// database shows neither the secrets a request carried nor what its answer said (a live
// challenge, a confirmation token, the masked card).

/** The sealing context of an answer: it opens only as the answer of this scope and key. */
const replyContext = (scope: string, key: string) => `idempotent-reply:${scope}:${key}`;

export function sealReply(sealer: Sealer, scope: string, key: string, body: string): string {
  return sealer.seal(body, replyContext(scope, key));
}

/** The answer as first given; a record written before answers were sealed is read as it is. */
export function openReply(sealer: Sealer, scope: string, key: string, stored: string): string {
  return stored.startsWith('v1.')
    ? sealer.open(stored, replyContext(scope, key)).toString('utf8')
    : stored;
}

/**
 * What a begun record means for the request: act (`true`), or a refusal thrown, or the first
 * answer sent again (`false`: the reply is already on its way).
 */
export function actOn(
  sealer: Sealer,
  scope: string,
  key: string,
  seen: IdempotencyBegin,
  reply: FastifyReply,
): boolean {
  switch (seen.kind) {
    case 'new':
      return true;
    case 'conflict':
      throw new ApiError(
        409,
        'idempotency_conflict',
        'this Idempotency-Key was used for a different request',
      );
    case 'in_progress':
      throw new ApiError(
        409,
        'idempotency_in_progress',
        'a request with this Idempotency-Key is still being processed',
        {},
        true,
      );
    case 'replay':
      void reply
        .code(seen.status)
        .header('content-type', 'application/json; charset=utf-8')
        .send(openReply(sealer, scope, key, seen.body));
      return false;
  }
}

/**
 * The request's answer as a write for the commit that decides it. What it records is what the
 * reply will carry (Fastify sends a route's object as `JSON.stringify` makes it), so the reply
 * need not record it again; any other reply (an error after all) is recorded as it is sent.
 */
export function answerFor(sealer: Sealer, req: FastifyRequest): Answer {
  return (status, body) => {
    const record = req.idempotency;
    if (!record || !req.terminal) return [];
    const scope = req.terminal.id;
    const text = JSON.stringify(body);
    record.answered = { status, text };
    return [
      {
        kind: 'answer',
        scope,
        key: record.key,
        status,
        body: sealReply(sealer, scope, record.key, text),
      },
    ];
  };
}
