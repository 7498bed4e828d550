import { settle } from './checkout';
import { settleRefund } from './refunds';
import { Background } from './background';

/**
 * Settles payments whose outcome is unknown (the payment platform did not answer in time) by
 * asking `GET /v1/charges/{chargeId}` until it is final. It works from the database alone, so
 * a restarted server settles what the previous process left in `processing`.
 */
export class Reconciler extends Background {
  protected async pass(): Promise<void> {
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
