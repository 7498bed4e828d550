import { settle } from './settle';
import { settleRefund } from './refunds';
import { Background } from './background';
import { neverReceivedAfterMs } from '../infra/config';

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
      const step = this.next(found.status, p.createdAt, p.checks, now);
      if (step === 'final')
        await settle(this.ctx, p.id, found as Parameters<typeof settle>[2], 'reconciler');
      else if (step === 'lost')
        await settle(this.ctx, p.id, { status: 'failed', reason: 'never received' }, 'reconciler');
      else
        await store.commit([
          {
            kind: 'updatePayment',
            id: p.id,
            version: p.version,
            patch: { checks: p.checks + 1, nextCheckAt: step },
          },
        ]);
    }
    // Refunds whose outcome is unknown, settled the same way.
    for (const r of await store.claimDueRefunds(now, lease, 50)) {
      const found = await payments.lookupRefund(r.id);
      const step = this.next(found.status, Date.parse(r.createdAt), r.checks, now);
      if (step === 'final')
        await settleRefund(
          this.ctx,
          r.id,
          found as Parameters<typeof settleRefund>[2],
          'reconciler',
        );
      else if (step === 'lost')
        // Only if nobody sent it again since it was claimed (refunds.ts, announceResend).
        await settleRefund(
          this.ctx,
          r.id,
          { status: 'failed', failureCode: 'never_received' },
          'reconciler',
          r.version,
        );
      else
        await store.commit([
          {
            kind: 'updateRefund',
            id: r.id,
            version: r.version,
            patch: { checks: r.checks + 1, nextCheckAt: step },
          },
        ]);
    }
  }

  /**
   * What to do with an action the payment platform was asked about: `final` (it has an
   * outcome), `lost` (not found long after it was sent: it never arrived, so no money moved), or
   * the time of the next check, backing off.
   */
  private next(
    status: string,
    sentAt: number,
    checks: number,
    now: number,
  ): 'final' | 'lost' | number {
    const { config } = this.ctx;
    if (status !== 'unknown' && status !== 'not_found') return 'final';
    const lostAfter = neverReceivedAfterMs(config);
    if (status === 'not_found' && now - sentAt > lostAfter) return 'lost';
    return now + Math.min(60000, config.reconcileEveryMs * 2 ** Math.min(checks, 6));
  }
}
