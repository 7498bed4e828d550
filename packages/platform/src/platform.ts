import type { FastifyInstance } from 'fastify';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join, parse } from 'node:path';
import { buildApp, type ServerLimits } from './http/app';
import type { Ctx } from './domain/context';
import {
  applyConfig,
  defaultConfig,
  loadConfigFile,
  newApiKey,
  newWebhookSecret,
  webhookUrl,
  sandboxMerchant,
  statementTimeZone,
  type PlatformConfig,
} from './infra/config';
import { loggerOptions } from './infra/log';
import { buildSandbox } from './sandbox/payment-platform';
import { SandboxSoterVerifier } from './sandbox/soter';
import { sealReply } from './http/idempotency';
import { randomHex, Sealer, type SealMode } from './infra/secrets';
import type { SoterVerifier } from './connectors/soter';
import { SqliteStore } from './store/sqlite';
import type * as PostgresModule from './store/postgres';
import type { Store } from './store/types';

export interface PlatformOptions {
  host?: string;
  port?: number;
  /** SQLite file, `:memory:`, or a `postgres://` URL (several instances on one database). */
  db?: string;
  /** PostgreSQL: the connections this instance keeps at most (default 6; see the operator guide). */
  dbPool?: number;
  /** Production: the payment platform to charge through. Without it, the sandbox starts in-process. */
  paymentUrl?: string;
  sandboxPaymentsPort?: number;
  /**
   * Where the sandbox payment platform listens: loopback by default, whatever `host` is, since
   * it has no authentication (anyone who reaches it could refund or read charges).
   */
  sandboxHost?: string;
  /** Serve Prometheus metrics at `GET /metrics` on this port (off when unset). */
  metricsPort?: number;
  /** Where the metrics listener binds (default 127.0.0.1). */
  metricsHost?: string;
  paymentTimeoutMs?: number;
  sessionTtlS?: number;
  /** Path of a JSON config file. */
  config?: string;
  /** An already-parsed config object (tests, the merchant kit). */
  configObject?: unknown;
  /** 64 hex characters; else CARDPAY_MASTER_KEY; sandbox mode makes and keeps one. */
  masterKey?: string;
  /** The sandbox merchant's API key; else CARDPAY_SANDBOX_MERCHANT_KEY; else random. */
  sandboxMerchantKey?: string;
  /** Where the sandbox payment platform keeps its records (default: beside the database). */
  sandboxDb?: string;
  /** The sandbox's delay for the slow card. */
  sandboxSlowDelayMs?: number;
  /** The sandbox's delay before answering every charge (tests of charges in flight). */
  sandboxChargeDelayMs?: number;
  /** pino level, or 'silent'. */
  logLevel?: string;
  logStream?: NodeJS.WritableStream;
  /**
   * Checks SOTER assertions (production: `WeChatSoterVerifier`). Sandbox mode installs the
   * sandbox's stand-in unless one is given; without one, the platform does not offer SOTER.
   */
  soter?: SoterVerifier;
  /** WeChat's server APIs (default `https://api.weixin.qq.com`): a stand-in in tests. */
  wechatApiUrl?: string;
  /** The time zone of the statements' days (default Asia/Shanghai; the config file's wins). */
  statementTimeZone?: string;
  /** Serve the merchant dashboard at `/dashboard` (default true; `--no-dashboard`). */
  dashboard?: boolean;
  /** How secrets are sealed at rest (`--seal`): `aes-256-gcm` (default) or `sm4`. */
  seal?: SealMode;
  /** Called with a warning line (the CLI prints it to stderr). */
  warn?: (line: string) => void;
  clock?: () => number;
  /** How often the reconciler runs (default 1 s). */
  reconcileEveryMs?: number;
  /** Where the sandbox merchant's notifications go; its secret is made at start (or given). */
  sandboxWebhookUrl?: string;
  sandboxWebhookSecret?: string;
  /** The first retry delay of a notification (default 10 s). */
  webhookRetryBaseMs?: number;
  /** How long a receiver has to answer (default 10 s). */
  webhookTimeoutMs?: number;
  /** How long a statement waits for a lock held by another connection (default 5 s). */
  busyTimeoutMs?: number;
  /** Connection limits and time-outs of the HTTP server. */
  limits?: Partial<ServerLimits>;
}

export interface RunningPlatform {
  url: string;
  app: FastifyInstance;
  ctx: Ctx;
  store: Store;
  sandbox?: { url: string; app: FastifyInstance; db: string };
  /** `http://…/metrics`, when a metrics port was given. */
  metricsUrl?: string;
  sandboxMerchant?: { id: string; apiKey: string; webhookSecret?: string };
  close(): Promise<void>;
}

export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

function masterKeyFor(options: PlatformOptions, sandbox: boolean, db: string): string {
  const given = options.masterKey ?? process.env.CARDPAY_MASTER_KEY;
  if (given) {
    if (!/^[0-9a-fA-F]{64}$/.test(given))
      throw new StartupError('CARDPAY_MASTER_KEY must be 64 hex characters');
    return given;
  }
  if (!sandbox)
    throw new StartupError('CARDPAY_MASTER_KEY is required with --payment-url (production mode)');
  if (isPostgresUrl(db))
    throw new StartupError(
      'CARDPAY_MASTER_KEY is required with a postgres:// database: every instance needs the same key',
    );
  const warn = options.warn ?? (() => undefined);
  if (db === ':memory:') {
    warn(
      'warning: CARDPAY_MASTER_KEY is not set; using a throw-away key for this in-memory database',
    );
    return randomHex(32);
  }
  const file = `${db}.master-key`;
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(kept))
      throw new StartupError(`the master key file ${file} is damaged`);
    return kept;
  }
  const key = randomHex(32);
  writeFileSync(file, key + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  warn(
    `warning: CARDPAY_MASTER_KEY is not set; generated one and kept it in ${file} (sandbox only)`,
  );
  return key;
}

/**
 * The database remembers how its secrets are sealed (`--seal`); a start the other way would open
 * none of them, so it stops with one line saying which way to start. A database from before the
 * choice existed was sealed with AES-256-GCM.
 */
async function checkSealing(store: Store, mode: SealMode): Promise<void> {
  const kept = await store.getMeta('sealing');
  if (!kept) {
    const made = !(await store.getMeta('master-key-check'));
    await store.putMeta('sealing', made ? mode : 'aes-256-gcm');
  }
  const sealing = (await store.getMeta('sealing'))!;
  if (sealing !== mode)
    throw new StartupError(
      `this database is sealed with ${sealing}, not ${mode}: start it with --seal ${sealing}`,
    );
}

/**
 * A wrong master key would open no secret: every signed request would fail. The database keeps a
 * value sealed under the key it was made with; one that does not open stops the start.
 */
async function checkMasterKey(store: Store, sealer: Sealer): Promise<{ fresh: boolean }> {
  const context = 'master-key-check';
  // Written only if absent, then read back: of instances starting together, the first one's
  // value stands and every one checks its own key against it.
  const fresh = !(await store.getMeta(context));
  if (fresh) await store.putMeta(context, sealer.seal('cardpay', context));
  const kept = (await store.getMeta(context))!;
  try {
    sealer.open(kept, context);
  } catch {
    throw new StartupError(
      'CARDPAY_MASTER_KEY does not open the secrets in this database: it is not the key the database was made with',
    );
  }
  return { fresh };
}

/**
 * The upgrade to keyed idempotency fingerprints and sealed answers (PROTOCOL.md §4): every record
 * kept in the old form is rewritten (its old fingerprint keyed, its answer sealed), then the
 * database's files are scrubbed of what the rewrite and earlier deletions left behind. Done once
 * per database, and safe to run from several instances at once. Returns how many were rewritten.
 */
async function keyIdempotencyAtRest(
  store: Store,
  sealer: Sealer,
  fresh: boolean,
): Promise<number | undefined> {
  const done = 'idempotency-keyed';
  if (await store.getMeta(done)) return undefined;
  let rewritten = 0;
  let after: { scope: string; key: string } | undefined;
  for (;;) {
    const batch = await store.legacyIdempotency(1000, after);
    if (batch.length === 0) break;
    after = batch[batch.length - 1];
    await store.rewriteIdempotency(
      batch.map((r) => ({
        ...r,
        newFingerprint: r.fingerprint.includes(' ')
          ? sealer.rekeyFingerprint(r.fingerprint)
          : r.fingerprint,
        newBody: r.body === null ? null : sealReply(sealer, r.scope, r.key, r.body),
      })),
    );
    rewritten += batch.length;
  }
  if (!fresh) await store.scrub();
  await store.putMeta(done, new Date().toISOString());
  return rewritten;
}

/** The data folder holds the database (and, in sandbox mode, its key): the platform's user only. */
function makeDataFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new StartupError(
      `cannot create the database folder ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/**
 * A sandbox credential kept in `<db>.<name>` (0600) beside the database, so that what a merchant
 * saved from the first start (its API key, its webhook secret) still works after a restart. An
 * in-memory or PostgreSQL database gets a new one each start.
 */
function keptSandboxValue(db: string, name: string, shape: RegExp, make: () => string): string {
  if (db === ':memory:' || isPostgresUrl(db)) return make();
  const file = `${db}.${name}`;
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (shape.test(kept)) return kept;
  }
  const value = make();
  writeFileSync(file, value + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return value;
}

/**
 * The SOTER check: the one given; else, in sandbox mode without WeChat credentials, the
 * sandbox's stand-in; else WeChat's (built with the app when the config names credentials).
 */
function soterFor(
  options: PlatformOptions,
  sandbox: boolean,
  config: PlatformConfig,
): SoterVerifier | undefined {
  return options.soter ?? (sandbox && !config.wechat ? new SandboxSoterVerifier() : undefined);
}

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//.test(db);
}

function sandboxDbFor(db: string): string {
  if (db === ':memory:') return ':memory:';
  // On PostgreSQL the sandbox payment platform still keeps its records in a file of its own.
  if (isPostgresUrl(db)) return './data/cardpay-sandbox-payments.db';
  const p = parse(db);
  return join(p.dir, `${p.name}-sandbox-payments${p.ext || '.db'}`);
}

/**
 * Starts the reference trading platform (and, without a payment URL, the sandbox payment
 * platform on its own port), listening and reconciling. The CLI and the test kit both use it.
 */
export async function startPlatform(options: PlatformOptions = {}): Promise<RunningPlatform> {
  const db = options.db ?? './data/cardpay.db';
  // A start that fails (a bad config, a port in use) leaves behind nothing it made: no empty
  // database, no key file that would then be mistaken for the real one.
  const made = filesOf(options, db).filter((f) => !existsSync(f));
  try {
    return await start(options, db);
  } catch (error) {
    for (const f of made.reverse()) {
      try {
        if (statSync(f).isDirectory()) rmdirSync(f);
        else unlinkSync(f);
      } catch {
        // not made after all, or a folder that holds something else: left alone
      }
    }
    throw error;
  }
}

/** What a start may create on disk: the data folder, the database, its key files, the sandbox's. */
function filesOf(options: PlatformOptions, db: string): string[] {
  if (db === ':memory:') return [];
  const sqlite = (f: string) => [f, `${f}-wal`, `${f}-shm`];
  const sandboxDb = options.paymentUrl ? ':memory:' : (options.sandboxDb ?? sandboxDbFor(db));
  const sandbox = sandboxDb === ':memory:' ? [] : [dirname(sandboxDb), ...sqlite(sandboxDb)];
  if (isPostgresUrl(db)) return sandbox;
  return [
    dirname(db),
    ...sqlite(db),
    `${db}.master-key`,
    `${db}.sandbox-merchant-key`,
    `${db}.sandbox-webhook-secret`,
    ...sandbox,
  ];
}

async function start(options: PlatformOptions, db: string): Promise<RunningPlatform> {
  const sandboxMode = !options.paymentUrl;
  const postgres = isPostgresUrl(db);
  if (db !== ':memory:' && !postgres) makeDataFolder(dirname(db));
  let config: PlatformConfig = defaultConfig();
  if (options.paymentTimeoutMs !== undefined) config.paymentTimeoutMs = options.paymentTimeoutMs;
  if (options.sessionTtlS !== undefined) config.sessionTtlMs = options.sessionTtlS * 1000;
  if (options.reconcileEveryMs !== undefined) config.reconcileEveryMs = options.reconcileEveryMs;
  if (options.statementTimeZone !== undefined)
    config.statementTimeZone = statementTimeZone(options.statementTimeZone, '--statement-timezone');
  // The sandbox merchant exists in sandbox mode, and beside a real payment URL only when its key
  // is given: how further instances join the first one's sandbox (README, several instances).
  let merchantKey: string | undefined =
    options.sandboxMerchantKey ?? process.env.CARDPAY_SANDBOX_MERCHANT_KEY;
  // In sandbox mode the key is kept beside the master key, so a merchant's saved calls survive
  // a restart (an in-memory database gets a new one each time).
  if (sandboxMode)
    merchantKey ??= keptSandboxValue(
      db,
      'sandbox-merchant-key',
      /^sk_sandbox_[0-9a-f]{32}$/,
      newApiKey,
    );
  let webhookSecret: string | undefined;
  if (merchantKey) {
    const merchant = sandboxMerchant(merchantKey);
    if (options.sandboxWebhookUrl) {
      webhookSecret =
        options.sandboxWebhookSecret ??
        process.env.CARDPAY_SANDBOX_WEBHOOK_SECRET ??
        keptSandboxValue(db, 'sandbox-webhook-secret', /^whsec_[0-9a-f]{48}$/, newWebhookSecret);
      merchant.webhook = {
        url: webhookUrl(options.sandboxWebhookUrl, '--sandbox-webhook-url'),
        secret: webhookSecret,
      };
    }
    config.merchants.push(merchant);
  }
  if (options.webhookRetryBaseMs !== undefined)
    config.webhookRetryBaseMs = options.webhookRetryBaseMs;
  if (options.webhookTimeoutMs !== undefined) config.webhookTimeoutMs = options.webhookTimeoutMs;
  if (options.config) config = loadConfigFile(options.config, config);
  if (options.configObject) config = applyConfig(options.configObject, config);
  // After the config is known good: a start that stops on a bad config says nothing of a key.
  const masterKey = masterKeyFor(options, sandboxMode, db);

  // Each service logs under its own name: the sandbox's lines are the payment platform's.
  const loggerFor = (name: string) =>
    options.logLevel === 'silent'
      ? false
      : loggerOptions(options.logLevel ?? 'info', options.logStream, name);
  // Loaded only when asked for: an embedded platform (and the test kit) never loads `pg`.
  const store: Store = postgres
    ? await (require('./store/postgres') as typeof PostgresModule).PostgresStore.open(db, {
        max: options.dbPool,
        onError: (error: Error) => options.warn?.(`database connection lost: ${error.message}`),
      })
    : new SqliteStore(db, { busyTimeoutMs: options.busyTimeoutMs });
  try {
    const sealer = new Sealer(masterKey, options.seal ?? 'aes-256-gcm');
    await checkSealing(store, sealer.mode);
    const { fresh } = await checkMasterKey(store, sealer);
    const began = Date.now();
    const rewritten = await keyIdempotencyAtRest(store, sealer, fresh);
    if (rewritten !== undefined && !fresh)
      options.warn?.(
        `upgrade: ${rewritten} idempotency records keyed and sealed, database scrubbed, in ${Date.now() - began} ms`,
      );
  } catch (error) {
    await store.close();
    throw error;
  }
  let sandbox: RunningPlatform['sandbox'];
  let paymentUrl = options.paymentUrl;
  let app: FastifyInstance | undefined;
  let metrics: { server: Server; url: string } | undefined;
  try {
    if (sandboxMode) {
      const sandboxDb = options.sandboxDb ?? sandboxDbFor(db);
      // On PostgreSQL nothing else made the folder the sandbox's file goes in.
      if (sandboxDb !== ':memory:') makeDataFolder(dirname(sandboxDb));
      const sandboxApp = await buildSandbox({
        db: sandboxDb,
        slowDelayMs: options.sandboxSlowDelayMs,
        chargeDelayMs: options.sandboxChargeDelayMs,
        // Its lines carry its own name: they are the payment platform's, not the platform's.
        logger: loggerFor('sandbox-payment-platform'),
      });
      const url = await sandboxApp.listen({
        host: options.sandboxHost ?? '127.0.0.1',
        port: options.sandboxPaymentsPort ?? 8788,
      });
      sandbox = { url: url.replace('[::1]', 'localhost'), app: sandboxApp, db: sandboxDb };
      paymentUrl = sandbox.url;
    }
    const built = await buildApp({
      store,
      config,
      masterKey,
      paymentUrl: paymentUrl!,
      logger: loggerFor('cardpay-platform'),
      soter: soterFor(options, sandboxMode, config),
      wechatApiUrl: options.wechatApiUrl,
      ...(options.dashboard === false ? { dashboard: false } : {}),
      ...(options.seal ? { seal: options.seal } : {}),
      reconcile: true,
      clock: options.clock,
      limits: options.limits,
    });
    app = built.app;
    const ctx = built.ctx;
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8787 });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    const host = options.host ?? '127.0.0.1';
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (options.metricsPort !== undefined)
      metrics = await serveMetrics(ctx, options.metricsHost ?? '127.0.0.1', options.metricsPort);
    return {
      url,
      app,
      ctx,
      store,
      sandbox,
      ...(metrics ? { metricsUrl: metrics.url } : {}),
      sandboxMerchant: merchantKey
        ? { id: 'mch_sandbox', apiKey: merchantKey, ...(webhookSecret ? { webhookSecret } : {}) }
        : undefined,
      async close() {
        if (metrics) await new Promise((r) => metrics!.server.close(r));
        await app!.close();
        if (sandbox) await sandbox.app.close();
        await store.close();
      },
    };
  } catch (error) {
    if (app) await app.close().catch(() => undefined);
    if (sandbox) await sandbox.app.close().catch(() => undefined);
    await store.close();
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE')
      throw new StartupError(
        `the address is already in use (${e.message.replace(/^listen /, '')})`,
      );
    throw error;
  }
}

/** `GET /metrics` (Prometheus text format) on a listener of its own, off the public port. */
async function serveMetrics(ctx: Ctx, host: string, port: number) {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    ctx.metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': ctx.metrics.contentType }).end(text),
      (error: Error) =>
        res
          .writeHead(500, { 'content-type': 'text/plain' })
          .end(`metrics failed: ${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as { port: number };
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`,
  };
}
