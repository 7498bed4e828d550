import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { pay, raw, terminal } from '../support/server-harness';
import { ADMIN_URL, describePg, freshDatabase } from '../support/postgres';
import { TcpRelay } from '../../scripts/chaos/relay';
import type { Write } from '../../packages/platform/src/store/types';
import type { Pool, PoolClient } from 'pg';

// PostgreSQL going away and coming back, played by a TCP relay of our own in front of it.

describePg('a PostgreSQL that goes down and comes back', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let relay: TcpRelay;
  let platform: SandboxPlatform;
  beforeAll(async () => {
    db = await freshDatabase();
    relay = await TcpRelay.before(ADMIN_URL);
    platform = await startSandboxPlatform({ db: relay.urlFor(db.url), sandboxDb: ':memory:' });
  });
  afterAll(async () => {
    await platform?.close();
    await relay?.cut();
    await db?.drop();
  });

  it('answers 503, retryable, while it is down, and serves again once it is back', async () => {
    const t = await terminal(platform);
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });

    await relay.cut();
    const down = await raw(platform, {
      method: 'POST',
      path: '/v1/terminals',
      body: JSON.stringify({
        password: { salt: '00'.repeat(16), iterations: 10000, key: '11'.repeat(32) },
      }),
    });
    expect(down.status).toBe(503);
    expect(down.json).toEqual({
      error: { code: 'internal_error', message: expect.any(String), retryable: true },
    });
    await platform.ctx.reconciler.tick(); // background work fails quietly too
    // The SDK sees a transport failure (an unsigned 5xx) and says so, retryable.
    const meanwhile = await t.client
      .createSession({ merchantId: 'mch_sandbox' }, await t.client.newIdempotencyKey())
      .catch((e) => e);
    expect(meanwhile).toMatchObject({ retryable: true });

    await relay.start(); // the same port: the database is back
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
  });

  it('survives its connection dropping while a commit holds it, before its statements go', async () => {
    const t = await terminal(platform);
    const pool = (platform.store as unknown as { pool: Pool }).pool;
    // Without a listener, the client's 'error' event is thrown out of the socket's handler: the
    // platform's process would end (and this suite fails to run).
    const connect = pool.connect.bind(pool) as () => Promise<PoolClient>;
    let first = true;
    let listening = 0;
    pool.connect = (async () => {
      const client = await connect();
      if (first) {
        first = false;
        listening = client.listenerCount('error');
        // The connection goes while the commit holds it, no statement in flight.
        await relay.cut();
        await new Promise((r) => setTimeout(r, 200));
      }
      return client;
    }) as typeof pool.connect;
    try {
      const write = { kind: 'updateTerminal', id: t.client.identity!.terminalId, patch: {} };
      await expect(platform.store.commit([write, write] as Write[])).rejects.toMatchObject({
        name: 'StoreUnavailable',
      });
    } finally {
      pool.connect = connect as typeof pool.connect;
      await relay.start();
    }
    // Someone listened for the client's error while it was lent out (jest would swallow the
    // crash), and the platform still serves, with a fresh connection.
    expect(listening).toBeGreaterThan(0);
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
  });

  it('is not ready while its database is gone, is ready again by itself after, and counts both', async () => {
    const metric = async (name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await platform.ctx.metrics.text())?.[1]);
    const ready = async () => {
      const r = await fetch(`${platform.url}/v1/health/ready`);
      return { status: r.status, body: (await r.json()) as { checks: Record<string, string> } };
    };
    // The readiness answer is kept for a second: wait it out before each look.
    const after = () => new Promise((r) => setTimeout(r, 1050));
    await after();
    expect((await ready()).status).toBe(200);
    const errors = await metric('cardpay_database_errors_total');
    const recoveries = await metric('cardpay_database_recoveries_total');
    expect(await metric('cardpay_database_up')).toBe(1);

    await relay.cut();
    await after();
    expect(await ready()).toMatchObject({
      status: 503,
      body: { checks: { database: 'unavailable' } },
    });
    expect(await metric('cardpay_database_up')).toBe(0);
    const t = await terminal(platform).catch((e) => e);
    expect(t).toMatchObject({ retryable: true });
    expect(await metric('cardpay_database_errors_total')).toBeGreaterThan(errors);

    await relay.start();
    await after();
    expect((await ready()).status).toBe(200);
    expect(await metric('cardpay_database_up')).toBe(1);
    expect(await metric('cardpay_database_recoveries_total')).toBe(recoveries + 1);
  });
});
