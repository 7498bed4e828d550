import {
  Checkout,
  type CheckoutOptions,
  type CheckoutSnapshot,
} from '../../packages/sdk/src/core/checkout';
import { createNodeHost, MemoryStorage, type NodeHost } from '../../packages/sdk/src/hosts/node';
import { FakePlatform } from './fake-platform';

/** A checkout wired to a fresh fake platform, recording every event it emits. */
export function checkoutOnFake(
  overrides: Partial<CheckoutOptions> = {},
  platform = new FakePlatform(),
  storage = new MemoryStorage(),
) {
  const host: NodeHost = {
    ...createNodeHost({ storage, now: platform.now }),
    request: platform.request,
  };
  const checkout = new Checkout({
    host,
    platformUrl: platform.baseUrl,
    merchantId: 'mch_sandbox',
    amount: 1999,
    description: '2 coffees',
    network: { sleep: async () => undefined },
    pollIntervalMs: 1,
    ...overrides,
  });
  const events: { name: string; payload: any }[] = [];
  const changes: CheckoutSnapshot[] = [];
  checkout.on('change', (s) => changes.push(s));
  for (const name of ['statechange', 'success', 'fail', 'cancel'] as const) {
    checkout.on(name, (payload: unknown) => events.push({ name, payload }));
  }
  const states = () => events.filter((e) => e.name === 'statechange').map((e) => e.payload.state);
  return { checkout, host, platform, storage, events, changes, states };
}

export const PASSWORD = '204816';

/** Enrols the terminal and leaves the checkout at the scanner with `scan` queued. */
export async function enrolAndScan(h: ReturnType<typeof checkoutOnFake>, scan: string) {
  h.host.scanner.push(scan);
  await h.checkout.start();
  await h.checkout.begin();
  await h.checkout.enrol(PASSWORD, PASSWORD);
}
