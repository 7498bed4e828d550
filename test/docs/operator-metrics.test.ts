import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metrics } from '../../packages/platform/src/infra/metrics';
import type { Store } from '../../packages/platform/src/store/types';

// The operator guide's table of metrics is what operators build their alerts from: every metric
// the platform serves (prom-client's process figures aside) is in it, and it names none that is
// not served.
describe("the operator guide's metrics", () => {
  it('lists every metric the platform serves, and only those', async () => {
    const guide = readFileSync(join(__dirname, '../../docs/operator-guide.md'), 'utf8');
    const section = guide.slice(guide.indexOf('## Metrics'), guide.indexOf('## Health'));
    const store = {
      backlog: async () => ({ payments: 0, refunds: 0, events: 0, oldestEventAgeMs: 0 }),
    } as unknown as Store;
    const served = (await new Metrics(store, Date.now).registry.getMetricsAsJSON())
      .map((m) => m.name)
      .filter((name) => !/^cardpay_(process|nodejs)_/.test(name));
    expect(served.length).toBeGreaterThan(10);
    for (const name of served) expect(section).toContain(`\`${name}`);
    const named = [...section.matchAll(/`(cardpay_[a-z_]+)/g)]
      .map((m) => m[1])
      .filter((name) => !/^cardpay_(process|nodejs)_$/.test(name));
    // A histogram's series (`_count`, `_sum`, `_bucket`) are the histogram's.
    for (const name of named)
      expect(served).toContain(
        served.includes(name) ? name : name.replace(/_(count|sum|bucket)$/, ''),
      );
  });
});
