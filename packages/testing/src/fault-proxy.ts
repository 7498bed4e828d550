import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the proxy can do to one request. */
export type FaultKind =
  /** Never forwarded; the caller's connection is closed. */
  | 'dropRequest'
  /** Forwarded and answered upstream; the answer is lost (the caller's connection closes). */
  | 'dropResponse'
  /** Forwarded twice; the caller gets the first answer. */
  | 'duplicate'
  /** Held for up to `maxDelayMs`, then forwarded. */
  | 'delay'
  /** The caller's connection is reset (TCP RST) before anything is forwarded. */
  | 'reset'
  /** Held until the next request has been forwarded (or `maxDelayMs`), then forwarded after it. */
  | 'reorder';

export const FAULT_KINDS: readonly FaultKind[] = [
  'dropRequest',
  'dropResponse',
  'duplicate',
  'delay',
  'reset',
  'reorder',
];

/** Probability of each fault per request (their sum at most 1). */
export type FaultRates = Partial<Record<FaultKind, number>>;

export interface FaultProxyOptions {
  /** Where requests go, e.g. `http://127.0.0.1:8080`; several are taken in turn (a load balancer). */
  target: string | string[];
  rates?: FaultRates;
  /** Longest hold of a `delay` or `reorder`. Default 300 ms. */
  maxDelayMs?: number;
  /** Seed of the fault choices, so a run can be repeated. */
  seed?: number;
  /** Port to listen on (default: a free one). Loopback only. */
  port?: number;
}

export interface FaultProxy {
  /** The proxy's base URL: give it to the caller in place of the target. */
  readonly url: string;
  /** Requests seen, forwarded, answered 502 (target down), and faults applied, by kind. */
  readonly counts: Record<FaultKind | 'requests' | 'forwarded' | 'upstreamDown', number>;
  /** The target's answers by status code (the proxy's own 502s are `upstreamDown`). */
  readonly statuses: Record<string, number>;
  /** Changes the fault rates from now on (`{}` turns the faults off). */
  setRates(rates: FaultRates): void;
  close(): Promise<void>;
}

/** A small deterministic generator (mulberry32): the same seed gives the same faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/**
 * An HTTP proxy of our own that misbehaves on purpose, at configurable rates: it drops requests,
 * loses answers after the target acted, sends requests twice, delays, reorders and resets them.
 * When the target is down it answers `502` unsigned, as a load balancer would. Put one on each
 * hop whose faults you want to survive (terminal → platform, platform → payment platform).
 *
 * @example
 * const proxy = await startFaultProxy({ target: platform.url, rates: { dropResponse: 0.05 } })
 * // point the checkout's platformUrl at proxy.url
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const targets = (Array.isArray(options.target) ? options.target : [options.target]).map(
    (t) => new URL(t),
  );
  let turn = 0;
  const maxDelayMs = options.maxDelayMs ?? 300;
  const random = seededRandom(options.seed ?? 1);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let rates: FaultRates = { ...options.rates };
  const counts = Object.fromEntries(
    [...FAULT_KINDS, 'requests', 'forwarded', 'upstreamDown'].map((k) => [k, 0]),
  ) as FaultProxy['counts'];
  const statuses: Record<string, number> = {};
  const held: (() => void)[] = [];
  const sockets = new Set<Socket>();

  const choose = (): FaultKind | undefined => {
    let x = random();
    for (const kind of FAULT_KINDS) {
      x -= rates[kind] ?? 0;
      if (x < 0) return kind;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, body: Buffer): Promise<Answer | undefined> =>
    new Promise((resolve) => {
      counts.forwarded++;
      const target = targets[turn++ % targets.length];
      const headers = { ...req.headers, host: target.host };
      const up = request(
        {
          agent,
          hostname: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 502;
            statuses[status] = (statuses[status] ?? 0) + 1;
            resolve({ status, headers: res.headers, body: Buffer.concat(chunks) });
          });
          res.on('error', () => resolve(undefined));
        },
      );
      up.on('error', () => resolve(undefined));
      up.end(body);
      // Whatever was held for reordering goes after this one.
      held.splice(0).forEach((release) => release());
    });

  const reply = (res: ServerResponse, answer: Answer | undefined) => {
    if (res.destroyed) return;
    if (!answer) {
      counts.upstreamDown++;
      res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
      return;
    }
    const headers = { ...answer.headers };
    delete headers['transfer-encoding'];
    delete headers.connection;
    delete headers['keep-alive'];
    headers['content-length'] = String(answer.body.length);
    res.writeHead(answer.status, headers).end(answer.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    counts.requests++;
    const fault = choose();
    if (fault) counts[fault]++;
    switch (fault) {
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'dropRequest':
        setTimeout(() => req.socket.destroy(), random() * maxDelayMs);
        return;
      case 'dropResponse':
        await forward(req, body);
        req.socket.destroy();
        return;
      case 'duplicate': {
        const [first] = await Promise.all([forward(req, body), forward(req, body)]);
        reply(res, first);
        return;
      }
      case 'delay':
        await new Promise((r) => setTimeout(r, random() * maxDelayMs));
        break;
      case 'reorder':
        await new Promise<void>((r) => {
          const timer = setTimeout(r, maxDelayMs);
          held.push(() => {
            clearTimeout(timer);
            r();
          });
        });
        break;
    }
    reply(res, await forward(req, body));
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, Buffer.concat(chunks)));
    req.on('error', () => undefined);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    statuses,
    setRates(next) {
      rates = { ...next };
    },
    close() {
      held.splice(0).forEach((release) => release());
      for (const s of sockets) s.destroy();
      agent.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
