import { spawnSync } from 'node:child_process';
import { Client } from 'pg';

// PostgreSQL for the tests: this machine kind starts a server at 127.0.0.1:5432 (user postgres,
// trust auth) before every session and CI run. Each test file makes a database of its own and
// drops it. Without a reachable server the PostgreSQL tests are skipped with one line saying why,
// except in CI, where they must run.

export const ADMIN_URL =
  process.env.CARDPAY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function probe(): string | undefined {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `const { Client } = require('pg'); const c = new Client({ connectionString: process.argv[1], connectionTimeoutMillis: 3000 });
       c.connect().then(() => c.end()).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });`,
      ADMIN_URL,
    ],
    { encoding: 'utf8', timeout: 10000 },
  );
  return r.status === 0 ? undefined : (r.stderr.trim() || 'no answer').split('\n')[0];
}

const unreachable = probe();
if (unreachable && process.env.CI === 'true')
  throw new Error(`PostgreSQL at ${ADMIN_URL} is required in CI: ${unreachable}`);
if (unreachable)
  process.stderr.write(`PostgreSQL tests skipped: ${ADMIN_URL} is unreachable (${unreachable})\n`);

/** `describe` when PostgreSQL is reachable, `describe.skip` otherwise. */
export const describePg = unreachable ? describe.skip : describe;

let made = 0;

/** A fresh database for this run; `drop()` removes it (connections first). */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `cardpay_test_${process.pid}_${Date.now()}_${++made}`;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
