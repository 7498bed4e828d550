// A statement of 100,000 lines (PROTOCOL.md §7.4) on a SQLite file: how long it takes to stream
// over HTTP, and how much memory the platform holds meanwhile, against the same platform's
// memory before the request (the baseline of the same run).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPlatform } from 'cardpay-platform';
import type { PaymentRow } from '../packages/platform/src/store/types';

export async function benchStatement(lines = 100000, log: (l: string) => void = console.error) {
  const dir = mkdtempSync(join(tmpdir(), 'cardpay-bench-statement-'));
  const platform = await startPlatform({
    port: 0,
    sandboxPaymentsPort: 0,
    db: join(dir, 'cardpay.db'),
    logLevel: 'silent',
    masterKey: '5e'.repeat(32),
    sandboxMerchantKey: `sk_sandbox_${'0'.repeat(32)}`,
  });
  try {
    const at = Date.parse('2026-11-30T04:00:00.000Z');
    for (let i = 0; i < lines; i += 5000) {
      const batch: PaymentRow[] = [];
      for (let j = i; j < Math.min(lines, i + 5000); j++)
        batch.push({
          id: `pay_bench${String(j).padStart(7, '0')}`,
          sessionId: `ses_bench${j}`,
          terminalId: 'trm_bench',
          merchantId: 'mch_sandbox',
          orderId: `ord_bench${j}`,
          orderRef: null,
          amount: 1999,
          rateBps: 0,
          amountOff: 0,
          charged: 1999,
          currency: 'CNY',
          status: 'succeeded',
          chargeId: `chg_bench${j}`,
          declineCode: null,
          cardHash: null,
          cvvGiven: false,
          cardBrand: 'unionpay',
          cardLast4: '0009',
          createdAt: at + j,
          decidedAt: at + j,
          nextCheckAt: null,
          checks: 0,
          version: 0,
        });
      await platform.store.commit(batch.map((row) => ({ kind: 'insertPayment' as const, row })));
    }
    global.gc?.();
    const before = process.memoryUsage();
    let peakHeap = before.heapUsed;
    let peakRss = before.rss;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakRss = Math.max(peakRss, m.rss);
    }, 5);
    const started = process.hrtime.bigint();
    const res = await fetch(`${platform.url}/v1/merchant/statements/2026-11-30`, {
      headers: { authorization: `Bearer sk_sandbox_${'0'.repeat(32)}` },
    });
    let bytes = 0;
    let count = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      for (const b of chunk) if (b === 10) count++;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    clearInterval(sampler);
    const figures = {
      lines: count - 2,
      seconds,
      megabytes: bytes / 1e6,
      heapGrowthMb: (peakHeap - before.heapUsed) / 1e6,
      rssGrowthMb: (peakRss - before.rss) / 1e6,
    };
    log(
      `statement of ${figures.lines.toLocaleString('en')} lines: ${seconds.toFixed(2)} s, ${figures.megabytes.toFixed(1)} MB of CSV; memory while streaming: heap +${figures.heapGrowthMb.toFixed(1)} MB, RSS +${figures.rssGrowthMb.toFixed(1)} MB over the same process before the request`,
    );
    return figures;
  } finally {
    await platform.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
