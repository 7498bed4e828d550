import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import { createServer, type RequestListener } from 'node:http';
import { canonicalRequest, canonicalResponse, validate, type Schema } from 'cardpay';
import { idempotencyLeaseMs, type PlatformConfig } from '../infra/config';
import type { Ahead, Ctx, OrderAhead } from '../domain/context';
import { ApiError, invalid } from '../infra/errors';
import { PaymentConnector } from '../connectors/payments';
import { Notifier } from '../domain/notifications';
import { Reconciler } from '../domain/reconciler';
import { securityEvent } from '../domain/security-events';
import { actOn, sealReply } from './idempotency';
import { merchantRoutes } from './routes/merchant';
import { sessionRoutes } from './routes/sessions';
import { terminalRoutes } from './routes/terminals';
import { dashboardRoutes } from './dashboard/index';
import { hexEqual, Sealer, sha256, type SealMode } from '../infra/secrets';
import { digestOf, hashHex, hmacHex } from '../infra/suites';
import { Metrics } from '../infra/metrics';
import { WeChatSoterVerifier, type SoterVerifier } from '../connectors/soter';
import { WeChatApi } from '../connectors/wechat';
import {
  StoreUnavailable,
  type ReadWithBegin,
  type RequestBegin,
  type Store,
  type TerminalRow,
  type Write,
} from '../store/types';

export interface AppOptions {
  store: Store;
  config: PlatformConfig;
  masterKey: string;
  /** The payment platform's base URL. */
  paymentUrl: string;
  logger?: FastifyServerOptions['logger'];
  /**
   * Checks SOTER assertions. Default: WeChat's `verify_signature` where the config names WeChat
   * credentials; none otherwise (the platform then does not offer SOTER).
   */
  soter?: SoterVerifier;
  /** WeChat's server APIs (default `https://api.weixin.qq.com`); tests point it at a stand-in. */
  wechatApiUrl?: string;
  /** Serve the merchant dashboard at `/dashboard` (default true). */
  dashboard?: boolean;
  /** How secrets are sealed at rest (default AES-256-GCM). */
  seal?: SealMode;
  /** Milliseconds since the epoch; tests move it. */
  clock?: () => number;
  /** Start the reconciler's timer (the CLI does; tests may drive it by hand). */
  reconcile?: boolean;
  /** Connection limits; the defaults suit a platform behind a proxy that buffers bodies. */
  limits?: Partial<ServerLimits>;
}

/**
 * What one client may hold of the server. A body sent a byte at a time would otherwise keep its
 * socket (a file descriptor) open for good; enough of them and every new connection is refused.
 */
export interface ServerLimits {
  /** A whole request, headers and body, must arrive within this. */
  requestTimeoutMs: number;
  /** The headers must arrive within this. */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Connections open at once; more are refused at once instead of exhausting descriptors. */
  maxConnections: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  requestTimeoutMs: 10000,
  headersTimeoutMs: 5000,
  keepAliveTimeoutMs: 5000,
  maxConnections: 4096,
};

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    badJson?: string;
    terminal?: TerminalRow;
    terminalSecret?: Buffer;
    /** SHA-256 of the raw body, hex: signed over, and part of the idempotency fingerprint. */
    bodyHash?: string;
    /** Its Idempotency-Key, and the answer recorded with its commit once there is one. */
    idempotency?: { key: string; answered?: { status: number; text: string } };
    /** The route's {@link FastifyContextConfig.readAhead}, read: a step's session … */
    ahead?: Ahead;
    /** … or the merchant order a session opens for. */
    orderAhead?: OrderAhead;
    /**
     * A request whose begin its handler makes ({@link FastifyContextConfig.beginsWithCommit}):
     * `withCommit` with the writes of its change, in one transaction (true: all written); when
     * that did not hold, `alone` as any other request (true: it may act; a refusal is thrown; a
     * repeat's first answer is sent, and false returned).
     */
    begin?: { withCommit(writes: Write[]): Promise<boolean>; alone(): Promise<boolean> };
  }
  interface FastifyContextConfig {
    /** The route needs a signed request (PROTOCOL.md §3). */
    signed?: boolean;
    /** JSON schema of the body, checked with the SDK's validator. */
    body?: Schema;
    /** What the step reads first, read with the request's begin (a signed POST's) as of `at`. */
    readAhead?: (req: FastifyRequest, at: number) => ReadWithBegin | undefined;
    /**
     * The route decides without the database until its commit, when this holds: its handler then
     * makes the request's begin with that commit (`req.begin`), one round trip for both.
     */
    beginsWithCommit?: (req: FastifyRequest) => boolean;
  }
}

const BODY_LIMIT = 16 * 1024;
const READY_CACHE_MS = 1000;
const EMPTY = Buffer.alloc(0);

/**
 * Builds the reference trading platform. It never listens: `cli.ts` does, and tests use
 * `inject()` or listen on a free port themselves.
 */
export async function buildApp(options: AppOptions): Promise<{ app: FastifyInstance; ctx: Ctx }> {
  const now = options.clock ?? Date.now;
  const sealer = new Sealer(options.masterKey, options.seal);
  const payments = new PaymentConnector(options.paymentUrl, options.config.paymentTimeoutMs);
  const wechat = options.config.wechat
    ? new WeChatApi(options.config.wechat, { baseUrl: options.wechatApiUrl, now })
    : undefined;
  const ctx = {
    store: options.store,
    config: options.config,
    sealer,
    payments,
    soter: options.soter ?? (wechat ? new WeChatSoterVerifier(wechat) : undefined),
    wechat,
    now,
  } as Ctx;
  ctx.metrics = new Metrics(options.store, now);
  options.store.onWait = ctx.metrics.waited;
  options.store.onCommit = ctx.metrics.committed;
  payments.onRequest = ctx.metrics.called;
  ctx.reconciler = new Reconciler(ctx);
  ctx.notifier = new Notifier(ctx);

  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT,
    trustProxy: false,
    return503OnClosing: true,
    // Node checks request time-outs on a timer (30 s by default): check as often as they expire.
    serverFactory: (handler: RequestListener) => {
      const server = createServer(
        {
          requestTimeout: limits.requestTimeoutMs,
          headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          connectionsCheckingInterval: Math.max(
            50,
            Math.min(1000, Math.floor(limits.requestTimeoutMs / 4)),
          ),
        },
        handler,
      );
      server.maxConnections = limits.maxConnections;
      capPerAddress(server, options.config.throttle.connectionsPerAddress, (address) =>
        securityEvent(
          ctx,
          'connections_capped',
          { address },
          'an address holds its limit of connections; closing the new one',
        ),
      );
      return server;
    },
    // Bytes that are not HTTP at all (a body on a method that takes none, a broken request
    // line) are answered in the protocol's error shape too, and the connection closed.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return socket.destroy();
      const timedOut = (error as NodeJS.ErrnoException).code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const status = timedOut ? 408 : 400;
      const body = JSON.stringify(
        new ApiError(
          status,
          'invalid_request',
          timedOut ? 'the request took too long to arrive' : 'the request is not valid HTTP',
          {},
          timedOut,
        ).body(),
      );
      socket.end(
        `HTTP/1.1 ${status} ${timedOut ? 'Request Timeout' : 'Bad Request'}\r\n` +
          `content-type: application/json; charset=utf-8\r\ncache-control: no-store\r\n` +
          `connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        // Closed once written, whatever the client goes on sending.
        () => socket.destroy(),
      );
    },
    // A malformed or over-long URL gets the protocol's error shape too, never Fastify's own.
    frameworkErrors: (error, _req, res) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const reply = res as unknown as FastifyReply;
      void reply
        .code(tooLong ? 414 : 400)
        .header('cache-control', 'no-store')
        .send(
          new ApiError(
            tooLong ? 414 : 400,
            tooLong ? 'not_found' : 'invalid_request',
            tooLong ? 'the path is too long' : 'the path is not a valid URL',
          ).body(),
        );
    },
  });

  // Keep the raw bytes (they are what the signature covers); a body that is not JSON is reported
  // after authentication, so an unauthenticated caller learns nothing first.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: BODY_LIMIT },
    (req, body, done) => {
      const raw = body as Buffer;
      req.rawBody = raw;
      if (raw.length === 0) return done(null, undefined);
      try {
        done(null, JSON.parse(raw.toString('utf8')));
      } catch {
        req.badJson = 'the body is not valid JSON';
        done(null, undefined);
      }
    },
  );
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (req, body, done) => {
    req.rawBody = body as Buffer;
    req.badJson = 'Content-Type must be application/json';
    done(null, undefined);
  });

  // Identify the terminal early, so that every answer to a known terminal is signed, errors included.
  // What a terminal is to the signature (its id, secret, biometric scheme) never changes once
  // registered: it is kept in memory with its opened secret, sparing a read and an AES-GCM open
  // per request. Its authentication state (failures, lock, and the pin key a password reset
  // replaces) does change, and is read where it is judged.
  const known = new Map<string, { terminal: TerminalRow; secret: Buffer }>();
  const buckets = new TokenBuckets(
    options.config.throttle.postsPerSecond,
    options.config.throttle.postsBurst,
  );
  // Requests by route pattern (never the raw path: ids would make a series each) and status.
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics
      .forRequest(req.routeOptions.url ?? 'unmatched', req.method, reply.statusCode)
      .done(reply.elapsedTime / 1000);
  });

  app.addHook('onRequest', async (req) => {
    // Only answers to signed routes are signed: an unsigned route would otherwise sign, with a
    // terminal's secret, a body over a nonce its caller chose.
    if (!req.routeOptions.config?.signed) return;
    const id = req.headers['x-cardpay-terminal'];
    if (typeof id !== 'string' || !/^trm_[A-Za-z0-9_]{1,60}$/.test(id)) return;
    let entry = known.get(id);
    if (!entry) {
      const terminal = await ctx.store.getTerminal(id);
      if (!terminal) return;
      const secret = sealer.open(terminal.secretSealed, `terminal-secret:${terminal.id}`);
      entry = { terminal, secret };
      if (known.size >= 50000) known.delete(known.keys().next().value as string);
      known.set(id, entry);
    }
    req.terminal = entry.terminal;
    req.terminalSecret = entry.secret;
  });

  // A signed request's nonce is recorded once its signature holds: with its idempotency record,
  // in one write, when it is a POST that reaches its handler; alone otherwise.
  app.addHook('preValidation', async (req) => {
    const config = req.routeOptions.config;
    if (!config.signed) return checkRequest(req);
    await authenticateRequest(req, ctx);
    try {
      checkRequest(req);
    } catch (error) {
      // A malformed request spends its nonce too; a replayed one is told so first (§3's order).
      await recordNonce(req, ctx);
      throw error;
    }
    if (req.method !== 'POST') await recordNonce(req, ctx);
  });

  // Idempotency (PROTOCOL.md §4): the first request with a key acts; a repeat gets its outcome.
  app.addHook('preHandler', async (req, reply) => {
    if (!req.routeOptions.config.signed || req.method !== 'POST' || !req.terminal) return;
    const key = req.headers['idempotency-key'] as string;
    const at = now();
    // Writes per terminal: each signed POST writes a nonce and a record, so a terminal that
    // sends them without pause would grow the database without bound.
    const wait = buckets.take(req.terminal.id, at);
    if (wait > 0) {
      securityEvent(
        ctx,
        'terminal_throttled',
        { terminalId: req.terminal.id },
        'a terminal sent signed requests faster than its limit',
      );
      throw new ApiError(
        429,
        'rate_limited',
        'this terminal sends requests faster than the platform allows; slow down',
        { retryAfter: Math.max(1, Math.ceil(wait / 1000)) },
        true,
      );
    }
    const begin: RequestBegin = {
      terminalId: req.terminal.id,
      nonce: req.headers['x-cardpay-nonce'] as string,
      nonceExpiresAt: at + ctx.config.nonceTtlMs,
      key,
      // The body's hash was taken when the signature was checked.
      fingerprint: sealer.fingerprint(req.method, req.url, req.bodyHash!),
      now: at,
      ttlMs: ctx.config.idempotencyTtlMs,
      leaseMs: idempotencyLeaseMs(ctx.config),
    };
    if (req.routeOptions.config.beginsWithCommit?.(req)) {
      // The answer goes in the commit's writes (answerFor); a commit that did not hold wrote
      // nothing, and the request then has no record of its own until `alone` gives it one.
      req.idempotency = { key };
      req.begin = {
        withCommit: async (writes) => {
          let written = false;
          try {
            written = await ctx.store.beginWithCommit(begin, writes);
          } finally {
            if (!written) req.idempotency = undefined;
          }
          return written;
        },
        alone: () => {
          // Whatever came before, the request has a record of its own only once this begins one.
          req.idempotency = undefined;
          return beginAlone(req, reply, begin);
        },
      };
      return;
    }
    if (!(await beginAlone(req, reply, begin))) return reply;
  });

  /** A request's begin, alone: true when it may act (see `req.begin`). */
  async function beginAlone(
    req: FastifyRequest,
    reply: FastifyReply,
    b: RequestBegin,
  ): Promise<boolean> {
    const read = req.routeOptions.config.readAhead?.(req, b.now);
    const seen = await ctx.store.useNonceAndBegin(b, read);
    if (seen.kind === 'nonce_reused') throw nonceReused();
    if (!actOn(sealer, b.terminalId, b.key, seen, reply)) return false;
    req.idempotency = { key: b.key };
    if (read && seen.kind === 'new' && seen.read) {
      if ('order' in read && 'order' in seen.read)
        req.orderAhead = { orderRef: read.order, found: seen.read.order };
      else if ('session' in read && 'session' in seen.read)
        req.ahead = { read, at: b.now, found: seen.read.session, lease: seen.read.lease };
    }
    return true;
  }

  app.addHook('onSend', async (req, reply, payload) => {
    const text =
      payload === null || payload === undefined
        ? ''
        : typeof payload === 'string'
          ? payload
          : Buffer.isBuffer(payload)
            ? payload
            : String(payload);
    if (req.idempotency && req.terminal) {
      const { key, answered } = req.idempotency;
      req.idempotency = undefined;
      // A 5xx or a 429 is not an outcome (nothing was done): the same key may act again.
      if (answered?.status === reply.statusCode && answered.text === text.toString()) {
        // Recorded already, in the commit of the change this answer reports.
      } else if (reply.statusCode >= 500 || reply.statusCode === 429)
        await ctx.store.abandonIdempotent(req.terminal.id, key);
      else
        await ctx.store.finishIdempotent(
          req.terminal.id,
          key,
          reply.statusCode,
          sealReply(sealer, req.terminal.id, key, text.toString()),
        );
    }
    // Answers are about one terminal's money and secrets: no cache anywhere may keep them.
    reply.header('cache-control', 'no-store');
    if (req.terminalSecret) {
      // Signed in the terminal's suite (PROTOCOL.md §3.1).
      const digest = digestOf(req.terminal);
      const timestamp = String(Math.floor(now() / 1000));
      const nonce =
        typeof req.headers['x-cardpay-nonce'] === 'string' ? req.headers['x-cardpay-nonce'] : '';
      const canonical = canonicalResponse({
        status: reply.statusCode,
        timestamp,
        requestNonce: nonce,
        bodyHash: hashHex(digest, text),
      });
      reply.header('x-cardpay-timestamp', timestamp);
      reply.header('x-cardpay-signature', hmacHex(digest, req.terminalSecret, canonical));
    }
    return payload;
  });

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, req, reply) => {
    if (error instanceof ApiError) {
      if (error.status === 429 && error.extra.retryAfter)
        reply.header('retry-after', String(error.extra.retryAfter));
      const { retryAfter: _drop, ...extra } = error.extra;
      return reply
        .code(error.status)
        .send(
          new ApiError(
            error.status,
            error.code,
            error.message,
            extra,
            error.retryable,
            error.errorFields,
          ).body(),
        );
    }
    if (error instanceof StoreUnavailable) {
      const fields = { event: 'database_unavailable', err: { message: error.message } };
      ctx.metrics.count(fields);
      req.log.warn(fields, 'database unavailable');
      return reply
        .code(503)
        .header('retry-after', '1')
        .send(
          new ApiError(
            503,
            'internal_error',
            'the database is unavailable; retry',
            {},
            true,
          ).body(),
        );
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply
        .code(413)
        .send(
          new ApiError(413, 'payload_too_large', `the body exceeds ${BODY_LIMIT} bytes`).body(),
        );
    }
    if (error.statusCode && error.statusCode < 500) {
      return reply.code(400).send(invalid(error.message).body());
    }
    req.log.error({ err: { type: error.name, message: error.message } }, 'unhandled error');
    return reply
      .code(500)
      .send(new ApiError(500, 'internal_error', 'internal error', {}, true).body());
  });

  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send(
        new ApiError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`).body(),
      );
  });

  // Liveness: the process serves HTTP. Readiness (for a load balancer): the database answers, and
  // the payment platform does within a second; `503` with what is not ready otherwise.
  app.get('/v1/health', async () => ({ status: 'ok' }));
  // It is unauthenticated, so its answer is kept for a second: however often it is asked, the
  // database and the payment platform are asked at most once a second.
  let readiness: { at: number; checks: Promise<Record<string, string>> } | undefined;
  app.get('/v1/health/ready', async (_req, reply) => {
    const at = Date.now();
    if (!readiness || at - readiness.at >= READY_CACHE_MS)
      readiness = {
        at,
        checks: Promise.all([
          ctx.store.getMeta('master-key-check').then(
            () => 'ok',
            () => 'unavailable',
          ),
          payments.reachable(1000).then((ok) => (ok ? 'ok' : 'unavailable')),
        ]).then(([database, paymentPlatform]) => ({ database, paymentPlatform })),
      };
    const checks = await readiness.checks;
    const ready = Object.values(checks).every((c) => c === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'not_ready', checks });
  });
  await app.register(async (scope) => terminalRoutes(scope, ctx));
  await app.register(async (scope) => sessionRoutes(scope, ctx));
  await app.register(async (scope) => merchantRoutes(scope, ctx));
  if (options.dashboard !== false) await dashboardRoutes(app, ctx);

  ctx.log = ctx.metrics.eventLogger(app.log);
  // The database going away and coming back, each said once (the requests that meet it in
  // between are counted as database errors): a line and a count, cardpay_database_up, and the
  // recoveries counted.
  options.store.onAvailability = (available) =>
    available
      ? ctx.log.info({ event: 'database_recovered' }, 'the database answers again')
      : ctx.log.warn({ event: 'database_lost' }, 'the database stopped answering');
  if (options.reconcile) {
    ctx.reconciler.start(ctx.config.reconcileEveryMs);
    ctx.notifier.start(Math.min(1000, ctx.config.webhookRetryBaseMs));
  }
  app.addHook('onClose', async () => {
    await ctx.reconciler.stop();
    await ctx.notifier.stop();
    payments.close();
  });
  return { app, ctx };
}

/** What every request must be, past authentication: JSON, an Idempotency-Key, its body's schema. */
function checkRequest(req: FastifyRequest): void {
  const config = req.routeOptions.config;
  if (req.badJson && (req.rawBody?.length ?? 0) > 0) throw invalid(req.badJson);
  if (config.signed && req.method === 'POST') {
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || !/^[A-Za-z0-9_-]{8,64}$/.test(key)) {
      throw invalid('Idempotency-Key must be 8 to 64 characters of [A-Za-z0-9_-]');
    }
  }
  if (config.body) {
    if (req.body === undefined) throw invalid('body is required');
    const checked = validate(config.body, req.body);
    if (!checked.ok) throw invalid(checked.message);
  }
}

const nonceReused = () =>
  new ApiError(401, 'nonce_reused', 'this nonce was already used by this terminal');

/** Records an authenticated request's nonce; of two concurrent twins, one loses the insert. */
async function recordNonce(req: FastifyRequest, ctx: Ctx): Promise<void> {
  const now = ctx.now();
  const nonce = req.headers['x-cardpay-nonce'] as string;
  if (!(await ctx.store.useNonce(req.terminal!.id, nonce, now, now + ctx.config.nonceTtlMs)))
    throw nonceReused();
}

/**
 * PROTOCOL.md §3, in its order: terminal_unknown, timestamp_skew, nonce_reused, signature_invalid.
 * The nonce is recorded afterwards (a forger cannot spend a terminal's nonces), by the caller.
 */
async function authenticateRequest(req: FastifyRequest, ctx: Ctx): Promise<void> {
  const terminal = req.terminal;
  const secret = req.terminalSecret;
  if (!terminal || !secret)
    throw new ApiError(401, 'terminal_unknown', 'X-CardPay-Terminal names no registered terminal');
  const h = req.headers;
  const timestamp = h['x-cardpay-timestamp'];
  const seconds =
    typeof timestamp === 'string' && /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
  const now = ctx.now();
  if (!Number.isFinite(seconds) || Math.abs(seconds * 1000 - now) > ctx.config.skewMs) {
    throw new ApiError(
      401,
      'timestamp_skew',
      `X-CardPay-Timestamp must be within ${ctx.config.skewMs / 1000} s of the server clock`,
    );
  }
  const nonce = h['x-cardpay-nonce'];
  if (typeof nonce !== 'string' || !/^[0-9a-f]{32}$/.test(nonce)) {
    throw new ApiError(
      401,
      'signature_invalid',
      'X-CardPay-Nonce must be 32 lower-case hex characters',
    );
  }
  const signature = h['x-cardpay-signature'];
  // The idempotency fingerprint keeps SHA-256 (its own, keyed); the signature is the suite's.
  req.bodyHash = sha256(req.rawBody ?? EMPTY);
  const digest = digestOf(terminal);
  const canonical = canonicalRequest({
    method: req.method,
    path: req.url,
    timestamp: String(timestamp),
    nonce,
    bodyHash: digest === 'sha256' ? req.bodyHash : hashHex(digest, req.rawBody ?? EMPTY),
  });
  const expected = hmacHex(digest, secret, canonical);
  if (typeof signature !== 'string' || !hexEqual(expected, signature)) {
    // The protocol reports a reused nonce before a bad signature; the look is made only here,
    // so a good request costs no read for its nonce, only the write that records it.
    if (await ctx.store.nonceSeen(terminal.id, nonce, now)) throw nonceReused();
    throw new ApiError(401, 'signature_invalid', 'X-CardPay-Signature does not match the request');
  }
}

/**
 * Closes a new connection at once when its address already holds `max`: one address opening
 * thousands of silent sockets would otherwise take every place `maxConnections` allows, and every
 * other client would wait for them to time out.
 */
function capPerAddress(
  server: ReturnType<typeof createServer>,
  max: number,
  onCapped: (address: string) => void,
): void {
  const open = new Map<string, number>();
  let warned = 0;
  server.on('connection', (socket) => {
    const address = socket.remoteAddress ?? '';
    const n = (open.get(address) ?? 0) + 1;
    if (n > max) {
      socket.destroy();
      // One line a second at most: a flood must not flood the log too.
      if (Date.now() - warned >= 1000) {
        warned = Date.now();
        onCapped(address);
      }
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

/**
 * A token bucket per terminal, in this instance's memory: `rate` tokens a second up to `burst`.
 * `take` spends one, or says how many milliseconds until one is there.
 */
class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  take(id: string, now: number): number {
    let b = this.buckets.get(id);
    if (!b) {
      // Bounded: the oldest terminals seen make room (a full bucket is what they would get anyway).
      if (this.buckets.size >= 100000) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: now };
      this.buckets.set(id, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.rate) / 1000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / this.rate);
  }
}
