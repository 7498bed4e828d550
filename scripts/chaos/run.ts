// The chaos run: many terminals pay through fault proxies on both hops while the platform is
// killed (-9) and restarted on the same database; then the money invariants are checked against
// the payment platform's own records. `npm run chaos` and test/chaos.test.ts both call runChaos.
import { exec, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Client } from 'pg';
import { Checkout, type CheckoutSnapshot } from '../../packages/sdk/src/core/checkout';
import { createNodeHost, MemoryStorage, type NodeHost } from '../../packages/sdk/src/hosts/node';
import { buildSandbox, SANDBOX_CARDS } from '../../packages/platform/src/sandbox/payment-platform';
import {
  FAULT_KINDS,
  seededRandom,
  startFaultProxy,
  type FaultProxy,
  type FaultRates,
} from '../../packages/testing/src/fault-proxy';
import { repositoryRoot } from '../root';
import { LOAD_TOOL_LIMITS } from '../load-limits';
import { verifyWebhook } from '../../packages/sdk/src/webhooks';
import { checkInvariants, waitSettled, type Violation } from './invariants';
import { TcpRelay } from './relay';

export interface ChaosOptions {
  /** Checkouts to attempt in all. */
  checkouts: number;
  terminals: number;
  /** Fault rate per request on each hop, spread over the fault kinds. */
  faultRate?: number;
  /** Mean time between kill -9s of the platform (0: never). */
  killEveryMs?: number;
  seed?: number;
  /** Progress lines (the command prints them; the test stays quiet). */
  log?: (line: string) => void;
  /** Keep the databases (their folder is in the report) instead of deleting them (SQLite only). */
  keep?: boolean;
  /** Run on PostgreSQL: an admin URL; a database is made for the run and dropped after it. */
  postgres?: string;
  /** Platform instances on that PostgreSQL database (default 2), killed one at a time. */
  instances?: number;
  /**
   * Mean time between faults of the database itself (PostgreSQL only; 0 or absent: none): the
   * server restarted (every connection of every instance ended, new ones refused for 1-4 s) or
   * one instance cut off from it for 2-10 s while the others go on.
   */
  databaseFaultEveryMs?: number;
  /**
   * A shell command that crashes the PostgreSQL server itself and starts it again (for example
   * `pg_ctlcluster 15 main stop -m immediate && pg_ctlcluster 15 main start`), run for a database
   * restart in place of ending the connections: what was committed without waiting for the disk
   * and not yet written is lost, as in a real crash. It stops every database of that server: for
   * a machine of one's own only.
   */
  databaseCrashCommand?: string;
  /**
   * With database faults: checkouts go on past `checkouts` until the database has failed at least
   * this many times under their traffic (a faster platform runs the same checkouts in less time,
   * and would see fewer faults), up to ten times `checkouts`.
   */
  minDatabaseFaults?: number;
}

/** What the database faults did, and what was seen of the instances meanwhile. */
export interface DatabaseFaultReport {
  restarts: number;
  cutoffs: number;
  /** Readiness probes made during an outage (each answered 503 with the database unavailable). */
  probedWhileDown: number;
  /** Instances seen ready again after an outage, by themselves (no restart). */
  recoveries: number;
  longestRecoveryMs: number;
  /** From the instances' metrics at the end (since each one's last start). */
  errorsCounted: number;
  recoveriesCounted: number;
}

export interface ChaosReport {
  checkouts: number;
  outcomes: Record<string, number>;
  mergedOrders: number;
  refundsAsked: number;
  faults: { terminalHop: Record<string, number>; paymentHop: Record<string, number> };
  /** The platform's answers through the terminal hop, by status code. */
  statuses: Record<string, number>;
  database?: DatabaseFaultReport;
  restarts: number;
  instances: number;
  store: 'sqlite' | 'postgres';
  webhookFailuresInjected: number;
  records: { charges: number; refunds: number; sessions: number; payments: number; events: number };
  violations: Violation[];
  seconds: number;
  /** With `keep`: the platform's and the payment platform's database files. */
  databases?: { platform: string; payments: string };
}

const PASSWORD = '204816';
const MASTER_KEY = '5a'.repeat(32);
const MERCHANT_KEY = `sk_sandbox_${'c4'.repeat(16)}`;
const WEBHOOK_SECRET = `whsec_chaos_${'9'.repeat(24)}`;

/** Every sandbox card, weighted toward the approved ones. */
const CARDS: { pan: string; weight: number }[] = [
  { pan: SANDBOX_CARDS.approvedUnionPay19, weight: 6 },
  { pan: SANDBOX_CARDS.approvedVisa, weight: 4 },
  { pan: SANDBOX_CARDS.approvedMastercard, weight: 3 },
  { pan: SANDBOX_CARDS.approvedUnionPay16, weight: 3 },
  { pan: SANDBOX_CARDS.refundsFail, weight: 2 },
  { pan: SANDBOX_CARDS.declined, weight: 1 },
  { pan: SANDBOX_CARDS.insufficientFunds, weight: 1 },
  { pan: SANDBOX_CARDS.slow, weight: 1 },
  { pan: SANDBOX_CARDS.flaky, weight: 2 },
];

function spread(rate: number): FaultRates {
  return Object.fromEntries(FAULT_KINDS.map((k) => [k, rate / FAULT_KINDS.length]));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The platform as an operator runs it: its own process, killable, on a database file. */
class PlatformProcess {
  private child?: ChildProcess;
  restarts = 0;
  /** Exits nobody asked for, with the end of what the process wrote to stderr. */
  readonly crashes: string[] = [];
  constructor(
    private readonly args: string[],
    readonly url: string,
    readonly metricsUrl?: string,
  ) {}

  /**
   * Starts it and waits until it serves. A start that fails (its database unreachable just
   * then) is tried again, as a supervisor would, for up to 30 s.
   */
  async start(): Promise<void> {
    const deadline = Date.now() + 30000;
    let stderr = '';
    for (;;) {
      const child = spawn(
        process.execPath,
        [join(repositoryRoot(), 'packages/platform/bin/cardpay-platform.js'), ...this.args],
        {
          env: {
            ...process.env,
            CARDPAY_MASTER_KEY: MASTER_KEY,
            CARDPAY_SANDBOX_MERCHANT_KEY: MERCHANT_KEY,
            CARDPAY_SANDBOX_WEBHOOK_SECRET: WEBHOOK_SECRET,
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c).slice(-8000)));
      this.child = child;
      for (;;) {
        if (child.exitCode !== null) break;
        if (await healthy(this.url)) {
          // From now on an exit not asked for (this.child still this one) is a crash.
          child.once('exit', (code, signal) => {
            if (this.child === child)
              this.crashes.push(`${this.url} exited (${code ?? signal}): ${stderr.slice(-3000)}`);
          });
          return;
        }
        if (Date.now() > deadline) throw new Error(`the platform did not start: ${stderr}`);
        await sleep(50);
      }
      if (Date.now() > deadline) throw new Error(`the platform exited at start: ${stderr}`);
      await sleep(300);
    }
  }

  /** `kill -9`: no shutdown, whatever was in flight is cut where it stood. */
  kill(): Promise<void> {
    return this.end('SIGKILL');
  }

  async restart(): Promise<void> {
    await this.kill();
    this.restarts++;
    await this.start();
  }

  /** A clean stop (SIGTERM: requests in flight finish). */
  stop(): Promise<void> {
    return this.end('SIGTERM');
  }

  private end(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A database of its own for one run, on the PostgreSQL server an admin URL reaches. */
async function pgDatabase(
  admin: string,
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `cardpay_chaos_${process.pid}_${Date.now()}`;
  const run = async (sql: string) => {
    const c = new Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

function healthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${url}/v1/health`, { timeout: 500 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** The instance's readiness, asked directly (not through the hop); undefined when it is not up. */
function readiness(url: string): Promise<{ status: number; database?: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(`${url}/v1/health/ready`, { timeout: 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as {
            checks?: { database?: string };
          };
          resolve({ status: res.statusCode!, database: body.checks?.database });
        } catch {
          resolve(undefined);
        }
      });
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** A counter's value in an instance's Prometheus text (0 when it is not up or not there). */
function scrape(url: string | undefined, name: string): Promise<number> {
  if (!url) return Promise.resolve(0);
  return new Promise((resolve) => {
    const req = request(url, { timeout: 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(Buffer.concat(chunks).toString());
        resolve(m ? Number(m[1]) : 0);
      });
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Runs the operator's crash-and-start command; a failure is said, and the run goes on. */
function crash(command: string, log: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const began = Date.now();
    exec(command, (error, _out, err) => {
      if (error) log(`database crash command failed: ${err.trim() || error.message}`);
      else log(`database crashed and started again in ${Date.now() - began} ms`);
      resolve();
    });
  });
}

/** Ends every connection to database `name`, as a server restart does (admin URL `admin`). */
async function terminateBackends(admin: string, name: string): Promise<void> {
  const c = new Client({ connectionString: admin });
  await c.connect();
  try {
    await c.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
  } finally {
    await c.end();
  }
}

/**
 * A merchant's server calling the merchant API: retried on anything but an answer, for up to
 * three minutes. A request cut off by a database outage keeps its key "in progress" until its
 * lease expires (the record cannot be released without the database), so under dense faults one
 * key may wait out several leases.
 */
async function merchantCall(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  idempotencyKey?: string,
): Promise<{ status: number; body: any }> {
  const giveUpAt = Date.now() + 180000;
  let last = 'nothing';
  for (let attempt = 0; ; attempt++) {
    const answer = await new Promise<{ status: number; body: any } | undefined>((resolve) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        `${url}${path}`,
        {
          method,
          timeout: 3000,
          headers: {
            authorization: `Bearer ${MERCHANT_KEY}`,
            ...(payload ? { 'content-type': 'application/json' } : {}),
            ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              resolve({
                status: res.statusCode!,
                body: JSON.parse(Buffer.concat(chunks).toString()),
              });
            } catch {
              resolve(undefined); // a proxy's 502 page: not an answer
            }
          });
          res.on('error', () => resolve(undefined));
        },
      );
      req.on('error', () => resolve(undefined));
      req.on('timeout', () => req.destroy());
      req.end(payload);
    });
    if (answer && answer.status < 500 && answer.status !== 409) return answer;
    if (answer && answer.status === 409 && answer.body?.error?.code !== 'idempotency_in_progress')
      return answer;
    last = answer ? `${answer.status} ${answer.body?.error?.code ?? ''}` : 'no answer';
    if (Date.now() > giveUpAt)
      throw new Error(`${method} ${path}: no final answer in 3 minutes (last: ${last})`);
    await sleep(Math.min(2000, 100 + attempt * 50));
  }
}

interface Job {
  n: number;
  pan: string;
  amount?: number;
  orderRef?: string;
  /** The second opener of a merchant order another terminal is paying. */
  second?: boolean;
}

export interface ClientOutcome {
  job: Job;
  state: string;
  sessionId?: string;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now();
  const log = options.log ?? (() => undefined);
  const random = seededRandom(options.seed ?? 7);
  const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)];
  const weighted = () => {
    let x = random() * CARDS.reduce((s, c) => s + c.weight, 0);
    for (const c of CARDS) if ((x -= c.weight) < 0) return c.pan;
    return CARDS[0].pan;
  };
  const dir = mkdtempSync(join(tmpdir(), 'cardpay-chaos-'));
  const rate = options.faultRate ?? 0.08;

  // The payment platform: in this process, on its own file, outliving every platform restart.
  const sandboxDb = join(dir, 'payment-platform.db');
  const sandbox: FastifyInstance = await buildSandbox({ db: sandboxDb, slowDelayMs: 1200 });
  const sandboxUrl = await sandbox.listen({ port: 0, host: '127.0.0.1' });
  const paymentHop = await startFaultProxy({
    target: sandboxUrl,
    rates: spread(rate),
    seed: (options.seed ?? 7) + 1,
    maxDelayMs: 400,
  });

  // The merchant's notification receiver: checks each signature, fails one delivery in ten, at
  // most twice for one event, so that the platform's retries are exercised while every event
  // still arrives within the wait below (a third failure would put the next attempt 18 s away,
  // a fourth 72 s: a schedule that is right for a merchant, too long for a test).
  const received = new Set<string>();
  const failedOf = new Map<string, number>();
  let webhookFailuresInjected = 0;
  const receiver: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let id = '';
      try {
        id = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id);
      } catch {
        // Not JSON: the signature check below refuses it.
      }
      const failed = failedOf.get(id) ?? 0;
      if (failed < 2 && random() < 0.1) {
        failedOf.set(id, failed + 1);
        webhookFailuresInjected++;
        res.writeHead(500).end();
        return;
      }
      try {
        const event = verifyWebhook(
          Buffer.concat(chunks),
          req.headers['cardpay-signature'] ?? req.headers['x-cardpay-signature'],
          WEBHOOK_SECRET,
        );
        received.add(event.id);
        res.writeHead(200).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      ...LOAD_TOOL_LIMITS,
      reconcile: { everyMs: 200, neverReceivedAfterMs: 4000 },
    }),
  );
  // The platform's database: a file beside the run, or a PostgreSQL database of its own that
  // several instances share (behind the terminal hop's proxy, taken in turn).
  const pg = options.postgres ? await pgDatabase(options.postgres) : undefined;
  const platformDb = pg?.url ?? join(dir, 'cardpay.db');
  const instances: PlatformProcess[] = [];
  // On PostgreSQL each instance reaches the server through a relay of its own: how one instance
  // is cut off alone, or all of them at once.
  const relays: TcpRelay[] = [];
  for (let i = 0; i < (pg ? (options.instances ?? 2) : 1); i++) {
    const port = await freePort();
    const metricsPort = await freePort();
    const relay = pg ? await TcpRelay.before(pg.url) : undefined;
    if (relay) relays.push(relay);
    instances.push(
      new PlatformProcess(
        [
          '--port',
          String(port),
          '--metrics-port',
          String(metricsPort),
          '--db',
          relay ? relay.urlFor(pg!.url) : platformDb,
          '--payment-url',
          paymentHop.url,
          '--payment-timeout-ms',
          '700',
          '--config',
          config,
          '--sandbox-webhook-url',
          receiverUrl,
          '--webhook-retry-base-ms',
          '100',
          '--log-level',
          'error',
        ],
        `http://127.0.0.1:${port}`,
        `http://127.0.0.1:${metricsPort}/metrics`,
      ),
    );
  }
  for (const p of instances) await p.start();
  // Whatever goes wrong below, no platform process may outlive the run.
  const orphan = () => instances.forEach((p) => void p.kill());
  process.once('exit', orphan);
  const terminalHop = await startFaultProxy({
    target: instances.map((p) => p.url),
    rates: spread(rate),
    seed: (options.seed ?? 7) + 2,
    maxDelayMs: 400,
  });

  let driving = true;
  // What the database faults did, and what the instances' own metrics counted of them.
  const database: DatabaseFaultReport = {
    restarts: 0,
    cutoffs: 0,
    probedWhileDown: 0,
    recoveries: 0,
    longestRecoveryMs: 0,
    errorsCounted: 0,
    recoveriesCounted: 0,
  };
  /** Adds what an instance's metrics say of database errors and recoveries since it started. */
  const countedBy = async (p: PlatformProcess) => {
    database.errorsCounted += await scrape(p.metricsUrl, 'cardpay_database_errors_total');
    database.recoveriesCounted += await scrape(p.metricsUrl, 'cardpay_database_recoveries_total');
  };

  // kill -9 of one instance at random moments while the checkouts run (the others serve on).
  const killer = (async () => {
    const every = options.killEveryMs ?? 0;
    if (!every) return;
    while (driving) {
      await sleep(every * (0.5 + random()));
      if (!driving) break;
      const victim = pick(instances);
      // What it counted since its last start, before the kill takes it.
      await countedBy(victim);
      await victim.kill();
      await sleep(50 + random() * 300);
      await victim.restart();
      log(`restart ${instances.reduce((n, p) => n + p.restarts, 0)}`);
    }
  })();

  // Faults of the database itself, at seeded moments (PostgreSQL only). During each outage the
  // affected instances must say they are not ready; after it, each must be ready again by
  // itself, without a restart. Instances killed meanwhile are left out of both looks.
  const faultViolations: Violation[] = [];
  const notReady = async (affected: PlatformProcess[]) => {
    // The readiness answer is kept for a second: look after that.
    await sleep(1100);
    await Promise.all(
      affected.map(async (p) => {
        const before = p.restarts;
        const r = await readiness(p.url);
        if (!r || p.restarts !== before) return;
        database.probedWhileDown++;
        if (r.status !== 503 || r.database !== 'unavailable')
          faultViolations.push({
            rule: 'ready without its database',
            detail: `${p.url} answered ${r.status} (database ${r.database}) during an outage`,
          });
      }),
    );
  };
  const recovered = (affected: PlatformProcess[], since: number) =>
    Promise.all(
      affected.map(async (p) => {
        const before = p.restarts;
        for (;;) {
          const r = await readiness(p.url);
          if (p.restarts !== before) return; // killed meanwhile: not a recovery of its own
          if (r?.database === 'ok') {
            database.recoveries++;
            database.longestRecoveryMs = Math.max(database.longestRecoveryMs, Date.now() - since);
            return;
          }
          if (Date.now() - since > 20000) {
            faultViolations.push({
              rule: 'instance did not recover by itself',
              detail: `${p.url} still without its database 20 s after it came back`,
            });
            return;
          }
          await sleep(200);
        }
      }),
    );
  const databaseFaults = (async () => {
    const every = options.databaseFaultEveryMs ?? 0;
    if (!pg || !every) return;
    while (driving) {
      await sleep(every * (0.5 + random()));
      if (!driving) break;
      if (random() < 0.4) {
        // PostgreSQL restarted: no new connection is taken, the server ends every one of this
        // database (each client hears why), and for 1-4 s nothing gets through.
        const outageMs = 1000 + random() * 3000;
        await Promise.all(relays.map((r) => r.refuseNew()));
        if (options.databaseCrashCommand) await crash(options.databaseCrashCommand, log);
        else await terminateBackends(options.postgres!, pg.name).catch(() => undefined);
        await Promise.all(relays.map((r) => r.cut()));
        database.restarts++;
        log(`database restart ${database.restarts}: down ${Math.round(outageMs)} ms`);
        const began = Date.now();
        await notReady(instances);
        await sleep(Math.max(0, outageMs - (Date.now() - began)));
        await Promise.all(relays.map((r) => r.start()));
        await recovered(instances, Date.now());
      } else {
        // One instance cut off for 2-10 s: its connections dropped, new ones refused, while
        // the others go on (and take over its leases once they expire).
        const i = Math.floor(random() * instances.length);
        const outageMs = 2000 + random() * 8000;
        await relays[i].cut();
        database.cutoffs++;
        log(`instance ${i + 1} cut off from the database for ${Math.round(outageMs)} ms`);
        const began = Date.now();
        await notReady([instances[i]]);
        await sleep(Math.max(0, outageMs - (Date.now() - began)));
        await relays[i].start();
        await recovered([instances[i]], Date.now());
      }
    }
  })();

  // ---- the checkouts ---------------------------------------------------------------------------
  const outcomes: ClientOutcome[] = [];
  const paidOrders: { orderRef: string; amount: number }[] = [];
  const secondOpeners: Job[] = [];
  let mergedOrders = 0;
  let next = 0;

  const makeJob = async (): Promise<Job | undefined> => {
    const second = secondOpeners.shift();
    if (second) return second;
    const faultsToCome =
      pg && options.databaseFaultEveryMs
        ? (options.minDatabaseFaults ?? 0) - (database.restarts + database.cutoffs)
        : 0;
    if (next >= options.checkouts && (faultsToCome <= 0 || next >= 10 * options.checkouts))
      return undefined;
    const n = next++;
    const pan = weighted();
    if (random() < 0.4) {
      const amount = 500 + Math.floor(random() * 150000);
      const created = await merchantCall(terminalHop.url, 'POST', '/v1/merchant/orders', {
        merchantOrderId: `chaos-${n}`,
        amount,
        currency: 'CNY',
      });
      if (created.status >= 300)
        throw new Error(`order not created: ${JSON.stringify(created.body)}`);
      const orderRef = created.body.orderRef as string;
      if (random() < 0.3) {
        mergedOrders++;
        secondOpeners.push({ n, pan: weighted(), orderRef, second: true });
      }
      return { n, pan, orderRef };
    }
    return { n, pan, amount: 100 + Math.floor(random() * 200000) };
  };

  const runJob = async (host: NodeHost, job: Job) => {
    const checkout = new Checkout({
      host,
      platformUrl: terminalHop.url,
      merchantId: 'mch_sandbox',
      ...(job.orderRef ? { orderRef: job.orderRef } : { amount: job.amount }),
      network: { timeoutMs: 2500, maxAttempts: 4, backoffMs: 60 },
      pollIntervalMs: 150,
      pollTimeoutMs: 8000,
      iterations: 1000,
    });
    const snap = (): CheckoutSnapshot => checkout.snapshot;
    // A shopper taps on until the payment ends, up to a patience of 14 actions.
    for (let action = 0; action < 14; action++) {
      const s = snap();
      if (['succeeded', 'failed', 'cancelled', 'expired'].includes(s.state) && !s.busy) break;
      if (s.state === 'enrolling') await checkout.enrol(PASSWORD, PASSWORD);
      else if (s.state === 'awaiting_confirmation') await checkout.confirm();
      else if (s.state === 'awaiting_authentication') {
        const mandatory = s.authPrompt?.mandatory ?? [];
        const wrongCvv = random() < 0.05;
        const wrongPassword = random() < 0.05;
        await checkout.authenticate([
          { method: 'password', password: wrongPassword ? '999999' : PASSWORD },
          ...(mandatory.includes('cvv') || s.authPrompt?.required === 2
            ? [{ method: 'cvv' as const, cvv: wrongCvv ? '999' : '123' }]
            : []),
        ]);
      } else if (s.state === 'processing') {
        if (s.stillProcessing || s.error) await checkout.refresh();
        else await sleep(200);
      } else {
        // At the entry (first tap, or after an error the shopper sees): scan the card again.
        host.scanner.push(job.pan);
        if (s.state === 'idle' && !s.error && action === 0) await checkout.begin();
        else {
          await checkout.retry();
          await checkout.begin();
        }
      }
    }
    const final = snap();
    outcomes.push({ job, state: final.state, sessionId: final.sessionId });
    if (final.state === 'succeeded' && job.orderRef)
      paidOrders.push({ orderRef: job.orderRef, amount: final.payment?.charged ?? 0 });
    checkout.destroy();
    // Drain whatever scan was left queued, so the next job starts clean.
    while (host.scanner.pending) await host.scanCode({ scanType: ['qrCode'] });
  };

  const terminalLoop = async () => {
    const host = createNodeHost({ storage: new MemoryStorage() });
    for (;;) {
      const job = await makeJob();
      if (!job) return;
      await runJob(host, job);
      if (outcomes.length % 100 === 0) log(`${outcomes.length} checkouts`);
    }
  };
  await Promise.all(Array.from({ length: options.terminals }, terminalLoop));

  // Refunds of paid merchant orders: a full one retried under one key, or two partial ones
  // racing (together more than was charged), each retried under its own key.
  let refundsAsked = 0;
  await Promise.all(
    paidOrders
      .filter(() => random() < 0.5)
      .map(async (o, i) => {
        const key = () => randomBytes(12).toString('hex');
        if (i % 2 === 0) {
          refundsAsked++;
          const k = key();
          await merchantCall(
            terminalHop.url,
            'POST',
            `/v1/merchant/orders/${o.orderRef}/refunds`,
            {},
            k,
          );
          await merchantCall(
            terminalHop.url,
            'POST',
            `/v1/merchant/orders/${o.orderRef}/refunds`,
            {},
            k,
          );
        } else {
          refundsAsked += 2;
          const part = Math.max(1, Math.ceil((o.amount * 2) / 3));
          await Promise.all([
            merchantCall(
              terminalHop.url,
              'POST',
              `/v1/merchant/orders/${o.orderRef}/refunds`,
              { amount: part },
              key(),
            ),
            merchantCall(
              terminalHop.url,
              'POST',
              `/v1/merchant/orders/${o.orderRef}/refunds`,
              { amount: part },
              key(),
            ),
          ]);
        }
      }),
  );

  driving = false;
  await killer;
  await databaseFaults;
  // What the instances counted of it: each before every kill (above) and now, since it started.
  for (const p of instances) await countedBy(p);
  // ---- settle: faults off, the platform up, the reconciler and the notifier left to finish -----
  terminalHop.setRates({});
  paymentHop.setRates({});
  log('settling');
  await waitSettled(platformDb, 45000);

  const result = await checkInvariants({
    platformDb,
    paymentDb: sandboxDb,
    clients: outcomes,
    received,
  });

  const crashes: Violation[] = instances.flatMap((p) =>
    p.crashes.map((detail) => ({ rule: 'platform crashed', detail })),
  );
  // Never a 500: an instance without its database answers 503 (retryable) or a right answer.
  const serverErrors: Violation[] = terminalHop.statuses['500']
    ? [
        {
          rule: 'platform answered 500',
          detail: `${terminalHop.statuses['500']} answers with status 500`,
        },
      ]
    : [];
  await terminalHop.close();
  for (const p of instances) await p.stop();
  for (const r of relays) await r.cut();
  process.off('exit', orphan);
  await pg?.drop();
  await paymentHop.close();
  await sandbox.close();
  await new Promise((r) => receiver.close(r));
  if (!options.keep) rmSync(dir, { recursive: true, force: true });

  const tally = (xs: string[]) =>
    xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});
  const faults = (p: FaultProxy) =>
    Object.fromEntries(Object.entries(p.counts).filter(([, v]) => v > 0)) as Record<string, number>;
  return {
    checkouts: outcomes.length,
    outcomes: tally(outcomes.map((o) => o.state)),
    mergedOrders,
    refundsAsked,
    faults: { terminalHop: faults(terminalHop), paymentHop: faults(paymentHop) },
    statuses: { ...terminalHop.statuses },
    ...(pg && options.databaseFaultEveryMs ? { database } : {}),
    restarts: instances.reduce((n, p) => n + p.restarts, 0),
    instances: instances.length,
    store: pg ? 'postgres' : 'sqlite',
    webhookFailuresInjected,
    records: result.records,
    violations: [...result.violations, ...faultViolations, ...serverErrors, ...crashes],
    seconds: (Date.now() - t0) / 1000,
    ...(options.keep ? { databases: { platform: platformDb, payments: sandboxDb } } : {}),
  };
}
