import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { SqliteStore } from '../../packages/platform/src/store/sqlite';
import { startSandboxPlatform } from '../../packages/testing/src/platform';
import { pay, raw, terminal } from '../support/server-harness';

// The process, as an attacker and an operator find it (security review, issue #15 §3).

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `cardpay-${name}-`));

describe('the process', () => {
  it('closes bodies sent a byte at a time, so stalled clients cannot hold every connection', async () => {
    const platform = await startSandboxPlatform({
      limits: { requestTimeoutMs: 400, maxConnections: 6 },
    });
    try {
      const closed: number[] = [];
      const started = Date.now();
      const sockets = Array.from({ length: 6 }, () => {
        const socket = connect(Number(new URL(platform.url).port), '127.0.0.1');
        socket.on('error', () => undefined);
        socket.write(
          'POST /v1/terminals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{',
        );
        const drip = setInterval(() => socket.writable && socket.write(' '), 100);
        socket.on('close', () => {
          clearInterval(drip);
          closed.push(Date.now() - started);
        });
        return socket;
      });
      await new Promise((r) => setTimeout(r, 1500));
      expect(closed).toHaveLength(6);
      expect(Math.max(...closed)).toBeLessThan(1500);
      // The platform serves new connections again.
      expect((await raw(platform, { method: 'GET', path: '/v1/health' })).status).toBe(200);
      sockets.forEach((s) => s.destroy());
    } finally {
      await platform.close();
    }
  });

  it('survives a database locked by another connection for longer than its busy time-out', async () => {
    const dir = tmp('locked');
    const logs: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => logs.push(c.toString()));
    const platform = await startSandboxPlatform({
      db: join(dir, 'cardpay.db'),
      busyTimeoutMs: 100,
      reconcileEveryMs: 600000,
      logLevel: 'error',
      logStream: stream,
    });
    const rejections: unknown[] = [];
    const onRejection = (r: unknown) => rejections.push(r);
    process.on('unhandledRejection', onRejection);
    try {
      const backup = new Database(join(dir, 'cardpay.db'));
      backup.exec('BEGIN EXCLUSIVE');
      await platform.ctx.reconciler.tick(); // resolves: the failure is logged, not thrown
      backup.exec('COMMIT');
      backup.close();
      expect(logs.join('')).toMatch(/"event":"background_failed"/);
      await platform.ctx.reconciler.tick();
      const t = await terminal(platform);
      expect(await pay(t, '4242424242424242')).toMatchObject({ state: 'succeeded' });
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
      await platform.close();
    }
  });

  it('keeps serving while another process holds the database lock, and answers the write that waits too long 503', async () => {
    const dir = tmp('held');
    const platform = await startSandboxPlatform({
      db: join(dir, 'cardpay.db'),
      busyTimeoutMs: 800,
      reconcileEveryMs: 600000,
    });
    const t = await terminal(platform);
    // The event loop's longest stall while the lock is held.
    let stall = 0;
    let last = Date.now();
    const beat = setInterval(() => {
      stall = Math.max(stall, Date.now() - last - 10);
      last = Date.now();
    }, 10);
    const holder = new Database(join(dir, 'cardpay.db'));
    try {
      holder.exec('BEGIN IMMEDIATE');
      holder.prepare("UPDATE meta SET value = value WHERE key = 'master-key-check'").run();
      const write = raw(platform, {
        method: 'POST',
        path: '/v1/terminals',
        body: JSON.stringify({
          password: { salt: '01'.repeat(16), iterations: 10000, key: '02'.repeat(32) },
        }),
      });
      await new Promise((r) => setTimeout(r, 100));
      // Three rounds of health and a read that writes nothing (a terminal's signed GET spends a
      // nonce, a write): each answered, the median round under 100 ms (one round alone can wait
      // behind another jest worker on two cores).
      const rounds: number[] = [];
      for (let i = 0; i < 3; i++) {
        const asked = Date.now();
        expect((await raw(platform, { method: 'GET', path: '/v1/health' })).status).toBe(200);
        const orders = await raw(platform, {
          method: 'GET',
          path: '/v1/merchant/orders?limit=5',
          headers: { authorization: `Bearer ${platform.merchantKey}` },
        });
        expect(orders.status).toBe(200);
        rounds.push(Date.now() - asked);
      }
      expect(rounds.sort((a, b) => a - b)[1]).toBeLessThan(100);
      // And none waited out the lock (800 ms here), as one blocked by SQLite's own wait would.
      expect(rounds[2]).toBeLessThan(400);
      const refused = await write;
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.json.error).toMatchObject({ retryable: true });
      expect(stall).toBeLessThan(100);
    } finally {
      clearInterval(beat);
      holder.exec('ROLLBACK');
      holder.close();
    }
    // Once the lock is gone, writes go through again.
    expect(
      (
        await t.client.createSession(
          { merchantId: 'mch_sandbox' },
          await t.client.newIdempotencyKey(),
        )
      ).state,
    ).toBe('awaiting_order');
    await platform.close();
  });

  it('refuses to start with a master key that does not open the database, in one line, exit 2', async () => {
    const db = join(tmp('key'), 'cardpay.db');
    const first = await startSandboxPlatform({ db, masterKey: '11'.repeat(32) });
    await first.close();
    await expect(startSandboxPlatform({ db, masterKey: '22'.repeat(32) })).rejects.toMatchObject({
      name: 'StartupError',
      message: expect.stringMatching(/CARDPAY_MASTER_KEY does not open/),
    });
    const cli = spawnSync(
      process.execPath,
      [
        join(__dirname, '../../packages/platform/bin/cardpay-platform.js'),
        '--db',
        db,
        '--port',
        '0',
      ],
      {
        env: { ...process.env, CARDPAY_MASTER_KEY: '33'.repeat(32) },
        encoding: 'utf8',
        timeout: 15000,
      },
    );
    expect(cli.status).toBe(2);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli.stderr).toMatch(/^cardpay-platform: CARDPAY_MASTER_KEY does not open/);
  });

  it('keeps the sandbox merchant’s key and webhook secret across restarts, beside the master key', async () => {
    const db = join(tmp('sandbox-key'), 'cardpay.db');
    const hook = { sandboxWebhookUrl: 'http://127.0.0.1:9/hooks' };
    const first = await startSandboxPlatform({ db, masterKey: undefined, ...hook });
    await first.close();
    const second = await startSandboxPlatform({ db, masterKey: undefined, ...hook });
    await second.close();
    expect(second.merchantKey).toBe(first.merchantKey);
    expect(second.sandboxMerchant?.webhookSecret).toMatch(/^whsec_/);
    expect(second.sandboxMerchant?.webhookSecret).toBe(first.sandboxMerchant?.webhookSecret);
    expect((statSync(`${db}.sandbox-merchant-key`).mode & 0o777).toString(8)).toBe('600');
    expect((statSync(`${db}.sandbox-webhook-secret`).mode & 0o777).toString(8)).toBe('600');
  });

  it('keeps its data folder and files readable by its own user only', async () => {
    const dir = join(tmp('modes'), 'data');
    const platform = await startSandboxPlatform({
      db: join(dir, 'cardpay.db'),
      masterKey: undefined,
    });
    try {
      const t = await terminal(platform);
      await pay(t, '4242424242424242');
      const mode = (f: string) => (statSync(join(dir, f)).mode & 0o777).toString(8);
      expect(mode('.')).toBe('700');
      for (const f of [
        'cardpay.db',
        'cardpay.db-wal',
        'cardpay.db-shm',
        'cardpay.db.master-key',
        'cardpay-sandbox-payments.db',
      ])
        expect([f, mode(f)]).toEqual([f, '600']);
    } finally {
      await platform.close();
    }
  });

  it('expires abandoned sessions in the background and drops their sealed card numbers', async () => {
    let now = Date.now();
    const platform = await startSandboxPlatform({ clock: () => now, reconcileEveryMs: 600000 });
    try {
      const t = await terminal(platform);
      t.host.now = () => now;
      const s = await t.client.createSession(
        { merchantId: 'mch_sandbox' },
        await t.client.newIdempotencyKey(),
      );
      await t.client.submitOrder(
        s.sessionId,
        { amount: 100, currency: 'CNY', card: { source: 'manual', payload: '4242424242424242' } },
        await t.client.newIdempotencyKey(),
      );
      const row = () =>
        (platform.store as SqliteStore).db
          .prepare('SELECT state, pan_sealed FROM sessions WHERE id = ?')
          .get(s.sessionId) as { state: string; pan_sealed: string | null };
      expect(row().pan_sealed).not.toBeNull();
      now += 16 * 60 * 1000;
      await platform.ctx.reconciler.tick();
      expect(row()).toEqual({ state: 'expired', pan_sealed: null });
      // Past the retention period it is gone altogether.
      now += 31 * 24 * 3600 * 1000;
      await platform.ctx.reconciler.tick();
      expect(row()).toBeUndefined();
    } finally {
      await platform.close();
    }
  });
});

describe('the HTTP surface', () => {
  it('refuses the names every object has (constructor, toString) as unknown fields', async () => {
    const platform = await startSandboxPlatform();
    try {
      const t = await terminal(platform);
      for (const body of [
        { merchantId: 'mch_sandbox', constructor: 1 },
        { merchantId: 'mch_sandbox', valueOf: 'x' },
        { merchantId: 'mch_sandbox', hasOwnProperty: true },
      ]) {
        const r = await t.client
          .createSession(body as never, await t.client.newIdempotencyKey())
          .catch((e) => e);
        expect(r).toMatchObject({ code: 'invalid_request', status: 400 });
        expect(r.message).toContain(Object.keys(body)[1]);
      }
      const s = await t.client.createSession(
        { merchantId: 'mch_sandbox' },
        await t.client.newIdempotencyKey(),
      );
      const nested = await t.client
        .submitOrder(
          s.sessionId,
          {
            amount: 100,
            currency: 'CNY',
            card: { source: 'toString', payload: '4242424242424242' },
          } as never,
          await t.client.newIdempotencyKey(),
        )
        .catch((e) => e);
      expect(nested).toMatchObject({ code: 'invalid_request' });
    } finally {
      await platform.close();
    }
  });

  it('signs answers to signed routes only, and tells caches to keep nothing', async () => {
    const platform = await startSandboxPlatform();
    try {
      const t = await terminal(platform);
      const headers = {
        'x-cardpay-terminal': t.id,
        'x-cardpay-timestamp': String(Math.floor(Date.now() / 1000)),
        'x-cardpay-nonce': 'ab'.repeat(16),
      };
      const health = await raw(platform, { method: 'GET', path: '/v1/health', headers });
      expect(health.headers['x-cardpay-signature']).toBeUndefined();
      const refused = await raw(platform, {
        method: 'POST',
        path: '/v1/terminals',
        body: '{"password":1}',
        headers,
      });
      expect(refused.status).toBe(400);
      expect(refused.headers['x-cardpay-signature']).toBeUndefined();
      const registered = await raw(platform, {
        method: 'POST',
        path: '/v1/terminals',
        body: JSON.stringify({
          password: { salt: '0f'.repeat(16), iterations: 10000, key: 'aa'.repeat(32) },
        }),
      });
      expect(registered.status).toBe(201);
      expect(registered.headers['cache-control']).toBe('no-store');
    } finally {
      await platform.close();
    }
  });

  it('answers an over-long or malformed path in the protocol’s error shape', async () => {
    const platform = await startSandboxPlatform();
    try {
      const long = await raw(platform, { method: 'GET', path: `/v1/sessions/${'a'.repeat(300)}` });
      expect(long.status).toBe(414);
      expect(long.json).toEqual({
        error: { code: 'not_found', message: expect.any(String), retryable: false },
      });
      const bad = await raw(platform, { method: 'GET', path: '/v1/sessions/%zz' });
      expect(bad.status).toBe(400);
      expect(bad.json.error.code).toBe('invalid_request');
    } finally {
      await platform.close();
    }
  });
});
