import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { ADMIN_URL, describePg } from '../support/postgres';

// The README's "Running several instances" block, run by bash from a folder with nothing in it
// but the installed packages (no ./data). Only the database's name and the three ports are made
// this run's own, so that it cannot meet another run or a platform already on 8787.

const root = join(__dirname, '../..');

describePg('the README’s block for several instances', () => {
  let shell: ChildProcess | undefined;
  const name = `cardpay_readme_${process.pid}_${Date.now()}`;
  afterAll(async () => {
    if (shell?.pid) process.kill(-shell.pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    const admin = new Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  it('starts two instances on one database from an empty folder, sharing orders', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Running several instances'));
    let block = /```sh\n([\s\S]*?)```/.exec(section)![1];
    const ports = {
      8787: 18787 + (process.pid % 500),
      8797: 19787 + (process.pid % 500),
      8788: 20787 + (process.pid % 500),
    };
    // The ports first: the name's digits may hold one (a time with 8797 in it), and it must stay whole.
    for (const [from, to] of Object.entries(ports)) block = block.split(from).join(String(to));
    block = block.replace(/\bcardpay\b(?=\s|$)/m, name).replace(/\/cardpay$/m, `/${name}`);
    block += '\nwait\n';
    const folder = mkdtempSync(join(tmpdir(), 'cardpay-empty-folder-'));
    symlinkSync(join(root, 'node_modules'), join(folder, 'node_modules'));
    shell = spawn('bash', ['-c', block], { cwd: folder, detached: true });
    let out = '';
    shell.stdout!.on('data', (c: Buffer) => (out += c));
    shell.stderr!.on('data', (c: Buffer) => (out += c));
    const ready = async (port: number) => {
      for (let i = 0; i < 300; i++) {
        const ok = await fetch(`http://127.0.0.1:${port}/v1/health`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no instance on ${port}: ${out}`);
    };
    await ready(ports[8787]);
    await ready(ports[8797]);
    const headers = {
      authorization: 'Bearer sk_sandbox_demo',
      'content-type': 'application/json',
    };
    const made = await fetch(`http://127.0.0.1:${ports[8787]}/v1/merchant/orders`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ merchantOrderId: 'several-1', amount: 1999, currency: 'CNY' }),
    });
    expect(made.status).toBe(201);
    const { orderRef } = (await made.json()) as { orderRef: string };
    const seen = await fetch(`http://127.0.0.1:${ports[8797]}/v1/merchant/orders/${orderRef}`, {
      headers,
    });
    expect(await seen.json()).toMatchObject({ orderRef, status: 'open' });
    // The sandbox's records went into a data folder it made itself.
    expect(existsSync(join(folder, 'data/cardpay-sandbox-payments.db'))).toBe(true);
  }, 60000);
});
