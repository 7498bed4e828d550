import { ConfigError } from './infra/config';
import { startPlatform, StartupError, type PlatformOptions } from './platform';
import { StoreError } from './store/types';
import { SANDBOX_CARDS } from './sandbox/payment-platform';

const HELP = `Usage: cardpay-platform [options]

The CardPay reference trading platform. Without --payment-url it also starts the sandbox
payment platform, with the sandbox merchant mch_sandbox.

Options:
  --host <addr>                  listen address (default 127.0.0.1)
  --port <n>                     listen port, 0 picks a free one (default 8787)
  --db <where>                   SQLite file, :memory:, or postgres://user@host:port/db (default ./data/cardpay.db)
  --db-pool <n>                  PostgreSQL connections per instance (default 6)
  --payment-url <url>            the payment platform to charge through (production mode)
  --sandbox-payments-port <n>    where the sandbox payment platform listens (default 8788)
  --sandbox-host <addr>          the sandbox payment platform's listen address (default 127.0.0.1,
                                 whatever --host is: it has no authentication)
  --metrics-port <n>             serve Prometheus metrics at GET /metrics on this port (default off)
  --metrics-host <addr>          the metrics listen address (default 127.0.0.1)
  --payment-timeout-ms <n>       how long one charge may take before its outcome is unknown (default 3000)
  --session-ttl-s <n>            checkout session lifetime (default 900)
  --config <file>                JSON: merchants, discount ranges, authentication policy, brands
  --sandbox-slow-ms <n>          how late the sandbox answers for the slow card (default 5000)
  --sandbox-webhook-url <url>    where the sandbox merchant's notifications go (https://, or http:// on loopback)
  --webhook-retry-base-ms <n>    the first retry delay of a notification (default 10000)
  --no-dashboard                 do not serve the merchant dashboard at /dashboard
  --seal <aes-256-gcm|sm4>       how secrets are sealed at rest (default aes-256-gcm; sm4 is
                                 SM4-CTR with HMAC-SM3); a database keeps the way it was made with
  --statement-timezone <zone>    the IANA time zone of the statements' days (default Asia/Shanghai)
  --wechat-api-url <url>         WeChat's server APIs, for shoppers' identity and SOTER (default
                                 https://api.weixin.qq.com; a stand-in in tests)
  --log-level <level>            pino level: fatal, error, warn, info, debug, silent (default info)
  -h, --help                     show this help

Environment:
  CARDPAY_MASTER_KEY             64 hex characters; encrypts secrets at rest (required with --payment-url)
  CARDPAY_SANDBOX_MERCHANT_KEY   the sandbox merchant's API key (random when unset)
  CARDPAY_SANDBOX_WEBHOOK_SECRET the sandbox merchant's webhook secret, whsec_… (random when unset)
`;

class UsageError extends Error {}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function int(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${name} expects a whole number from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

/** Parses the command line; throws UsageError with a one-line reason. */
export function parseArgs(argv: string[]): PlatformOptions & { help?: boolean } {
  const out: PlatformOptions & { help?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      out.help = true;
      continue;
    }
    if (arg === '--no-dashboard') {
      out.dashboard = false;
      continue;
    }
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const known = [
      '--host',
      '--port',
      '--db',
      '--db-pool',
      '--payment-url',
      '--sandbox-payments-port',
      '--sandbox-host',
      '--metrics-port',
      '--metrics-host',
      '--payment-timeout-ms',
      '--session-ttl-s',
      '--config',
      '--log-level',
      '--sandbox-slow-ms',
      '--sandbox-webhook-url',
      '--webhook-retry-base-ms',
      '--wechat-api-url',
      '--statement-timezone',
      '--seal',
    ];
    if (!known.includes(flag)) throw new UsageError(`unknown option ${flag} (see --help)`);
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--')))
      throw new UsageError(`${flag} needs a value`);
    switch (flag) {
      case '--host':
        out.host = value;
        break;
      case '--port':
        out.port = int(flag, value, 0, 65535);
        break;
      case '--db':
        // A URL of another database would otherwise be taken for a file name (`mysql:/…`).
        if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !/^postgres(ql)?:\/\//.test(value))
          throw new UsageError(
            `--db ${value.replace(/:[^:@/]*@/, ':***@')}: only postgres:// URLs, a SQLite file or :memory: are supported`,
          );
        if (/^postgres(ql)?:\/\//.test(value)) {
          try {
            new URL(value);
          } catch {
            throw new UsageError(`--db ${value.replace(/:[^:@/]*@/, ':***@')} is not a valid URL`);
          }
        }
        out.db = value;
        break;
      case '--db-pool':
        out.dbPool = int(flag, value, 1, 1000);
        break;
      case '--payment-url':
        if (!/^https?:\/\/[^/]+/.test(value))
          throw new UsageError(`--payment-url must be an http(s) URL, got "${value}"`);
        out.paymentUrl = value.replace(/\/+$/, '');
        break;
      case '--sandbox-payments-port':
        out.sandboxPaymentsPort = int(flag, value, 0, 65535);
        break;
      case '--sandbox-host':
        out.sandboxHost = value;
        break;
      case '--metrics-port':
        out.metricsPort = int(flag, value, 0, 65535);
        break;
      case '--metrics-host':
        out.metricsHost = value;
        break;
      case '--payment-timeout-ms':
        out.paymentTimeoutMs = int(flag, value, 1, 600000);
        break;
      case '--session-ttl-s':
        out.sessionTtlS = int(flag, value, 10, 86400);
        break;
      case '--config':
        out.config = value;
        break;
      case '--sandbox-slow-ms':
        out.sandboxSlowDelayMs = int(flag, value, 0, 600000);
        break;
      case '--sandbox-webhook-url':
        out.sandboxWebhookUrl = value;
        break;
      case '--seal':
        if (value !== 'aes-256-gcm' && value !== 'sm4')
          throw new UsageError(`--seal must be aes-256-gcm or sm4, got "${value}"`);
        out.seal = value;
        break;
      case '--statement-timezone':
        out.statementTimeZone = value;
        break;
      case '--wechat-api-url': {
        let url: URL | undefined;
        try {
          url = new URL(value);
        } catch {
          url = undefined;
        }
        if (
          !url ||
          !(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname)))
        )
          throw new UsageError(
            `--wechat-api-url must be an https:// URL (plain http only on loopback), got "${value}"`,
          );
        out.wechatApiUrl = value;
        break;
      }
      case '--webhook-retry-base-ms':
        out.webhookRetryBaseMs = int(flag, value, 1, 86400000);
        break;
      case '--log-level':
        if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(value))
          throw new UsageError(`--log-level must be a pino level, got "${value}"`);
        out.logLevel = value;
        break;
    }
  }
  return out;
}

/** Runs the platform until SIGTERM/SIGINT. Exit code 2 for bad flags, config or database. */
export async function main(argv: string[]): Promise<void> {
  let options;
  try {
    options = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`cardpay-platform: ${(error as Error).message}\n`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(HELP);
    return;
  }
  let platform;
  try {
    platform = await startPlatform({
      ...options,
      warn: (line) => process.stderr.write(line + '\n'),
    });
  } catch (error) {
    const known =
      error instanceof UsageError ||
      error instanceof ConfigError ||
      error instanceof StoreError ||
      error instanceof StartupError;
    process.stderr.write(
      `cardpay-platform: ${known ? (error as Error).message : `could not start: ${(error as Error).message}`}\n`,
    );
    process.exit(2);
  }
  const lines = [`cardpay platform listening on ${platform.url}`];
  if (platform.sandbox && platform.sandboxMerchant) {
    lines.push(
      `sandbox merchant: ${platform.sandboxMerchant.id}`,
      `sandbox merchant key: ${platform.sandboxMerchant.apiKey}`,
      ...(platform.sandboxMerchant.webhookSecret
        ? [`sandbox webhook secret: ${platform.sandboxMerchant.webhookSecret}`]
        : []),
      `sandbox payment platform: ${platform.sandbox.url}${options.host && !isLoopback(options.host) && !options.sandboxHost ? ' (loopback only, as it has no authentication; --sandbox-host to change)' : ''}`,
      `sandbox cards: ${SANDBOX_CARDS.approvedUnionPay19} (approved), ${SANDBOX_CARDS.approvedVisa} (approved), ${SANDBOX_CARDS.declined} (declined), ${SANDBOX_CARDS.slow} (slow), ${SANDBOX_CARDS.flaky} (flaky); CVV 999 is declined`,
      "sandbox SOTER: any signature over an assertion of the session challenge passes, except all zeros (WeChat's own check is out of reach)",
    );
  }
  if (platform.metricsUrl) lines.push(`metrics: ${platform.metricsUrl}`);
  lines.push(
    'WeChat DevTools: import this folder (project.config.json: plugin in dist/plugin, demo in dist/demo) and allow non-HTTPS local requests; the demo pays here.',
    'Stop with Ctrl+C.',
  );
  process.stdout.write(lines.join('\n') + '\n');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(
      `cardpay-platform: ${signal}: finishing requests in flight, then stopping\n`,
    );
    try {
      await platform.close();
      process.exit(0);
    } catch (error) {
      process.stderr.write(`cardpay-platform: error while stopping: ${(error as Error).message}\n`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // A stray rejection is a bug to fix, not a reason to drop every checkout in flight.
  process.on('unhandledRejection', (reason) => {
    const e = reason as Error | undefined;
    platform.app.log.error(
      { event: 'unhandled_rejection', err: { type: e?.name, message: e?.message } },
      'unhandled promise rejection',
    );
  });
}
