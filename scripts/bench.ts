// npm run bench -- [--quick] [--json]
// Every figure of DESIGN.md §4 in one run, each beside its baseline from the same run, against
// its budget (met / not met): the server (full checkouts at 1, 16, 64 and 256 terminals, and a
// steady half-capacity load), the client's PBKDF2 + proof, the built plugin's size, and how long
// a merchant's `npm install cardpay` takes.
// --quick: fewer checkouts, no PostgreSQL (a smoke run); --json: the figures as JSON too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repositoryRoot } from './root';
import { installInEmptyProject, packWorkspace } from './sdk-install';
import { benchServer, stepsLine } from './bench-server';
import { benchStatement } from './bench-statement';

interface Row {
  what: string;
  figure: string;
  baseline: string;
  budget: string;
  met: boolean;
}

async function main() {
  const args = process.argv.slice(2);
  for (const a of args)
    if (!['--quick', '--json'].includes(a)) {
      console.error(`bench: unknown argument ${a} (known: --quick, --json)`);
      process.exit(2);
    }
  const quick = args.includes('--quick');
  const root = repositoryRoot();
  const log = (l: string) => console.error(`  ${l}`);

  // The client and the plugin first: quick, and independent of the server's load.
  const core = require(join(root, 'scripts/bench-core.js')).benchCore(log);
  const plugin = require(join(root, 'scripts/build-plugin.js')).buildPlugin(root);
  const server = await benchServer({
    terminals: [1, 16, 64, 256],
    checkouts: quick ? 400 : 2000,
    postgres: !quick && process.env.BENCH_PG !== 'off',
    log,
  });

  const rows: Row[] = [];
  const sqlite = server.targets[0];
  const bare = `bare Fastify ${server.bare.rate.toFixed(0)} req/s, ${server.bare.cpuPerRequestUs.toFixed(0)} µs`;
  for (const l of sqlite.loads) {
    rows.push({
      what: `SQLite, ${l.terminals} terminal${l.terminals > 1 ? 's' : ''}: full checkouts`,
      figure: `${l.checkoutsPerS.toFixed(0)}/s = ${(100 * l.shareOfBare).toFixed(1)} % of bare Fastify; ${l.cpuPerSignedRequestUs.toFixed(0)} µs CPU per signed request; p50 / p99 ${stepsLine(l.steps)}`,
      baseline: bare,
      budget: 'none (capacity curve; the budgets are the two rows below, at 64 terminals)',
      met: true,
    });
  }
  // The budgets of DESIGN §4, each a row of its own: one may be met while the other is not.
  const at64 = sqlite.loads.find((l) => l.terminals === 64);
  if (at64) {
    rows.push({
      what: 'SQLite, 64 terminals: server CPU per signed request',
      figure: `${at64.cpuPerSignedRequestUs.toFixed(0)} µs (${(at64.cpuPerSignedRequestUs / server.bare.cpuPerRequestUs).toFixed(1)}x bare)`,
      baseline: bare,
      budget: '≤ 150 µs',
      met: at64.cpuPerSignedRequestUs <= 150,
    });
    rows.push({
      what: 'SQLite, 64 terminals: signed requests per second, share of bare Fastify',
      figure: `${(100 * at64.shareOfBare).toFixed(1)} %`,
      baseline: bare,
      budget: '≥ 30 %',
      met: at64.shareOfBare >= 0.3,
    });
  }
  if (sqlite.steady) {
    const worst = Math.max(...Object.values(sqlite.steady.steps).map((s) => s.p99));
    rows.push({
      what: `SQLite, steady ${sqlite.steady.rate.toFixed(0)} checkouts/s (half capacity): step p99`,
      figure: stepsLine(sqlite.steady.steps),
      baseline: 'same run',
      budget: '≤ 10 ms each step',
      met: worst <= 10,
    });
  }
  for (const t of server.targets.slice(1))
    for (const l of t.loads)
      rows.push({
        what: `${t.name}, ${l.terminals} terminals: full checkouts`,
        figure: `${l.checkoutsPerS.toFixed(0)}/s = ${(100 * l.shareOfBare).toFixed(1)} % of bare Fastify; ${l.cpuPerSignedRequestUs.toFixed(0)} µs of the platform's CPU per signed request${l.databaseCpuPerCheckoutUs !== undefined ? `; PostgreSQL's own CPU ${l.databaseCpuPerCheckoutUs.toFixed(0)} µs per checkout (${(l.databaseCpuPerCheckoutUs / 4).toFixed(0)} µs per signed request)` : ''}`,
        baseline: `bare Fastify ${server.bare.rate.toFixed(0)} req/s`,
        budget: 'none (the budgets are set on SQLite in memory, the sandbox in process)',
        met: true,
      });
  rows.push({
    what: 'PBKDF2(10,000) + proof in the bundled SDK, median',
    figure: `${core.proofMs.toFixed(1)} ms (${(core.proofMs / core.nodeProofMs).toFixed(2)}x node:crypto)`,
    baseline: `node:crypto ${core.nodeProofMs.toFixed(1)} ms`,
    budget: '≤ 30 ms',
    met: core.proofMs <= 30,
  });
  rows.push({
    what: 'the same under node --jitless (iOS: JavaScriptCore without JIT), median',
    figure: `${core.jitlessProofMs.toFixed(0)} ms (${(core.jitlessProofMs / core.proofMs).toFixed(0)}x the JIT figure)`,
    baseline: `with JIT ${core.proofMs.toFixed(1)} ms`,
    budget: '≤ 150 ms, busy shown before it starts',
    met: core.jitlessProofMs <= 150,
  });
  rows.push({
    what: 'PBKDF2-HMAC-SM3(10,000) in the bundled SDK (the cardpay-sm-v1 suite), median',
    figure: `${core.sm3Ms.toFixed(1)} ms with JIT, ${core.sm3JitlessMs.toFixed(0)} ms under --jitless`,
    baseline: `PBKDF2-HMAC-SHA256 ${core.sha256Ms.toFixed(1)} ms, ${core.jitlessProofMs.toFixed(0)} ms under --jitless (with the proof)`,
    budget: 'none set (reported beside SHA-256)',
    met: true,
  });
  rows.push({
    what: 'built plugin (JS, WXML, WXSS, JSON)',
    figure: `${(plugin.size / 1024).toFixed(1)} KB in ${plugin.files.length} files`,
    baseline: `core bundle alone ${(core.bundleBytes / 1024).toFixed(1)} KB`,
    budget: `≤ ${plugin.budget / 1024} KB`,
    met: plugin.size <= plugin.budget,
  });

  // A merchant's daily statement: a day of 100,000 lines streamed (PROTOCOL.md §7.4).
  const statement = await benchStatement(quick ? 20000 : 100000, log);
  rows.push({
    what: `statement of ${statement.lines.toLocaleString('en')} lines, SQLite file, streamed over HTTP`,
    figure: `${statement.seconds.toFixed(2)} s (${Math.round(statement.lines / statement.seconds).toLocaleString('en')} lines/s); heap +${statement.heapGrowthMb.toFixed(1)} MB, RSS +${statement.rssGrowthMb.toFixed(1)} MB while streaming`,
    baseline: 'the same process before the request',
    budget:
      'none set; streamed, not built in memory (the CSV is ' +
      statement.megabytes.toFixed(0) +
      ' MB)',
    met: true,
  });

  // What a merchant waits for: the packed SDK installed into an empty project.
  require(join(root, 'scripts/build-package.js')).buildForPack(['sdk']);
  const packs = mkdtempSync(join(tmpdir(), 'cardpay-bench-pack-'));
  const sdk = installInEmptyProject(packWorkspace(root, 'sdk', packs).file);
  for (const dir of [packs, sdk.dir]) rmSync(dir, { recursive: true, force: true });
  rows.push({
    what: '`npm install cardpay` (packed) in an empty project',
    figure: `${(sdk.ms / 1000).toFixed(1)} s, ${sdk.packages.length} packages (${sdk.packages.join(', ')}), ${sdk.withInstallScript.length} with an install script`,
    baseline: 'none',
    budget: '≤ 15 s, ≤ 10 packages, no install script',
    met: sdk.ms <= 15000 && sdk.packages.length <= 10 && sdk.withInstallScript.length === 0,
  });

  console.log('| what | figure | baseline (same run) | budget | met |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.what} | ${r.figure} | ${r.baseline} | ${r.budget} | ${r.met ? 'met' : 'not met'} |`,
    );
  if (args.includes('--json'))
    console.log(
      JSON.stringify(
        { server, core, plugin: { size: plugin.size, budget: plugin.budget }, rows },
        null,
        2,
      ),
    );
  process.exit(0);
}

if (process.argv[2] !== 'serve')
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
