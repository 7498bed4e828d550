import { createServer, connect, type Server, type Socket } from 'node:net';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { pay, raw, terminal } from '../support/server-harness';
import { ADMIN_URL, describePg, freshDatabase } from '../support/postgres';

// PostgreSQL going away and coming back, played by a TCP relay of our own in front of it.

class Relay {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** The database is gone: open connections cut, new ones refused. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server!.close(r));
  }
}

describePg('a PostgreSQL that goes down and comes back', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let relay: Relay;
  let platform: SandboxPlatform;
  beforeAll(async () => {
    db = await freshDatabase();
    const target = new URL(ADMIN_URL);
    relay = new Relay({ host: target.hostname, port: Number(target.port || 5432) });
    await relay.start();
    const url = new URL(db.url);
    url.host = `127.0.0.1:${relay.port}`;
    platform = await startSandboxPlatform({ db: url.toString(), sandboxDb: ':memory:' });
  });
  afterAll(async () => {
    await platform?.close();
    await relay?.stop();
    await db?.drop();
  });

  it('answers 503, retryable, while it is down, and serves again once it is back', async () => {
    const t = await terminal(platform);
    expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });

    await relay.stop();
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
});
