// npm run chaos -- [--checkouts N] [--terminals N] [--fault-rate R] [--kill-every-ms MS] [--seed N]
//                   [--postgres URL] [--instances N] [--db-fault-every-ms MS] [--db-crash CMD]
//                   [--json] [--keep]
// Thousands of checkouts through fault proxies with kill -9 restarts, then the money invariants.
import { join } from 'node:path';
import { repositoryRoot } from './root';
import { runChaos } from './chaos/run';

function flags(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    out[m[1]] = argv[i + 1]?.startsWith('--') || argv[i + 1] === undefined ? 'true' : argv[++i];
  }
  return out;
}

function number(f: Record<string, string>, name: string, fallback: number): number {
  if (f[name] === undefined) return fallback;
  const n = Number(f[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number, got ${f[name]}`);
  return n;
}

async function main() {
  let f: Record<string, string>;
  let options;
  try {
    f = flags(process.argv.slice(2));
    const known = [
      'checkouts',
      'terminals',
      'fault-rate',
      'kill-every-ms',
      'seed',
      'postgres',
      'instances',
      'db-fault-every-ms',
      'db-crash',
      'json',
      'keep',
    ];
    const unknown = Object.keys(f).find((k) => !known.includes(k));
    if (unknown) throw new Error(`unknown flag --${unknown} (known: ${known.join(', ')})`);
    if (f['db-crash'] === 'true')
      throw new Error('--db-crash needs the command that crashes and starts PostgreSQL');
    if (f['db-crash'] && !f.postgres) throw new Error('--db-crash is for a run on --postgres');
    options = {
      checkouts: number(f, 'checkouts', 2000),
      terminals: number(f, 'terminals', 48),
      faultRate: number(f, 'fault-rate', 0.08),
      killEveryMs: number(f, 'kill-every-ms', 4000),
      seed: number(f, 'seed', Date.now() % 100000),
      // Keeps the SQLite databases (the platform's and the payment platform's) to look into.
      keep: !!f.keep,
      // --postgres alone: the local server (postgres://postgres@127.0.0.1:5432/postgres).
      ...(f.postgres
        ? {
            postgres:
              f.postgres === 'true' ? 'postgres://postgres@127.0.0.1:5432/postgres' : f.postgres,
            instances: number(f, 'instances', 2),
            // PostgreSQL restarted, or one instance cut off from it, about this often.
            databaseFaultEveryMs: number(f, 'db-fault-every-ms', 3000),
            // A real crash of the server instead of its connections ended (see runChaos).
            ...(f['db-crash'] && f['db-crash'] !== 'true'
              ? { databaseCrashCommand: f['db-crash'] }
              : {}),
          }
        : {}),
    };
  } catch (error) {
    console.error(`chaos: ${(error as Error).message}`);
    process.exit(2);
  }
  // The platform runs as the built CLI, as an operator runs it: build it from this checkout first.
  require(join(repositoryRoot(), 'scripts', 'build.js')).buildPackages();
  console.log(
    `chaos: ${options.checkouts} checkouts, ${options.terminals} terminals, fault rate ${options.faultRate} per hop, kill -9 about every ${options.killEveryMs} ms, seed ${options.seed}, ${options.postgres ? `PostgreSQL, ${options.instances} instances, a database fault about every ${options.databaseFaultEveryMs} ms${options.databaseCrashCommand ? ` (a restart is a crash: ${options.databaseCrashCommand})` : ''}` : 'SQLite'}`,
  );
  const report = await runChaos({ ...options, log: (l) => console.log(`  ${l}`) });
  if (f.json) console.log(JSON.stringify(report, null, 2));
  else {
    const line = (o: Record<string, number>) =>
      Object.entries(o)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
    console.log(`checkouts:        ${report.checkouts} (${line(report.outcomes)})`);
    console.log(
      `orders opened twice: ${report.mergedOrders}; refunds asked: ${report.refundsAsked}`,
    );
    console.log(`terminal hop:     ${line(report.faults.terminalHop)}`);
    console.log(`payment hop:      ${line(report.faults.paymentHop)}`);
    console.log(`platform answers: ${line(report.statuses)}`);
    console.log(`store:            ${report.store}, ${report.instances} instance(s)`);
    if (report.database) {
      const d = report.database;
      console.log(
        `database faults:  ${d.restarts} restarts of PostgreSQL, ${d.cutoffs} instances cut off; ${d.probedWhileDown} readiness probes during outages (all 503); ${d.recoveries} recoveries without a restart, the longest ${d.longestRecoveryMs} ms after the database came back; counted by the instances: ${d.errorsCounted} database errors, ${d.recoveriesCounted} recoveries`,
      );
    }
    console.log(
      `restarts (kill -9): ${report.restarts}; webhook deliveries failed on purpose: ${report.webhookFailuresInjected}`,
    );
    console.log(`records:          ${line(report.records)}`);
    console.log(`violations:       ${report.violations.length}`);
    for (const v of report.violations.slice(0, 10)) console.log(`  ${v.rule}: ${v.detail}`);
    console.log(`took ${report.seconds.toFixed(1)} s`);
  }
  if (report.databases)
    console.log(`kept: ${report.databases.platform}, ${report.databases.payments}`);
  process.exit(report.violations.length ? 1 : 0);
}

main().catch((error) => {
  console.error(`chaos: ${(error as Error).stack ?? error}`);
  process.exit(1);
});
