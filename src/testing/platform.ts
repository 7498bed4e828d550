import { startPlatform, type PlatformOptions, type RunningPlatform } from '../server/platform';

export type SandboxPlatform = RunningPlatform & { merchantKey: string };

/**
 * Starts the reference platform and its sandbox payment platform on free loopback ports, with an
 * in-memory database and no logs: what a merchant's test (and ours) talks to over real HTTP.
 *
 * @example
 * const platform = await startSandboxPlatform()
 * afterAll(() => platform.close())
 */
export async function startSandboxPlatform(options: PlatformOptions = {}): Promise<SandboxPlatform> {
  const running = await startPlatform({
    port: 0,
    sandboxPaymentsPort: 0,
    db: ':memory:',
    logLevel: 'silent',
    sandboxSlowDelayMs: 1500,
    paymentTimeoutMs: 500,
    masterKey: '42'.repeat(32),
    ...options,
  });
  return Object.assign(running, { merchantKey: running.sandboxMerchant?.apiKey ?? '' });
}
