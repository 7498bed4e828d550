import type { FastifyInstance } from 'fastify';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  type PlatformConfig,
} from './config';
import { loggerOptions } from './log';
import { buildSandbox } from './sandbox/payment-platform';
import { SandboxSoterVerifier } from './sandbox/soter';
import { randomHex, Sealer } from './secrets';
import type { SoterVerifier } from './soter';
import { SqliteStore } from './store/sqlite';
import type * as PostgresModule from './store/postgres';
import type { Store } from './store/types';

export interface PlatformOptions {
  host?: string;
  port?: number;
  /** SQLite file, `:memory:`, or a `postgres://` URL (several instances on one database). */
  db?: string;
  /** Production: the payment platform to charge through. Without it, the sandbox starts in-process. */
  paymentUrl?: string;
  sandboxPaymentsPort?: number;
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
  /** pino level, or 'silent'. */
  logLevel?: string;
  logStream?: NodeJS.WritableStream;
  /**
   * Checks SOTER assertions (production: `WeChatSoterVerifier`). Sandbox mode installs the
   * sandbox's stand-in unless one is given; without one, the platform does not offer SOTER.
   */
  soter?: SoterVerifier;
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
 * A wrong master key would open no secret: every signed request would fail. The database keeps a
 * value sealed under the key it was made with; one that does not open stops the start.
 */
async function checkMasterKey(store: Store, sealer: Sealer): Promise<void> {
  const context = 'master-key-check';
  // Written only if absent, then read back: of instances starting together, the first one's
  // value stands and every one checks its own key against it.
  if (!(await store.getMeta(context)))
    await store.putMeta(context, sealer.seal('cardpay', context));
  const kept = (await store.getMeta(context))!;
  try {
    sealer.open(kept, context);
  } catch {
    throw new StartupError(
      'CARDPAY_MASTER_KEY does not open the secrets in this database: it is not the key the database was made with',
    );
  }
}

function keptSandboxKey(db: string): string {
  if (db === ':memory:' || isPostgresUrl(db)) return newApiKey();
  const file = `${db}.sandbox-merchant-key`;
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (/^sk_sandbox_[0-9a-f]{32}$/.test(kept)) return kept;
  }
  const key = newApiKey();
  writeFileSync(file, key + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return key;
}

function soterFor(options: PlatformOptions, sandbox: boolean): SoterVerifier | undefined {
  return options.soter ?? (sandbox ? new SandboxSoterVerifier() : undefined);
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
  const sandboxMode = !options.paymentUrl;
  const db = options.db ?? './data/cardpay.db';
  const postgres = isPostgresUrl(db);
  if (db !== ':memory:' && !postgres) {
    try {
      // The data folder holds the database (and, in sandbox mode, its key): the platform's user only.
      mkdirSync(dirname(db), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StartupError(
        `cannot create the database folder ${dirname(db)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  }
  const masterKey = masterKeyFor(options, sandboxMode, db);

  let config: PlatformConfig = defaultConfig();
  if (options.paymentTimeoutMs !== undefined) config.paymentTimeoutMs = options.paymentTimeoutMs;
  if (options.sessionTtlS !== undefined) config.sessionTtlMs = options.sessionTtlS * 1000;
  if (options.reconcileEveryMs !== undefined) config.reconcileEveryMs = options.reconcileEveryMs;
  // The sandbox merchant exists in sandbox mode, and beside a real payment URL only when its key
  // is given: how further instances join the first one's sandbox (README, several instances).
  let merchantKey: string | undefined =
    options.sandboxMerchantKey ?? process.env.CARDPAY_SANDBOX_MERCHANT_KEY;
  // In sandbox mode the key is kept beside the master key, so a merchant's saved calls survive
  // a restart (an in-memory database gets a new one each time).
  if (sandboxMode) merchantKey ??= keptSandboxKey(db);
  let webhookSecret: string | undefined;
  if (merchantKey) {
    const merchant = sandboxMerchant(merchantKey);
    if (options.sandboxWebhookUrl) {
      webhookSecret =
        options.sandboxWebhookSecret ??
        process.env.CARDPAY_SANDBOX_WEBHOOK_SECRET ??
        newWebhookSecret();
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

  const logger =
    options.logLevel === 'silent'
      ? false
      : loggerOptions(options.logLevel ?? 'info', options.logStream);
  // Loaded only when asked for: an embedded platform (and the test kit) never loads `pg`.
  const store: Store = postgres
    ? await (require('./store/postgres') as typeof PostgresModule).PostgresStore.open(db, {
        onError: (error: Error) => options.warn?.(`database connection lost: ${error.message}`),
      })
    : new SqliteStore(db, { busyTimeoutMs: options.busyTimeoutMs });
  try {
    await checkMasterKey(store, new Sealer(masterKey));
  } catch (error) {
    await store.close();
    throw error;
  }
  let sandbox: RunningPlatform['sandbox'];
  let paymentUrl = options.paymentUrl;
  try {
    if (sandboxMode) {
      const sandboxDb = options.sandboxDb ?? sandboxDbFor(db);
      const sandboxApp = await buildSandbox({
        db: sandboxDb,
        slowDelayMs: options.sandboxSlowDelayMs,
        logger,
      });
      const url = await sandboxApp.listen({
        host: options.host ?? '127.0.0.1',
        port: options.sandboxPaymentsPort ?? 8788,
      });
      sandbox = { url: url.replace('[::1]', 'localhost'), app: sandboxApp, db: sandboxDb };
      paymentUrl = sandbox.url;
    }
    const { app, ctx } = await buildApp({
      store,
      config,
      masterKey,
      paymentUrl: paymentUrl!,
      logger,
      soter: soterFor(options, sandboxMode),
      reconcile: true,
      clock: options.clock,
      limits: options.limits,
    });
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8787 });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    const host = options.host ?? '127.0.0.1';
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return {
      url,
      app,
      ctx,
      store,
      sandbox,
      sandboxMerchant: merchantKey
        ? { id: 'mch_sandbox', apiKey: merchantKey, ...(webhookSecret ? { webhookSecret } : {}) }
        : undefined,
      async close() {
        await app.close();
        if (sandbox) await sandbox.app.close();
        await store.close();
      },
    };
  } catch (error) {
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
