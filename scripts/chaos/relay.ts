// A TCP relay in front of PostgreSQL: how the chaos run and the tests make the database go away
// for one platform instance (or for all) and come back, without touching the server itself.
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpRelay {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** The port it listens on; the same one again after a cut. */
  port = 0;
  /** How many times it was cut. */
  cuts = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  /** In front of PostgreSQL as `postgres://…` URL `url`, on a port of its own. */
  static async before(url: string): Promise<TcpRelay> {
    const u = new URL(url);
    const relay = new TcpRelay({ host: u.hostname, port: Number(u.port || 5432) });
    await relay.start();
    return relay;
  }

  /** `url` with its host and port replaced by this relay's. */
  urlFor(url: string): string {
    const u = new URL(url);
    u.host = `127.0.0.1:${this.port}`;
    return u.toString();
  }

  get up(): boolean {
    return this.server !== undefined;
  }

  /** Listens (again) and relays every new connection to the target. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  /** New connections are refused; those open stay open (until `cut`). */
  async refuseNew(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.cuts++;
    // close() waits for the open connections to end: not awaited here.
    const closed = new Promise((r) => server.close(r));
    if (this.sockets.size === 0) await closed;
  }

  /** The database is gone: every open connection is cut and new ones are refused. */
  async cut(): Promise<void> {
    await this.refuseNew();
    for (const s of this.sockets) s.destroy();
  }
}
