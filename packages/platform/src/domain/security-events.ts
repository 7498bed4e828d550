import type { Ctx } from './context';

/**
 * A refusal that protects shoppers (a velocity limit, a busy lease, a lock, a throttle, a capped
 * connection): one `warn` line with its `event` and `"security": true`, counted in the metrics by
 * the event logger. The one way they are reported, so an operator can grep and alert on them.
 */
export function securityEvent(
  ctx: Pick<Ctx, 'log'>,
  event: string,
  fields: Record<string, unknown>,
  message = 'refused for the shopper’s protection',
): void {
  ctx.log?.warn({ event, security: true, ...fields }, message);
}
