import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { platformBin } from './root';
import { startPlatform, type PlatformOptions, type RunningPlatform } from 'cardpay-platform';

export type SandboxPlatform = RunningPlatform & { merchantKey: string };

/**
 * Starts the reference platform and its sandbox payment platform on free loopback ports, with an
 * in-memory database and no logs: what a merchant's test (and ours) talks to over real HTTP.
 *
 * @example
 * const platform = await startSandboxPlatform()
 * afterAll(() => platform.close())
 */
export async function startSandboxPlatform(
  options: PlatformOptions = {},
): Promise<SandboxPlatform> {
  const running = await startPlatform({
    port: 0,
    sandboxPaymentsPort: 0,
    // CARDPAY_TEST_DB runs the same tests on another database (our suite sets a PostgreSQL URL).
    db: process.env.CARDPAY_TEST_DB ?? ':memory:',
    // The sandbox keeps its records beside a database file a test names (so they outlive a
    // restart), and in memory otherwise.
    ...(options.db ? {} : { sandboxDb: ':memory:' }),
    logLevel: 'silent',
    sandboxSlowDelayMs: 1500,
    paymentTimeoutMs: 500,
    masterKey: '42'.repeat(32),
    ...options,
  });
  return Object.assign(running, { merchantKey: running.sandboxMerchant?.apiKey ?? '' });
}

export interface SpawnedPlatform {
  url: string;
  merchantKey: string;
  sandboxUrl: string;
  close(): Promise<void>;
}

/**
 * Runs `cardpay-platform` as a separate process on free ports with an in-memory database, and
 * resolves once it prints its listening lines. For tests whose own environment cannot host a
 * server (jest's jsdom environment, used by miniprogram-simulate).
 *
 * @example
 * const platform = await spawnSandboxPlatform(['--payment-timeout-ms', '300'])
 * afterAll(() => platform.close())
 */
export function spawnSandboxPlatform(extraArgs: string[] = []): Promise<SpawnedPlatform> {
  const bin = platformBin();
  const child = spawn(
    process.execPath,
    [
      bin,
      '--port',
      '0',
      '--sandbox-payments-port',
      '0',
      '--db',
      ':memory:',
      '--log-level',
      'warn',
      ...extraArgs,
    ],
    {
      env: { ...process.env, CARDPAY_MASTER_KEY: '42'.repeat(32) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cardpay-platform did not start in 15 s: ${err || out}`));
    }, 15000);
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('exit', (code) =>
      reject(new Error(`cardpay-platform exited with ${code}: ${err.trim()}`)),
    );
    child.stdout.on('data', (c: Buffer) => {
      out += c;
      const url = /listening on (\S+)/.exec(out)?.[1];
      const merchantKey = /sandbox merchant key: (\S+)/.exec(out)?.[1];
      const sandboxUrl = /sandbox payment platform: (\S+)/.exec(out)?.[1];
      if (!url || !merchantKey || !sandboxUrl) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({
        url,
        merchantKey,
        sandboxUrl,
        close: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

/**
 * Creates a merchant order on a sandbox platform (PROTOCOL.md §7.1) as the merchant's server would,
 * over node:http so it also works under jest's jsdom environment, which has no `fetch`.
 *
 * @example
 * const { orderRef } = await createMerchantOrder(platform, { merchantOrderId: 'cart-1', amount: 1999 })
 */
export function createMerchantOrder(
  platform: { url: string; merchantKey: string },
  order: { merchantOrderId: string; amount: number; currency?: string; description?: string },
): Promise<{ orderRef: string; status: string; amount: number }> {
  const body = JSON.stringify({ currency: 'CNY', ...order });
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${platform.url}/v1/merchant/orders`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${platform.merchantKey}`,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => {
          if (res.statusCode !== 200 && res.statusCode !== 201)
            return reject(new Error(`creating the merchant order: HTTP ${res.statusCode} ${text}`));
          resolve(JSON.parse(text) as { orderRef: string; status: string; amount: number });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
