import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import { startSandboxPlatform } from '../../packages/testing/src/platform';
import { describePg, freshDatabase } from '../support/postgres';
import { pay, terminal } from '../support/server-harness';

const bin = join(__dirname, '../../packages/platform/bin/cardpay-platform.js');

async function settled(t: Awaited<ReturnType<typeof terminal>>, sessionId: string) {
  for (let i = 0; i < 100; i++) {
    const view = await t.client.getSession(sessionId);
    if (view.state !== 'processing') return view;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('still processing');
}

describe('the platform in operation', () => {
  it('settles a payment left processing by a stopped server to exactly one charge after restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardpay-restart-'));
    const db = join(dir, 'cardpay.db');
    const first = await startSandboxPlatform({ db, reconcileEveryMs: 600000 });
    const t = await terminal(first);
    const r = (await pay(t, '6222021000000000017')) as {
      state: string;
      sessionId: string;
      payment: { orderId: string };
    };
    expect(r.state).toBe('processing');
    await first.close();

    const second = await startSandboxPlatform({ db });
    try {
      const client = new PlatformClient({ baseUrl: second.url, host: t.host });
      client.identity = t.client.identity;
      const view = await settled({ ...t, client }, r.sessionId);
      expect(view.state).toBe('succeeded');
      const charges = (await (
        await fetch(`${second.sandbox!.url}/v1/charges?orderId=${r.payment.orderId}`)
      ).json()) as { charges: unknown[] };
      expect(charges.charges).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it('leaves no card number, password key, terminal secret or merchant key in its database files or logs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardpay-scan-'));
    const logs: Buffer[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => logs.push(c));
    const platform = await startSandboxPlatform({
      db: join(dir, 'cardpay.db'),
      logLevel: 'debug',
      logStream: stream,
    });
    const t = await terminal(platform);
    const cards = [
      '6222021000000000009',
      '4242424242424242',
      '4000000000000002',
      '6222021000000000025',
    ];
    for (const card of cards) await pay(t, card);
    const open = (await t.client.createSession({ merchantId: 'mch_sandbox' }, 'scan-key-01'))
      .sessionId;
    await t.client.submitOrder(
      open,
      { amount: 5, currency: 'CNY', card: { source: 'manual', payload: '5555555555554444' } },
      'scan-key-02',
    );
    await platform.close();

    // The key files beside the database are keys on purpose (sandbox mode keeps them there).
    const files = readdirSync(dir)
      .filter((f) => !f.endsWith('-key'))
      .map((f) => readFileSync(join(dir, f)).toString('latin1'));
    const haystack = files.join('\n') + Buffer.concat(logs).toString('utf8');
    expect(Buffer.concat(logs).length).toBeGreaterThan(0);
    for (const secret of [...cards, '5555555555554444', t.key, t.secret, platform.merchantKey]) {
      expect(haystack).not.toContain(secret);
    }
    expect(haystack).toContain('622202*********0009');
  });
});

describe('request logs', () => {
  it('name the method, the route pattern (never the ids), the terminal, the status and the time', async () => {
    const logs: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
    const platform = await startSandboxPlatform({ logLevel: 'info', logStream: stream });
    try {
      const t = await terminal(platform);
      const s = await t.client.createSession({ merchantId: 'mch_sandbox' }, 'log-key-0001');
      await t.client.getSession(s.sessionId);
      await pay(t, '4000000000000002');
    } finally {
      await platform.close();
    }
    const lines = logs.map((l) => JSON.parse(l));
    const incoming = lines.find((l) => l.req?.route === '/v1/sessions/:id');
    expect(incoming.req).toMatchObject({ method: 'GET', terminal: expect.stringMatching(/^trm_/) });
    const done = lines.find((l) => l.reqId === incoming.reqId && l.res);
    // The completed line alone says what was asked and how it ended.
    expect(done).toMatchObject({
      res: { status: 200, method: 'GET', route: '/v1/sessions/:id' },
      responseTime: expect.any(Number),
    });
    expect(logs.join('\n')).not.toContain(`/v1/sessions/ses_`);
    // A business event: the decision and its reason, one line.
    expect(lines.find((l) => l.event === 'payment_failed')).toMatchObject({
      declineCode: 'card_declined',
      terminalId: expect.stringMatching(/^trm_/),
      settledBy: 'request',
    });
  });

  it('log the reconciler’s settlement of a payment whose answer came too late, as its own line', async () => {
    const logs: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
    const platform = await startSandboxPlatform({
      logLevel: 'info',
      logStream: stream,
      reconcileEveryMs: 200,
    });
    try {
      const t = await terminal(platform);
      const r = (await pay(t, '6222021000000000017')) as { state: string; sessionId: string };
      expect(r.state).toBe('processing');
      expect((await settled(t, r.sessionId)).state).toBe('succeeded');
    } finally {
      await platform.close();
    }
    const lines = logs.map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.event === 'payment_platform_unanswered')).toHaveLength(1);
    expect(lines.filter((l) => l.event === 'payment_succeeded')).toEqual([
      expect.objectContaining({ settledBy: 'reconciler', level: 30 }),
    ]);
  });

  it('asks the payment platform at most once a second however often readiness is asked', async () => {
    const platform = await startSandboxPlatform();
    try {
      const asked = jest.spyOn(platform.ctx.payments, 'reachable');
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => fetch(`${platform.url}/v1/health/ready`)),
      );
      expect(answers.every((a) => a.status === 200)).toBe(true);
      expect(asked).toHaveBeenCalledTimes(1);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await fetch(`${platform.url}/v1/health/ready`)).status).toBe(200);
      expect(asked).toHaveBeenCalledTimes(2);
    } finally {
      await platform.close();
    }
  });

  it('answers readiness with the database and the payment platform checked', async () => {
    const platform = await startSandboxPlatform();
    try {
      const ready = await fetch(`${platform.url}/v1/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({
        status: 'ok',
        checks: { database: 'ok', paymentPlatform: 'ok' },
      });
      await platform.sandbox!.app.close(); // the payment platform goes away
      // The answer is kept for a second; then the next one says what changed.
      await new Promise((r) => setTimeout(r, 1100));
      const notReady = await fetch(`${platform.url}/v1/health/ready`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toMatchObject({ checks: { paymentPlatform: 'unavailable' } });
      expect((await fetch(`${platform.url}/v1/health`)).status).toBe(200); // still alive
    } finally {
      await platform.close();
    }
  });
});

describe('metrics', () => {
  it('serves Prometheus text off the public port: requests by route, latency, payments, backlog', async () => {
    const platform = await startSandboxPlatform({ metricsPort: 0, sandboxSlowDelayMs: 3000 });
    try {
      const t = await terminal(platform);
      await pay(t, '4242424242424242', 1000);
      await pay(t, '4000000000000002', 1000);
      await pay(t, '6222021000000000017', 1000); // left processing: the backlog
      // Not on the public port.
      expect((await fetch(`${platform.url}/metrics`)).status).toBe(404);
      const res = await fetch(platform.metricsUrl!);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      expect(text).toMatch(
        /^cardpay_http_requests_total\{route="\/v1\/sessions\/:id\/authenticate",method="POST",status="200"\} 2$/m,
      );
      expect(text).toMatch(
        /^cardpay_http_request_duration_seconds_count\{route="\/v1\/sessions\/:id\/order",method="POST"\} 3$/m,
      );
      expect(text).toMatch(/^cardpay_payments_total\{outcome="succeeded"\} 1$/m);
      expect(text).toMatch(/^cardpay_payments_total\{outcome="card_declined"\} 1$/m);
      expect(text).toMatch(/^cardpay_reconciler_backlog\{kind="payment"\} 1$/m);
      expect(text).toMatch(/^cardpay_notifications_pending 0$/m);
      expect(text).toMatch(/^cardpay_process_resident_memory_bytes \d+/m);
      // The payment platform's time: two charges answered, the slow one unanswered (timed out).
      expect(text).toMatch(
        /^cardpay_payment_platform_request_duration_seconds_count\{call="charge",result="answered"\} 2$/m,
      );
      expect(text).toMatch(
        /^cardpay_payment_platform_request_duration_seconds_count\{call="charge",result="unanswered"\} 1$/m,
      );
      // The database's: on SQLite, each write's wait for its batch's commit.
      const writes = /^cardpay_database_wait_seconds_count\{kind="write"\} (\d+)$/m.exec(text);
      // Each step of the three checkouts writes its begin at least.
      expect(Number(writes?.[1])).toBeGreaterThanOrEqual(3 * 4);
      // Its commits, each counted with the writes it carried: at least one a step.
      const commits = /^cardpay_database_commit_writes_count (\d+)$/m.exec(text);
      const carried = /^cardpay_database_commit_writes_sum (\d+)$/m.exec(text);
      expect(Number(commits?.[1])).toBeGreaterThanOrEqual(3 * 4);
      expect(Number(carried?.[1])).toBeGreaterThanOrEqual(Number(commits?.[1]));
      expect(text).toMatch(/^cardpay_database_commit_writes_bucket\{le="1"\} \d+$/m);
      expect(text).not.toMatch(/ses_|trm_|4242/);
    } finally {
      await platform.close();
    }
  });
});

describe('starting', () => {
  it('keeps the sandbox payment platform on loopback, and logs it under its own name', async () => {
    const logs: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
    const platform = await startSandboxPlatform({
      host: '0.0.0.0',
      logLevel: 'info',
      logStream: stream,
    });
    try {
      expect(platform.sandbox!.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
      const t = await terminal({ ...platform, url: platform.url.replace('0.0.0.0', '127.0.0.1') });
      await pay(t, '4242424242424242', 1000);
    } finally {
      await platform.close();
    }
    const names = new Set(logs.map((l) => JSON.parse(l).name));
    expect([...names].sort()).toEqual(['cardpay-platform', 'sandbox-payment-platform']);
  });

  it('leaves no database or key file behind when the start fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardpay-failed-start-'));
    const blocker = await startSandboxPlatform();
    try {
      const port = Number(new URL(blocker.url).port);
      for (const options of [
        { port }, // in use
        { configObject: { merchants: [{ id: 'bad id' }] } },
      ]) {
        await expect(
          startSandboxPlatform({
            db: join(dir, 'data/cardpay.db'),
            masterKey: undefined,
            ...options,
          }),
        ).rejects.toThrow();
        expect(readdirSync(dir)).toEqual([]);
      }
    } finally {
      await blocker.close();
    }
  });
});

describe('cardpay-platform on the command line', () => {
  const env = { ...process.env };
  delete env.CARDPAY_MASTER_KEY;
  const run = (args: string[]) =>
    spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20000, env });

  it.each([
    [['--bogus'], /unknown option --bogus/],
    [['--port', 'x'], /--port expects a whole number/],
    [['--config', '/nonexistent/cardpay.json'], /cannot read config .*no such file/],
    [
      ['--payment-url', 'http://127.0.0.1:9', '--db', ':memory:'],
      /CARDPAY_MASTER_KEY is required with --payment-url/,
    ],
    [
      [
        '--db',
        'postgres://nobody:secret@127.0.0.1:1/cardpay',
        '--port',
        '0',
        '--sandbox-payments-port',
        '0',
      ],
      /CARDPAY_MASTER_KEY is required with a postgres:\/\/ database/,
    ],
    [['--db', 'mysql://root@127.0.0.1/cardpay'], /only postgres:\/\/ URLs, a SQLite file/],
    [['--seal', 'rot13'], /--seal must be aes-256-gcm or sm4, got "rot13"/],
    [['--db-pool', '0'], /--db-pool expects a whole number from 1 to 1000, got "0"/],
    [
      ['--db', '/etc/hostname/cardpay.db', '--port', '0', '--sandbox-payments-port', '0'],
      /cardpay-platform: cannot (create the database folder|open the database)/,
    ],
  ])('exits 2 with one clear line for %j', (args, message) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('warning:')),
    ).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 2 with one line, the password hidden, when PostgreSQL refuses the connection', () => {
    const r = spawnSync(
      process.execPath,
      [
        bin,
        '--db',
        'postgres://nobody:secret@127.0.0.1:1/cardpay',
        '--port',
        '0',
        '--sandbox-payments-port',
        '0',
      ],
      { encoding: 'utf8', timeout: 20000, env: { ...env, CARDPAY_MASTER_KEY: '42'.repeat(32) } },
    );
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /cannot open the database at postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/cardpay/,
    );
    expect(r.stderr).not.toContain('secret');
  });

  it.each([
    [
      [
        { id: 'mch_a', apiKeySha256: 'ab'.repeat(32) },
        { id: 'mch_a', apiKeySha256: 'cd'.repeat(32) },
      ],
      /mch_a appears twice/,
    ],
    [
      [
        { id: 'mch_a', apiKeySha256: 'ab'.repeat(32) },
        { id: 'mch_b', apiKeySha256: 'ab'.repeat(32) },
      ],
      /mch_b: apiKeySha256 is another merchant's key too/,
    ],
    [[{ id: 'mch_sandbox', apiKeySha256: 'ab'.repeat(32) }], /mch_sandbox is the sandbox merchant/],
  ])('refuses a config whose merchants clash: %j', (merchants, message) => {
    const file = join(mkdtempSync(join(tmpdir(), 'cardpay-cfg-')), 'c.json');
    writeFileSync(file, JSON.stringify({ merchants }));
    const r = run(['--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses a merchant webhook that is not https, exit 2', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cardpay-cfg-')), 'c.json');
    const apiKeySha256 = 'ab'.repeat(32);
    const webhook = { url: 'http://shop.example.com/hooks', secret: 'whsec_0123456789abcdef' };
    writeFileSync(file, JSON.stringify({ merchants: [{ id: 'mch_shop', apiKeySha256, webhook }] }));
    const r = run(['--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/merchant mch_shop: webhook\.url must use https:\/\//);
  });

  it('refuses a config file with a bad field, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardpay-cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ discounts: [{ from: 0, rateBps: 20000 }] }));
    const r = run(['--config', file, '--db', join(dir, 'c.db')]);
    expect(r.status).toBe(2);
    // One line: no word of a master key made (and then removed again) before the config failed.
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/discounts\.CNY\[0\]\.rateBps must be at most 10000/),
    ]);
    expect(readdirSync(dir)).toEqual(['c.json']);
  });

  it('prints its help', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--payment-timeout-ms/);
  });

  it('prints the listening line and the sandbox merchant, then stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardpay-cli-'));
    const child = spawn(
      process.execPath,
      [
        bin,
        '--port',
        '0',
        '--sandbox-payments-port',
        '0',
        '--db',
        join(dir, 'c.db'),
        '--log-level',
        'warn',
      ],
      { env: { ...process.env, CARDPAY_SANDBOX_MERCHANT_KEY: 'sk_test_fixed_key_1' } },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    const started = Date.now();
    while (!/sandbox payment platform: /.test(out) && Date.now() - started < 10000)
      await new Promise((r) => setTimeout(r, 50));
    expect(out).toMatch(/^cardpay platform listening on http:\/\/127\.0\.0\.1:\d+$/m);
    expect(out).toMatch(/sandbox merchant: mch_sandbox/);
    expect(out).toMatch(/sandbox merchant key: sk_test_fixed_key_1/);
    const url = /listening on (\S+)/.exec(out)![1];
    expect((await fetch(`${url}/v1/health`)).status).toBe(200);
    const exit = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });
});

describe('npm start', () => {
  it('stops the platform when the shell npm started it in is ended by a SIGTERM', async () => {
    const start = join(__dirname, '../../scripts/start.js');
    // What `npm start` runs: a shell around the start script. npm's SIGTERM ends the shell only.
    const shell = spawn(
      'sh',
      ['-c', `"${process.execPath}" "${start}" --port 0 --sandbox-payments-port 0 --db :memory:`],
      { env: { ...process.env, CARDPAY_MASTER_KEY: '7d'.repeat(32) } },
    );
    let out = '';
    shell.stdout.on('data', (c) => (out += c));
    const started = Date.now();
    while (!/sandbox payment platform: /.test(out) && Date.now() - started < 20000)
      await new Promise((r) => setTimeout(r, 50));
    const url = /listening on (\S+)/.exec(out)![1];
    expect((await fetch(`${url}/v1/health`)).status).toBe(200);
    shell.kill('SIGTERM');
    let gone = false;
    for (let i = 0; i < 40 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 100));
      gone = await fetch(`${url}/v1/health`).then(
        () => false,
        () => true,
      );
    }
    expect(gone).toBe(true);
  });
});

describePg('cardpay-platform on PostgreSQL, from an empty folder', () => {
  it('starts with its sandbox, making the folder the sandbox keeps its records in', async () => {
    const db = await freshDatabase();
    const cwd = mkdtempSync(join(tmpdir(), 'cardpay-empty-'));
    const child = spawn(
      process.execPath,
      [bin, '--port', '0', '--sandbox-payments-port', '0', '--db', db.url, '--log-level', 'warn'],
      { cwd, env: { ...process.env, CARDPAY_MASTER_KEY: '7c'.repeat(32) } },
    );
    try {
      let out = '';
      let err = '';
      child.stdout.on('data', (c) => (out += c));
      child.stderr.on('data', (c) => (err += c));
      const started = Date.now();
      while (!/sandbox payment platform: /.test(out) && Date.now() - started < 15000) {
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(err).toBe('');
      expect(out).toMatch(/^cardpay platform listening on /m);
      expect((statSync(join(cwd, 'data')).mode & 0o777).toString(8)).toBe('700');
      expect(readdirSync(join(cwd, 'data'))).toContain('cardpay-sandbox-payments.db');
      const exit = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await db.drop();
    }
  });
});
