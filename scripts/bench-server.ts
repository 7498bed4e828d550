// Full checkouts per second and step latency on the reference platform, against bare Fastify's
// request rate measured in the same run: on SQLite in memory with the sandbox payment platform in
// the platform's process (how DESIGN §4 sets the budgets), then with the payment platform in a
// process of its own, on a database file, and on PostgreSQL with one instance and with two
// (requests spread over both). Each server runs in its own process; the load generator (this
// process) uses keep-alive node:http and node:crypto signing, the same for all.
// Run: npm run bench:server   (BENCH_CONCURRENCY, BENCH_CHECKOUTS to change the load;
// BENCH_PG=postgres://… for the PostgreSQL server, default the local one; BENCH_PG=off skips it;
// BENCH_DB_POOL=n for n connections per PostgreSQL instance instead of the default)
import { LOAD_TOOL_LIMITS } from './load-limits';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { Client, Pool } from 'pg';
import { buildSandbox } from '../packages/platform/src/sandbox/payment-platform';
import type { DatabaseWait } from '../packages/platform/src/store/types';
import { startSandboxPlatform } from '../packages/testing/src/platform';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const CHECKOUTS = Number(process.env.BENCH_CHECKOUTS ?? 2000);
/** How long each measurement of bare Fastify lasts: about as long as a capacity load here. */
const BARE_MS = Number(process.env.BENCH_BARE_MS ?? 2000);
const STEPS = ['session', 'order', 'confirm', 'authenticate'] as const;
type Step = (typeof STEPS)[number];
const agent = new Agent({ keepAlive: true, maxSockets: 512 });

// ---- servers, each in a child process -------------------------------------------------------

/** `db`: a database for the platform; `payments`: join another instance's sandbox. */
async function serve(kind: string, db?: string, payments?: string): Promise<void> {
  if (kind === 'floor') {
    await serveFloor(db!, payments!);
  } else if (kind === 'bare') {
    const app = Fastify();
    app.get('/v1/health', async () => ({ status: 'ok' }));
    console.log(`URL ${await app.listen({ port: 0, host: '127.0.0.1' })}`);
  } else if (kind === 'payments') {
    // The payment platform is another company's system: in a process of its own, so that the
    // trading platform's CPU is its own.
    const app = await buildSandbox({ db: ':memory:' });
    console.log(`URL ${await app.listen({ port: 0, host: '127.0.0.1' })}`);
  } else {
    const p = await startSandboxPlatform({
      paymentTimeoutMs: 3000,
      configObject: LOAD_TOOL_LIMITS,
      sandboxMerchantKey: 'sk_sandbox_bench',
      // Its waits for the database and the payment platform, read around the steady load.
      metricsPort: 0,
      ...(db ? { db, sandboxDb: ':memory:' } : {}),
      ...(payments ? { paymentUrl: payments } : {}),
      // The connections of each PostgreSQL instance (--db-pool), to compare pool sizes.
      ...(process.env.BENCH_DB_POOL ? { dbPool: Number(process.env.BENCH_DB_POOL) } : {}),
    });
    console.log(`URL ${p.url} SANDBOX ${p.sandbox?.url ?? payments} METRICS ${p.metricsUrl}`);
  }
}

/**
 * The floor under the platform's step latency on PostgreSQL: each step's round trips as the
 * platform makes them, with nothing else. A session's one commit; the order's and the
 * confirmation's begin (without a flush) and commit; the authentication's begin with its lease,
 * its record, a request to the payment platform and its decision (three commits that wait for
 * the disk). Each round trip writes one row; no signature is checked, nothing is read or sealed,
 * and the payment platform is asked for a charge it does not have (its cheapest answer). What the
 * load generator sees of it at PostgreSQL x1's steady rate is what no platform making those round
 * trips could beat on this machine.
 */
async function serveFloor(db: string, payments: string): Promise<void> {
  // As many connections as the platform keeps: its default (6), or BENCH_DB_POOL's.
  const pool = new Pool({ connectionString: db, max: Number(process.env.BENCH_DB_POOL) || 6 });
  await pool.query('CREATE TABLE IF NOT EXISTS bench_floor (id TEXT PRIMARY KEY)');
  const id = () => randomBytes(12).toString('hex');
  const commit = () => pool.query('INSERT INTO bench_floor VALUES ($1)', [id()]);
  // One round trip of the simple protocol; the id is hex, safe to write into the text.
  const begin = () =>
    pool.query(
      `BEGIN; SET LOCAL synchronous_commit = off; INSERT INTO bench_floor VALUES ('${id()}'); COMMIT`,
    );
  const app = Fastify();
  app.post('/v1/sessions', async () => {
    await commit();
    return { sessionId: id() };
  });
  app.post('/v1/sessions/:id/order', async (req) => {
    await begin();
    await commit();
    const { amount } = req.body as { amount: number };
    return { confirmation: { confirmToken: id(), orderId: id(), amount } };
  });
  app.post('/v1/sessions/:id/confirm', async () => {
    await begin();
    await commit();
    return { authPrompt: { challenge: id(), mandatory: [] } };
  });
  app.post('/v1/sessions/:id/authenticate', async () => {
    await commit();
    await commit();
    await http(payments, 'GET', '/v1/charges/ch_bench_floor', {});
    await commit();
    return { state: 'succeeded' };
  });
  console.log(`URL ${await app.listen({ port: 0, host: '127.0.0.1' })}`);
}

function child(
  kind: string,
  db = '',
  payments = '',
): Promise<{ url: string; sandbox: string; metrics: string; proc: ChildProcess }> {
  const flags =
    process.env.BENCH_PROFILE && kind === 'platform'
      ? ['--cpu-prof', '--cpu-prof-dir=/tmp/cardpay-prof']
      : [];
  // Its stdin is this process's pipe: when this process ends, however it ends, the child does too.
  const proc = spawn(process.execPath, [...flags, __filename, 'serve', kind, db, payments], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c;
      // The whole line: a platform's names its sandbox and its metrics after its URL.
      const m = /URL (\S+)(?: SANDBOX (\S+) METRICS (\S+))?\n/.exec(out);
      if (m) resolve({ url: m[1], sandbox: m[2] ?? '', metrics: m[3] ?? '', proc });
    });
    proc.on('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

function stop(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    proc.removeAllListeners('exit');
    proc.once('exit', () => resolve());
    // SIGINT lets a profiled child write its profile; SIGKILL would lose it.
    proc.kill(process.env.BENCH_PROFILE ? 'SIGINT' : 'SIGKILL');
  });
}

// ---- a lean client --------------------------------------------------------------------------

function http(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        agent,
        hostname: u.hostname,
        port: u.port,
        method,
        path,
        headers: body
          ? {
              ...headers,
              'content-type': 'application/json',
              'content-length': String(Buffer.byteLength(body)),
            }
          : headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface Terminal {
  id: string;
  secret: Buffer;
  card: string;
}

/** Requests sent again after their connection was lost, as the SDK would (same key). */
export let resent = 0;

async function signed(url: string, t: Terminal, method: string, path: string, payload?: unknown) {
  const body = payload === undefined ? undefined : JSON.stringify(payload);
  const key = method === 'POST' ? randomBytes(12).toString('hex') : undefined;
  for (let attempt = 1; ; attempt++) {
    const ts = String(Math.floor(Date.now() / 1000));
    const nonce = randomBytes(16).toString('hex');
    const sig = createHmac('sha256', t.secret)
      .update([method, path, ts, nonce, sha(body ?? '')].join('\n'))
      .digest('hex');
    const headers: Record<string, string> = {
      'x-cardpay-terminal': t.id,
      'x-cardpay-timestamp': ts,
      'x-cardpay-nonce': nonce,
      'x-cardpay-signature': sig,
      ...(key ? { 'idempotency-key': key } : {}),
    };
    let res;
    try {
      res = await http(url, method, path, headers, body);
    } catch (error) {
      // A connection lost on the way (a keep-alive connection closed as it was reused): sent
      // again with a fresh signature and the same Idempotency-Key, so it acts at most once.
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (attempt >= 3 || !['ECONNRESET', 'EPIPE'].includes(code)) throw error;
      if (resent++ === 0) console.error(`bench: ${code} on ${method} ${path}; sent again`);
      continue;
    }
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.body}`);
    return JSON.parse(res.body);
  }
}

/** CPU seconds a process has used (user + system), from /proc: the server's own cost, whoever waits on whom. */
function cpuSeconds(pid: number): number {
  const fields = require('node:fs')
    .readFileSync(`/proc/${pid}/stat`, 'utf8')
    .split(') ')[1]
    .split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (CLK_TCK 100)
}

/**
 * PostgreSQL's own CPU seconds on this machine: every `postgres` process (backends, writers),
 * whoever they work for. Measured over a run with nothing else on the database, it is the
 * database's share of that run's work (DESIGN.md §4 reports it beside the platform's).
 */
function postgresCpuSeconds(): number {
  const fs = require('node:fs') as typeof import('node:fs');
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      total += cpuSeconds(Number(entry));
    } catch {
      // a process that ended meanwhile
    }
  }
  return total;
}

/**
 * The machine's CPU seconds so far, busy (user, system, interrupts, steal excluded) and in all,
 * over every core, from /proc/stat (clock ticks of 1/100 s).
 */
function machineCpuSeconds(): { busy: number; all: number } {
  const ticks = require('node:fs')
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const [user, nice, system, idle, iowait, irq, softirq] = ticks;
  const busy = user + nice + system + irq + softirq;
  return { busy: busy / 100, all: (busy + idle + iowait) / 100 };
}

/**
 * The database's transactions so far and the rows written to its tables, from its statistics
 * (each backend reports them within a second of going idle: wait that long before reading).
 */
async function databaseCounts(url: string): Promise<{ transactions: number; rowWrites: number }> {
  await new Promise((r) => setTimeout(r, 1100));
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const [row] = (
      await c.query(
        `SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()) AS transactions,
                (SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables) AS writes`,
      )
    ).rows;
    return { transactions: Number(row.transactions), rowWrites: Number(row.writes) };
  } finally {
    await c.end();
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const summary = (lat: Record<string, number[]>) =>
  STEPS.map(
    (s) => `${s} p50 ${pct(lat[s], 50).toFixed(1)} / p99 ${pct(lat[s], 99).toFixed(1)} ms`,
  ).join('; ');

/**
 * Bare Fastify, the baseline: one server, warmed once, measured for a burst of requests right
 * before and right after each capacity load, so that a load's ratios compare it with the machine
 * as it was then (its load moves by a third within one run), not with its start or its end.
 */
async function startBare(ms: number) {
  const { url, proc } = await child('bare');
  // Requests back to back on every connection for `ms`: how many were answered.
  const run = async (ms: number) => {
    const end = performance.now() + ms;
    let answered = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) {
          await http(url, 'GET', '/v1/health', {});
          answered++;
        }
      }),
    );
    return answered;
  };
  // Warm up (JIT, sockets) before measuring, as the platform is warmed before its loads.
  await run(ms);
  return {
    /** As long as a capacity load here lasts, so that both see the machine for as long. */
    async measure(): Promise<BareFigures> {
      const cpu0 = cpuSeconds(proc.pid!);
      const t0 = performance.now();
      const requests = await run(ms);
      return {
        rate: requests / ((performance.now() - t0) / 1000),
        cpuPerRequestUs: ((cpuSeconds(proc.pid!) - cpu0) / requests) * 1e6,
      };
    },
    stop: () => stop(proc),
  };
}

/** Two measurements of bare Fastify taken as one: their mean rate and CPU. */
const meanBare = (xs: BareFigures[]): BareFigures => ({
  rate: xs.reduce((sum, x) => sum + x.rate, 0) / xs.length,
  cpuPerRequestUs: xs.reduce((sum, x) => sum + x.cpuPerRequestUs, 0) / xs.length,
});

interface Target {
  name: string;
  /** Each instance's URL; requests go to them in turn. */
  urls: string[];
  /** Each instance's metrics URL. */
  metrics: string[];
  /** The trading platform's processes: their CPU is what is measured. */
  procs: ChildProcess[];
  /** The payment platform's. */
  others: ChildProcess[];
  /** The PostgreSQL database it runs on, if it does. */
  db?: string;
  drop?: () => Promise<void>;
}

/**
 * The platform's processes, and the payment platform: in a process of its own (as in
 * production), or with `inProcess` in the platform's, as DESIGN §4 sets its CPU budget.
 */
async function startTarget(
  name: string,
  options: { db?: string; instances?: number; inProcess?: boolean } = {},
): Promise<Target> {
  if (options.inProcess) {
    const p = await child('platform', options.db);
    return { name, urls: [p.url], metrics: [p.metrics], procs: [p.proc], others: [] };
  }
  const payments = await child('payments');
  const platforms = [];
  for (let i = 0; i < (options.instances ?? 1); i++)
    platforms.push(await child('platform', options.db, payments.url));
  return {
    name,
    urls: platforms.map((m) => m.url),
    metrics: platforms.map((m) => m.metrics),
    procs: platforms.map((m) => m.proc),
    others: [payments.proc],
    ...(options.db?.startsWith('postgres') ? { db: options.db } : {}),
  };
}

async function pgDatabase(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const admin = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  if (admin === 'off') return undefined;
  const name = `cardpay_bench_${process.pid}`;
  const c = new Client({ connectionString: admin });
  try {
    await c.connect();
    await c.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    console.log(`PostgreSQL figures skipped: ${(error as Error).message}`);
    return undefined;
  } finally {
    await c.end().catch(() => undefined);
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const d = new Client({ connectionString: admin });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

export interface StepLatency {
  p50: number;
  p99: number;
}
export interface LoadFigures {
  terminals: number;
  checkouts: number;
  checkoutsPerS: number;
  /** Bare Fastify measured right before and right after this load: its baseline. */
  bare: BareFigures;
  /** Signed requests per second as a share of that bare Fastify's request rate. */
  shareOfBare: number;
  cpuPerSignedRequestUs: number;
  /**
   * The protocol's envelope alone, at 64 terminals: the platform's CPU per signed GET of a
   * session (its signature checked, its nonce written, one read, its answer signed), sent back to
   * back. What every signed request pays before its step does anything.
   */
  envelopeUs?: number;
  /** PostgreSQL's own CPU per checkout (PostgreSQL targets only). */
  databaseCpuPerCheckoutUs?: number;
  /**
   * Where a checkout's CPU went on the whole machine (µs per checkout): the platform, PostgreSQL,
   * the payment platform when apart, this load generator, and the rest (the kernel's work for no
   * one process, other programs); and how busy the cores were. With the cores busy, the rate is
   * the cores over the machine's CPU per checkout: that is what sets one target's rate against
   * another's.
   */
  machine: {
    busyShare: number;
    perCheckoutUs: {
      all: number;
      platform: number;
      database: number;
      paymentPlatform: number;
      loadGenerator: number;
      rest: number;
    };
  };
  /**
   * PostgreSQL's transactions per checkout (PostgreSQL targets only). Every statement or message
   * the store sends outside BEGIN … COMMIT is a transaction of its own, so this is its round
   * trips; and the rows it inserted, updated or deleted per checkout.
   */
  database?: { transactionsPerCheckout: number; rowWritesPerCheckout: number };
  /**
   * Requests' writes per commit to the database over the load, from the platform's
   * `cardpay_database_commit_writes`: how much the group commit gathered (absent where the server
   * keeps no metrics).
   */
  writesPerCommit?: number;
  steps: Record<Step, StepLatency>;
}
export interface BareFigures {
  /** Requests a second. */
  rate: number;
  /** The server's CPU per request (µs). */
  cpuPerRequestUs: number;
}
export interface ServerFigures {
  /** Bare Fastify over the run: the mean of its measurements, and its first and last rates. */
  bare: BareFigures & { before: number; after: number };
  targets: {
    name: string;
    loads: LoadFigures[];
    steady?: Steady;
  }[];
  /**
   * SQLite on a file offered PostgreSQL x1's capacity as a steady load: the platform's CPU per
   * signed request at the same rate. A process that waits between requests pays more per request
   * than one kept busy (each wake-up serves fewer), so the full-load figures compare a busy SQLite
   * platform with a PostgreSQL one that waits on its database; this compares like with like.
   */
  atPostgresRate?: Steady;
  /**
   * PostgreSQL x1's round trips with nothing between them (`serveFloor`), offered PostgreSQL x1's
   * steady rate: the step latency no platform making those round trips could beat here.
   */
  floor?: Steady;
}
export interface Steady {
  rate: number;
  cpuPerSignedRequestUs: number;
  steps: Record<Step, StepLatency>;
  /** Where a checkout's time went, from the platform's own metrics over the steady load. */
  waits: Waits;
}
/** Per checkout: the platform's waits for the database, by kind, and for the payment platform. */
export interface Waits {
  /** The four steps' mean latencies added up, as the load generator saw them (ms). */
  stepsMs: number;
  database: Record<DatabaseWait, { perCheckout: number; meanMs: number }>;
  /** The charges' mean time (ms). */
  chargeMs: number;
  /**
   * Each step's share of answers over the 10 ms budget: as the load generator saw them, and as
   * the platform's own request histogram timed them (from its first byte read to its last
   * written; absent where the server keeps no metrics). The difference is time spent outside
   * the platform: in the load generator's turn on the cores and in the kernel's queues.
   */
  overTenMs: Record<Step, { client: number; platform?: number }>;
  /** Requests' writes per commit to the database over the steady load (see `LoadFigures`). */
  writesPerCommit?: number;
}

/**
 * The server's figures: full checkouts on each target at each number of terminals, each load
 * between two measurements of bare Fastify and followed, at 64 terminals, by signed GETs alone;
 * and (on the first target) a steady load at half the 64-terminal capacity.
 */
export async function benchServer(options: {
  terminals: number[];
  checkouts: number;
  postgres: boolean;
  log?: (line: string) => void;
}): Promise<ServerFigures> {
  const log = options.log ?? (() => undefined);
  const salt = Buffer.alloc(16, 15);
  const pinKey = pbkdf2Sync('204816', salt, 10000, 32, 'sha256');
  const baseline = await startBare(BARE_MS);
  const bares: BareFigures[] = [];
  const targets: ServerFigures['targets'] = [];
  const measure = async (target: Target, loads: number[], steady: boolean) => {
    const figures: ServerFigures['targets'][number] = { name: target.name, loads: [] };
    const terminals = await registerTerminals(target, salt, pinKey, Math.max(...loads));
    for (const n of loads) {
      const before = await baseline.measure();
      const r = await load(target, terminals.slice(0, n), pinKey, options.checkouts);
      const bare = meanBare([before, await baseline.measure()]);
      bares.push(bare);
      const envelopeUs =
        n === 64 ? await envelope(target, terminals.slice(0, n), options.checkouts * 4) : undefined;
      figures.loads.push({
        ...r,
        bare,
        shareOfBare: (r.checkoutsPerS * 4) / bare.rate,
        ...(envelopeUs ? { envelopeUs } : {}),
      });
      log(`${target.name}, ${n} terminals: ${r.checkoutsPerS.toFixed(0)} checkouts/s`);
      // The steady load right after the capacity it is half of, on the same warm server.
      if (steady && n === Math.min(64, Math.max(...loads))) {
        const rate = r.checkoutsPerS / 2;
        figures.steady = await steadyLoad(target, terminals.slice(0, n), pinKey, rate);
        log(`${target.name}, steady at ${rate.toFixed(0)} checkouts/s`);
      }
    }
    for (const p of [...target.procs, ...target.others]) await stop(p);
    targets.push(figures);
  };
  // As DESIGN §4 sets the budgets: SQLite in memory, the sandbox in the platform's process.
  await measure(await startTarget('SQLite', { inProcess: true }), options.terminals, true);
  // Then as in production: the payment platform elsewhere, and a database file (each commit
  // written to the WAL).
  await measure(await startTarget('SQLite, payment platform apart'), [64], false);
  const dir = mkdtempSync(join(tmpdir(), 'cardpay-bench-'));
  const file = join(dir, 'bench.db');
  await measure(
    await startTarget('SQLite on a file, payment platform apart', { db: file }),
    [64],
    false,
  );
  rmSync(dir, { recursive: true, force: true });
  const pg = options.postgres ? await pgDatabase() : undefined;
  let floor: Steady | undefined;
  if (pg) {
    try {
      // With its steady half-capacity load: the step latency budget holds on PostgreSQL too.
      await measure(await startTarget('PostgreSQL x1', { db: pg.url }), [64], true);
      await measure(await startTarget('PostgreSQL x2', { db: pg.url, instances: 2 }), [64], false);
      const half = targets.find((t) => t.name === 'PostgreSQL x1')?.steady?.rate;
      if (half) {
        floor = await floorAt(pg.url, pinKey, half);
        log(`PostgreSQL x1's round trips alone, steady at ${half.toFixed(0)} checkouts/s`);
      }
    } finally {
      // A run that fails leaves no database behind either.
      await pg.drop();
    }
  }
  const pgRate = targets.find((t) => t.name === 'PostgreSQL x1')?.loads[0]?.checkoutsPerS;
  let atPostgresRate: Steady | undefined;
  if (pgRate) {
    const again = mkdtempSync(join(tmpdir(), 'cardpay-bench-'));
    const target = await startTarget('SQLite on a file, payment platform apart', {
      db: join(again, 'bench.db'),
    });
    try {
      const terminals = await registerTerminals(target, salt, pinKey, 64);
      // Warm, as the other targets are when measured; then the rate PostgreSQL x1 managed.
      await load(target, terminals, pinKey, 400);
      atPostgresRate = await steadyLoad(target, terminals, pinKey, pgRate);
      log(`SQLite on a file at PostgreSQL x1's ${pgRate.toFixed(0)} checkouts/s`);
    } finally {
      for (const p of [...target.procs, ...target.others]) await stop(p);
      rmSync(again, { recursive: true, force: true });
    }
  }
  await baseline.stop();
  return {
    bare: { ...meanBare(bares), before: bares[0].rate, after: bares[bares.length - 1].rate },
    targets,
    ...(atPostgresRate ? { atPostgresRate } : {}),
    ...(floor ? { floor } : {}),
  };
}

/** The floor (`serveFloor`), warmed, then offered `rate` checkouts a second. */
async function floorAt(db: string, pinKey: Buffer, rate: number): Promise<Steady> {
  const payments = await child('payments');
  const floor = await child('floor', db, payments.url);
  const target: Target = {
    name: 'the floor',
    urls: [floor.url],
    metrics: [],
    procs: [floor.proc],
    others: [payments.proc],
  };
  try {
    // Its terminals sign as any other's; the floor does not check them.
    const terminals = Array.from({ length: 64 }, (_, i) => ({
      id: `trm_floor_${i}`,
      secret: randomBytes(32),
      card: cardOf(i),
    }));
    await load(target, terminals, pinKey, 400);
    return await steadyLoad(target, terminals, pinKey, rate);
  } finally {
    for (const p of [floor.proc, payments.proc]) await stop(p);
  }
}

async function registerTerminals(target: Target, salt: Buffer, pinKey: Buffer, n: number) {
  let turn = 0;
  const terminals: Terminal[] = [];
  for (let i = 0; i < n; i++) {
    const r = await http(
      target.urls[turn++ % target.urls.length],
      'POST',
      '/v1/terminals',
      {},
      JSON.stringify({
        password: { salt: salt.toString('hex'), iterations: 10000, key: pinKey.toString('hex') },
      }),
    );
    const body = JSON.parse(r.body);
    terminals.push({
      id: body.terminalId,
      secret: Buffer.from(body.terminalSecret, 'hex'),
      card: cardOf(i),
    });
  }
  return terminals;
}

/**
 * A terminal's own card, as each shopper has: four brands in turn, numbers of their own with a
 * valid check digit. (Shared by every terminal, four cards at hundreds of payments a second would
 * be card testing, and each payment would wait for the others of its card at the card-testing
 * lock: a queue no real load has.)
 */
function cardOf(i: number): string {
  const [prefix, length] = (
    [
      ['6222029', 19],
      ['4242429', 16],
      ['5555559', 16],
      ['6200009', 16],
    ] as const
  )[i % 4];
  const body = prefix + String(i).padStart(length - prefix.length - 1, '0');
  let sum = 0;
  for (let k = 0; k < body.length; k++) {
    let d = Number(body[body.length - 1 - k]);
    if (k % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

/** One full checkout, each step's latency added to `latencies`. */
async function checkout(
  target: Target,
  t: Terminal,
  pinKey: Buffer,
  n: number,
  latencies: Record<Step, number[]>,
) {
  const url = target.urls[n % target.urls.length];
  const timed = async <T>(step: Step, fn: () => Promise<T>) => {
    const start = performance.now();
    const r = await fn();
    latencies[step].push(performance.now() - start);
    return r;
  };
  const s = await timed('session', () =>
    signed(url, t, 'POST', '/v1/sessions', { merchantId: 'mch_sandbox' }),
  );
  const o = await timed('order', () =>
    signed(url, t, 'POST', `/v1/sessions/${s.sessionId}/order`, {
      amount: 1000 + (n % 500),
      currency: 'CNY',
      card: { source: 'scan', scanType: 'qrCode', payload: t.card },
    }),
  );
  const c = await timed('confirm', () =>
    signed(url, t, 'POST', `/v1/sessions/${s.sessionId}/confirm`, {
      confirmToken: o.confirmation.confirmToken,
      accept: true,
    }),
  );
  const { challenge, mandatory } = c.authPrompt;
  const message = [
    'cardpay-auth-v1',
    s.sessionId,
    challenge,
    o.confirmation.orderId,
    o.confirmation.amount,
    'CNY',
  ].join('\n');
  const proof = createHmac('sha256', pinKey).update(message).digest('hex');
  const a = await timed('authenticate', () =>
    signed(url, t, 'POST', `/v1/sessions/${s.sessionId}/authenticate`, {
      challenge,
      // A card's first payment on a terminal carries its CVV too (it binds the card).
      factors: [
        { method: 'password', proof },
        ...(mandatory?.includes('cvv') ? [{ method: 'cvv', value: '123' }] : []),
      ],
    }),
  );
  if (a.state !== 'succeeded') throw new Error(`checkout ended ${a.state ?? JSON.stringify(a)}`);
}

const emptyLatencies = () =>
  Object.fromEntries(STEPS.map((s) => [s, []])) as unknown as Record<Step, number[]>;
const stepFigures = (lat: Record<Step, number[]>) =>
  Object.fromEntries(
    STEPS.map((s) => [s, { p50: pct(lat[s], 50), p99: pct(lat[s], 99) }]),
  ) as Record<Step, StepLatency>;

/** Capacity: every terminal runs checkouts back to back, after an unmeasured warm-up. */
async function load(target: Target, terminals: Terminal[], pinKey: Buffer, checkouts: number) {
  // Fewer terminals run fewer checkouts: one terminal runs them one after another.
  const total = Math.max(200, Math.min(checkouts, terminals.length * 100));
  let started = -Math.round(total / 4);
  const warm = emptyLatencies();
  await Promise.all(
    terminals.map(async (t) => {
      while (started < 0) await checkout(target, t, pinKey, started++ + total, warm);
    }),
  );
  const latencies = emptyLatencies();
  started = 0;
  const cpu = () => target.procs.reduce((sum, p) => sum + cpuSeconds(p.pid!), 0);
  const onPostgres = target.name.startsWith('PostgreSQL');
  const counts0 = target.db ? await databaseCounts(target.db) : undefined;
  const waited0 = await waitTotals(target);
  const others = () => target.others.reduce((sum, p) => sum + cpuSeconds(p.pid!), 0);
  const generator = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const cpu0 = cpu();
  const db0 = onPostgres ? postgresCpuSeconds() : 0;
  const others0 = others();
  const generator0 = generator();
  const machine0 = machineCpuSeconds();
  const t0 = performance.now();
  await Promise.all(
    terminals.map(async (t) => {
      while (started < total) await checkout(target, t, pinKey, started++, latencies);
    }),
  );
  const checkoutsPerS = total / ((performance.now() - t0) / 1000);
  const cpu1 = cpu();
  const db1 = onPostgres ? postgresCpuSeconds() : 0;
  const machine1 = machineCpuSeconds();
  const perCheckout = (seconds: number) => (seconds / total) * 1e6;
  const used = {
    all: perCheckout(machine1.busy - machine0.busy),
    platform: perCheckout(cpu1 - cpu0),
    database: perCheckout(db1 - db0),
    paymentPlatform: perCheckout(others() - others0),
    loadGenerator: perCheckout(generator() - generator0),
  };
  const machine = {
    busyShare: (machine1.busy - machine0.busy) / (machine1.all - machine0.all),
    perCheckoutUs: {
      ...used,
      rest: Math.max(
        0,
        used.all - used.platform - used.database - used.paymentPlatform - used.loadGenerator,
      ),
    },
  };
  const counts1 = target.db ? await databaseCounts(target.db) : undefined;
  const writesPerCommit = commitsOver(waited0, await waitTotals(target));
  return {
    terminals: terminals.length,
    checkouts: total,
    checkoutsPerS,
    cpuPerSignedRequestUs: ((cpu1 - cpu0) / (total * 4)) * 1e6,
    ...(onPostgres ? { databaseCpuPerCheckoutUs: ((db1 - db0) / total) * 1e6 } : {}),
    machine,
    ...(counts0 && counts1
      ? {
          database: {
            transactionsPerCheckout: (counts1.transactions - counts0.transactions) / total,
            rowWritesPerCheckout: (counts1.rowWrites - counts0.rowWrites) / total,
          },
        }
      : {}),
    ...(writesPerCommit !== undefined ? { writesPerCommit } : {}),
    steps: stepFigures(latencies),
  };
}

/**
 * The platform's CPU per signed GET of a session, `requests` of them back to back over the
 * terminals (each reads a session of its own), after a quarter as many unmeasured.
 */
async function envelope(target: Target, terminals: Terminal[], requests: number) {
  const sessions = await Promise.all(
    terminals.map(async (t, i) => {
      const url = target.urls[i % target.urls.length];
      const s = await signed(url, t, 'POST', '/v1/sessions', { merchantId: 'mch_sandbox' });
      return { url, t, path: `/v1/sessions/${s.sessionId}` };
    }),
  );
  const cpu = () => target.procs.reduce((sum, p) => sum + cpuSeconds(p.pid!), 0);
  const run = async (n: number) => {
    let sent = 0;
    await Promise.all(
      sessions.map(async ({ url, t, path }) => {
        while (sent++ < n) await signed(url, t, 'GET', path);
      }),
    );
  };
  await run(requests / 4);
  const cpu0 = cpu();
  await run(requests);
  return ((cpu() - cpu0) / requests) * 1e6;
}

/** The POST route of each step, as the platform's request metrics name it. */
const STEP_ROUTES: Record<string, Step> = {
  '/v1/sessions': 'session',
  '/v1/sessions/:id/order': 'order',
  '/v1/sessions/:id/confirm': 'confirm',
  '/v1/sessions/:id/authenticate': 'authenticate',
};

/**
 * Sums and counts of the platform's wait histograms, and each step's answers in all and within
 * 10 ms, over its instances.
 */
async function waitTotals(target: Target): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  const add = (key: string, value: string) =>
    totals.set(key, (totals.get(key) ?? 0) + Number(value));
  for (const url of target.metrics) {
    const text = (await http(url, 'GET', '/metrics', {})).body;
    const series =
      /^cardpay_(database_wait_seconds|payment_platform_request_duration_seconds)_(sum|count)\{(?:call|kind)="(\w+)"[^}]*\} (\S+)$/gm;
    for (const m of text.matchAll(series)) add(`${m[1]} ${m[3]} ${m[2]}`, m[4]);
    for (const m of text.matchAll(/^cardpay_database_commit_writes_(sum|count) (\S+)$/gm))
      add(`commit_writes ${m[1]}`, m[2]);
    const answers =
      /^cardpay_http_request_duration_seconds_bucket\{(?=[^}]*method="POST")(?=[^}]*le="(0\.01|\+Inf)")[^}]*route="([^"]+)"[^}]*\} (\S+)$/gm;
    for (const m of text.matchAll(answers)) {
      const step = STEP_ROUTES[m[2]];
      if (step) add(`answers ${step} ${m[1] === '0.01' ? 'within' : 'all'}`, m[3]);
    }
  }
  return totals;
}

/** Requests' writes per commit between two scrapes; undefined without metrics or commits. */
function commitsOver(before: Map<string, number>, after: Map<string, number>) {
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const commits = delta('commit_writes count');
  return commits > 0 ? delta('commit_writes sum') / commits : undefined;
}

function waitsOver(
  before: Map<string, number>,
  after: Map<string, number>,
  checkouts: number,
  latencies: Record<Step, number[]>,
): Waits {
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const of = (histogram: string, label: string) => {
    const count = delta(`${histogram} ${label} count`);
    return {
      perCheckout: count / checkouts,
      meanMs: count ? (delta(`${histogram} ${label} sum`) / count) * 1000 : 0,
    };
  };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const writesPerCommit = commitsOver(before, after);
  return {
    stepsMs: STEPS.reduce((sum, step) => sum + mean(latencies[step]), 0),
    database: {
      read: of('database_wait_seconds', 'read'),
      write: of('database_wait_seconds', 'write'),
      write_unflushed: of('database_wait_seconds', 'write_unflushed'),
    },
    chargeMs: of('payment_platform_request_duration_seconds', 'charge').meanMs,
    overTenMs: Object.fromEntries(
      STEPS.map((step) => {
        const all = delta(`answers ${step} all`);
        const client = latencies[step].filter((ms) => ms > 10).length / latencies[step].length;
        return [
          step,
          all > 0
            ? { client, platform: (all - delta(`answers ${step} within`)) / all }
            : { client },
        ];
      }),
    ) as Waits['overTenMs'],
    ...(writesPerCommit !== undefined ? { writesPerCommit } : {}),
  };
}

/** A steady offered load: latency without the queue, and the platform's CPU at that rate. */
async function steadyLoad(target: Target, terminals: Terminal[], pinKey: Buffer, rate: number) {
  const latencies = emptyLatencies();
  const waited = await waitTotals(target);
  const total = Math.max(200, Math.round(rate * 10));
  const free = [...terminals];
  const running: Promise<void>[] = [];
  const cpu = () => target.procs.reduce((sum, p) => sum + cpuSeconds(p.pid!), 0);
  const cpu0 = cpu();
  const t1 = performance.now();
  for (let n = 0; n < total; n++) {
    const wait = t1 + (n * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (free.length === 0) await new Promise((r) => setTimeout(r, 1));
    const t = free.pop()!;
    running.push(checkout(target, t, pinKey, n, latencies).finally(() => free.push(t)));
  }
  await Promise.all(running);
  const cpuPerSignedRequestUs = ((cpu() - cpu0) / (total * 4)) * 1e6;
  const waits = waitsOver(waited, await waitTotals(target), total, latencies);
  return { rate, cpuPerSignedRequestUs, steps: stepFigures(latencies), waits };
}

/** Where a checkout's CPU went on the machine, in ms, and how busy the cores were. */
export function machineLine(l: LoadFigures): string {
  const u = l.machine.perCheckoutUs;
  const ms = (us: number) => (us / 1000).toFixed(2);
  const parts = [
    `platform ${ms(u.platform)}`,
    ...(l.databaseCpuPerCheckoutUs !== undefined ? [`PostgreSQL ${ms(u.database)}`] : []),
    ...(u.paymentPlatform > 0 ? [`payment platform ${ms(u.paymentPlatform)}`] : []),
    `load generator ${ms(u.loadGenerator)}`,
    `rest ${ms(u.rest)}`,
  ];
  return `${ms(u.all)} ms of the machine's CPU per checkout (${parts.join(', ')}), cores ${(100 * l.machine.busyShare).toFixed(0)} % busy`;
}

/** Where a checkout's time went at a steady load, per checkout. */
export function waitsLine(w: Waits): string {
  const d = w.database;
  const count = d.read.perCheckout + d.write.perCheckout + d.write_unflushed.perCheckout;
  const ms =
    d.read.perCheckout * d.read.meanMs +
    d.write.perCheckout * d.write.meanMs +
    d.write_unflushed.perCheckout * d.write_unflushed.meanMs;
  const part = (x: { perCheckout: number; meanMs: number }, what: string) =>
    x.perCheckout >= 0.05 ? [`${x.perCheckout.toFixed(1)} ${what} ${x.meanMs.toFixed(2)} ms`] : [];
  const gathered =
    w.writesPerCommit !== undefined ? `, ${w.writesPerCommit.toFixed(1)} writes a commit` : '';
  return `of a checkout's ${w.stepsMs.toFixed(1)} ms in its four steps: ${count.toFixed(1)} waits for the database, ${ms.toFixed(1)} ms (${[...part(d.write, 'writes'), ...part(d.write_unflushed, 'begins without a flush'), ...part(d.read, 'reads')].join(', ')}${gathered}); the charge ${w.chargeMs.toFixed(1)} ms; over 10 ms, as the load generator saw them / as the platform timed them: ${overTenLine(w)}`;
}

/** Each step's share of answers over 10 ms: the load generator's, then the platform's. */
function overTenLine(w: Waits): string {
  const share = (x: number) => `${(100 * x).toFixed(2)} %`;
  return STEPS.map((step) => {
    const { client, platform } = w.overTenMs[step];
    return `${step} ${share(client)}${platform === undefined ? '' : ` / ${share(platform)}`}`;
  }).join('; ');
}

export const stepsLine = (steps: Record<Step, StepLatency>) =>
  STEPS.map((s) => `${s} ${steps[s].p50.toFixed(1)} / ${steps[s].p99.toFixed(1)} ms`).join('; ');

async function main() {
  const figures = await benchServer({
    terminals: [CONCURRENCY],
    checkouts: CHECKOUTS,
    postgres: process.env.BENCH_PG !== 'off',
  });
  const { bare: b } = figures;
  console.log(
    `bare Fastify GET /v1/health: ${b.rate.toFixed(0)} req/s (${b.before.toFixed(0)} around the first load, ${b.after.toFixed(0)} around the last), ${b.cpuPerRequestUs.toFixed(0)} µs of server CPU per request`,
  );
  for (const t of figures.targets) {
    for (const l of t.loads)
      console.log(
        `${t.name}, ${l.terminals} terminals: ${l.checkoutsPerS.toFixed(0)} checkouts/s = ${(100 * l.shareOfBare).toFixed(1)}% of bare Fastify's rate; ${l.cpuPerSignedRequestUs.toFixed(0)} µs server CPU per signed request = ${(l.cpuPerSignedRequestUs / l.bare.cpuPerRequestUs).toFixed(1)}x bare (${l.bare.cpuPerRequestUs.toFixed(0)} µs, ${l.bare.rate.toFixed(0)}/s around this load)${l.envelopeUs ? `; a signed GET alone ${l.envelopeUs.toFixed(0)} µs = ${(l.envelopeUs / l.bare.cpuPerRequestUs).toFixed(1)}x bare` : ''}${l.databaseCpuPerCheckoutUs !== undefined ? `; PostgreSQL's own ${l.databaseCpuPerCheckoutUs.toFixed(0)} µs per checkout` : ''}${l.database ? `, ${l.database.transactionsPerCheckout.toFixed(1)} round trips, ${l.database.rowWritesPerCheckout.toFixed(1)} row writes` : ''}${l.writesPerCommit !== undefined ? `; ${l.writesPerCommit.toFixed(1)} writes a commit` : ''}; p50 / p99: ${stepsLine(l.steps)} (the budgets: npm run bench)`,
      );
    for (const l of t.loads) console.log(`  ${machineLine(l)}`);
    if (t.steady)
      console.log(
        `  steady ${t.steady.rate.toFixed(0)} checkouts/s (half capacity): ${stepsLine(t.steady.steps)} (budget p99 <= 10 ms)\n  ${waitsLine(t.steady.waits)}`,
      );
  }
  if (figures.floor)
    console.log(
      `PostgreSQL x1's round trips alone (the floor), steady ${figures.floor.rate.toFixed(0)} checkouts/s: ${stepsLine(figures.floor.steps)}`,
    );
  const same = figures.atPostgresRate;
  if (same)
    console.log(
      `SQLite on a file offered PostgreSQL x1's ${same.rate.toFixed(0)} checkouts/s: ${same.cpuPerSignedRequestUs.toFixed(0)} µs server CPU per signed request (the same rate, not the same load)`,
    );
  agent.destroy();
}

// This file is also bundled into `npm run bench`: the children it starts run `serve`.
if (process.argv[2] === 'serve') {
  process.on('SIGINT', () => process.exit(0));
  // The bench that started it is gone (finished, failed or killed): nothing is left running.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  void serve(process.argv[3], process.argv[4] || undefined, process.argv[5] || undefined);
} else if (/bench-server\.js$/.test(process.argv[1] ?? ''))
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
