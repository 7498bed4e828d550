import { settle } from './checkout';
import { settleRefund } from './refunds';
import type { Ctx } from './context';

/**
 * Settles payments whose outcome is unknown (the payment platform did not answer in time) by
 * asking `GET /v1/charges/{chargeId}` until it is final. It works from the database alone, so
 * a restarted server settles what the previous process left in `processing`.
 */
export class Reconciler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly ctx: Ctx) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.ctx.config.reconcileEveryMs);
    this.timer.unref?.();
    void this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * One pass over the due payments; concurrent calls share the pass in progress. It never
   * rejects: a failure (a database locked by a backup, a payment platform down) is logged, and
   * the next pass tries again.
   */
  tick(): Promise<void> {
    this.running ??= this.pass()
      .catch((error: Error) => {
        this.ctx.log?.error(
          { event: 'background_failed', err: { type: error.name, message: error.message } },
          'background work failed; it runs again on the next pass',
        );
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async pass(): Promise<void> {
    const { store, payments, config } = this.ctx;
    const now = this.ctx.now();
    await store.prune(now, now - config.sessionRetentionMs);
    // Leased for as long as a lookup may take, with room to spare: another instance finds the
    // payment due again only if this one died before settling or rescheduling it.
    const lease = config.paymentTimeoutMs * 2 + 5000;
    for (const p of await store.claimDuePayments(now, lease, 50)) {
      const found = await payments.lookup(p.chargeId);
      if (found.status === 'succeeded' || found.status === 'declined') {
        await settle(this.ctx, p.id, found);
        continue;
      }
      // Not found long after it was sent: the charge never arrived, so no money moved.
      const grace = config.paymentTimeoutMs * 3 + 30000;
      if (found.status === 'not_found' && now - p.createdAt > grace) {
        await settle(this.ctx, p.id, { status: 'failed', reason: 'never received' });
        continue;
      }
      const wait = Math.min(60000, config.reconcileEveryMs * 2 ** Math.min(p.checks, 6));
      await store.commit([
        {
          kind: 'updatePayment',
          id: p.id,
          version: p.version,
          patch: { checks: p.checks + 1, nextCheckAt: now + wait },
        },
      ]);
    }
    // Refunds whose outcome is unknown, settled the same way.
    for (const r of await store.claimDueRefunds(now, lease, 50)) {
      const found = await payments.lookupRefund(r.id);
      if (found.status === 'succeeded' || found.status === 'failed') {
        await settleRefund(this.ctx, r.id, found);
        continue;
      }
      const grace = config.paymentTimeoutMs * 3 + 30000;
      if (found.status === 'not_found' && now - Date.parse(r.createdAt) > grace) {
        await settleRefund(this.ctx, r.id, { status: 'failed', failureCode: 'never_received' });
        continue;
      }
      const wait = Math.min(60000, config.reconcileEveryMs * 2 ** Math.min(r.checks, 6));
      await store.commit([
        {
          kind: 'updateRefund',
          id: r.id,
          version: r.version,
          patch: { checks: r.checks + 1, nextCheckAt: now + wait },
        },
      ]);
    }
  }
}
