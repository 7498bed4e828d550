import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { CARD_BRANDS, type AuthMethod, type CardBrand, validate, type Schema } from 'cardpay';
import { randomHex, sha256 } from './secrets';
import { DEFAULT_CARD_RANGES, type CardRange } from '../domain/card-ranges';

/** How a merchant wants its shoppers to authenticate. */
export interface AuthPolicy {
  /** Methods in the platform's order of preference; a terminal sees those it can use. */
  methods: AuthMethod[];
  /** From this amount (minor units) on, two different methods are required. */
  twoFactorsFrom?: number;
}

export interface MerchantConfig {
  id: string;
  name: string;
  /** SHA-256 (hex) of the merchant's API key: the key itself is never stored. */
  apiKeySha256: string;
  acceptedBrands: CardBrand[];
  currencies: string[];
  /** Whether sessions without a merchant order (open amounts) are allowed. */
  openAmounts: boolean;
  auth: AuthPolicy;
  /** Where its notifications go (PROTOCOL.md §7.3), and the secret that signs them. */
  webhook?: { url: string; secret: string };
}

export interface DiscountRange {
  /** Lower bound of the historical payment amount, minor units. */
  from: number;
  rateBps: number;
}

export interface PlatformConfig {
  merchants: MerchantConfig[];
  /**
   * Loyalty ranges per currency (PROTOCOL.md §6), each sorted by `from` and starting at 0; a
   * currency without ranges gets no discount.
   */
  discounts: Record<string, DiscountRange[]>;
  /** Terminal registrations allowed per source address per minute. */
  registrationsPerMinute: number;
  sessionTtlMs: number;
  paymentTimeoutMs: number;
  /** Consecutive failed authentications that lock a terminal, and for how long. */
  maxAuthFailures: number;
  lockMs: number;
  /** Accepted distance between a request's timestamp and the server clock. */
  skewMs: number;
  nonceTtlMs: number;
  idempotencyTtlMs: number;
  /** How often the reconciler looks for payments with an unknown outcome. */
  reconcileEveryMs: number;
  /**
   * How long after it was sent an unanswered charge or refund that the payment platform does not
   * know is declared never received (no money moved). Longer than any delay on the way to it.
   */
  neverReceivedAfterMs?: number;
  /** Finished sessions without a payment are deleted this long after they expired. */
  sessionRetentionMs: number;
  /** The first retry delay of a notification; later ones grow from it. */
  webhookRetryBaseMs: number;
  /** How long a receiver has to answer 2xx. */
  webhookTimeoutMs: number;
  /** Declined payments allowed per card and per terminal in any hour (PROTOCOL.md §5.3). */
  velocity: { cardDeclinesPerHour: number; terminalDeclinesPerHour: number };
  /** What one client may take of the platform; beyond it, `429 rate_limited` or a closed socket. */
  throttle: Throttle;
  /**
   * Whether a merchant's `https://` webhook may point at a private, link-local or metadata
   * address (an operator whose merchants' receivers sit on its own network says so).
   */
  allowPrivateWebhooks: boolean;
  /** Who issued which cards, by their first six digits (PROTOCOL.md §5.2 `card.issuer`). */
  cardRanges: readonly CardRange[];
  /**
   * WeChat credentials (PROTOCOL.md §2.1): each host mini-program's AppID and secret, for its
   * shoppers' openids and SOTER checks, and the plugin's, for openpids. Absent: no WeChat identity.
   */
  wechat?: WeChatConfig;
  /** The IANA time zone whose days the statements cover (PROTOCOL.md §7.4). */
  statementTimeZone: string;
}

export interface WeChatCredentials {
  appId: string;
  secret: string;
}

export interface WeChatConfig {
  apps: WeChatCredentials[];
  plugin?: WeChatCredentials;
}

export interface Throttle {
  /** Connections one address may hold at once; more are closed at once. */
  connectionsPerAddress: number;
  /** Signed POSTs one terminal may send per second, sustained (a token bucket, per instance)… */
  postsPerSecond: number;
  /** …and at once after a pause. */
  postsBurst: number;
  /** Sessions one terminal may have open (before processing, not expired) at once. */
  openSessionsPerTerminal: number;
}

export const SANDBOX_MERCHANT_ID = 'mch_sandbox';

/** The reference defaults (PROTOCOL.md §5, §6). */
export function defaultConfig(): PlatformConfig {
  return {
    merchants: [],
    discounts: {
      CNY: [
        { from: 0, rateBps: 0 },
        { from: 100000, rateBps: 200 },
        { from: 500000, rateBps: 500 },
      ],
    },
    registrationsPerMinute: 60,
    sessionTtlMs: 15 * 60 * 1000,
    paymentTimeoutMs: 3000,
    maxAuthFailures: 5,
    lockMs: 15 * 60 * 1000,
    skewMs: 300 * 1000,
    nonceTtlMs: 600 * 1000,
    idempotencyTtlMs: 24 * 3600 * 1000,
    reconcileEveryMs: 1000,
    velocity: { cardDeclinesPerHour: 5, terminalDeclinesPerHour: 10 },
    // A checkout is four signed POSTs a shopper makes seconds apart; a burst allows a retry storm.
    throttle: {
      connectionsPerAddress: 256,
      postsPerSecond: 10,
      postsBurst: 40,
      openSessionsPerTerminal: 20,
    },
    allowPrivateWebhooks: false,
    cardRanges: DEFAULT_CARD_RANGES,
    statementTimeZone: 'Asia/Shanghai',
    sessionRetentionMs: 30 * 24 * 3600 * 1000,
    webhookRetryBaseMs: 10000,
    webhookTimeoutMs: 10000,
  };
}

/** The sandbox merchant: open amounts, every brand, CNY, password then biometrics then CVV. */
export function sandboxMerchant(apiKey: string): MerchantConfig {
  return {
    id: SANDBOX_MERCHANT_ID,
    name: 'CardPay Sandbox Shop',
    apiKeySha256: sha256(apiKey),
    acceptedBrands: [...CARD_BRANDS],
    currencies: ['CNY'],
    openAmounts: true,
    auth: { methods: ['password', 'biometric', 'cvv'] },
  };
}

const merchantSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'apiKeySha256'],
  properties: {
    id: { type: 'string', pattern: '^mch_[A-Za-z0-9_]{1,60}$' },
    name: { type: 'string', maxLength: 128 },
    apiKeySha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    acceptedBrands: { type: 'array', items: { type: 'string', enum: CARD_BRANDS } },
    currencies: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[A-Z]{3}$' } },
    openAmounts: { type: 'boolean' },
    auth: {
      type: 'object',
      additionalProperties: false,
      properties: {
        methods: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', enum: ['password', 'biometric', 'cvv'] },
        },
        twoFactorsFrom: { type: 'integer', minimum: 1 },
      },
    },
    webhook: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'secret'],
      properties: {
        url: { type: 'string', maxLength: 2048 },
        secret: { type: 'string', pattern: '^whsec_[A-Za-z0-9_]{16,128}$' },
      },
    },
  },
};

// A secret is given in the file, or (better) named: {"env": "NAME"} reads it from the
// environment. Either form is checked in `wechatConfig` (the schema language has no "or").
const secretSchema: Schema = { additionalProperties: true };
const credentialsSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    appId: { type: 'string', pattern: '^wx[0-9a-f]{16}$' },
    secret: secretSchema,
  },
  required: ['appId', 'secret'],
};

const fileSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    merchants: { type: 'array', items: merchantSchema },
    // Per currency (`{"CNY": [...], "USD": [...]}`), or, as before, one list read as CNY's; both
    // are checked in `applyConfig`.
    discounts: { additionalProperties: true },
    registrationsPerMinute: { type: 'integer', minimum: 1, maximum: 100000 },
    maxAuthFailures: { type: 'integer', minimum: 1, maximum: 100 },
    lockMinutes: { type: 'integer', minimum: 1, maximum: 1440 },
    sessionRetentionDays: { type: 'integer', minimum: 1, maximum: 3650 },
    reconcile: {
      type: 'object',
      additionalProperties: false,
      properties: {
        everyMs: { type: 'integer', minimum: 10, maximum: 600000 },
        neverReceivedAfterMs: { type: 'integer', minimum: 1000, maximum: 86400000 },
      },
    },
    velocity: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cardDeclinesPerHour: { type: 'integer', minimum: 1, maximum: 10000 },
        terminalDeclinesPerHour: { type: 'integer', minimum: 1, maximum: 10000 },
      },
    },
    throttle: {
      type: 'object',
      additionalProperties: false,
      properties: {
        connectionsPerAddress: { type: 'integer', minimum: 1, maximum: 1000000 },
        postsPerSecond: { type: 'integer', minimum: 1, maximum: 1000000 },
        postsBurst: { type: 'integer', minimum: 1, maximum: 1000000 },
        openSessionsPerTerminal: { type: 'integer', minimum: 1, maximum: 1000000 },
      },
    },
    allowPrivateWebhooks: { type: 'boolean' },
    statementTimeZone: { type: 'string', minLength: 1, maxLength: 64 },
    wechat: {
      type: 'object',
      additionalProperties: false,
      // INTERFACES.md §1: the plugin's own credentials beside each host app's.
      properties: {
        apps: { type: 'array', minItems: 1, maxItems: 10000, items: credentialsSchema },
        pluginAppId: { type: 'string', pattern: '^wx[0-9a-f]{16}$' },
        pluginSecret: secretSchema,
      },
      required: ['apps'],
    },
    // Replaces the reference table as a whole: the operator's card scheme knows its ranges.
    cardRanges: {
      type: 'array',
      maxItems: 100000,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          prefix: { type: 'string', pattern: '^[0-9]{6}$' },
          name: { type: 'string', minLength: 1, maxLength: 64 },
          nameEn: { type: 'string', minLength: 1, maxLength: 64 },
          type: { type: 'string', enum: ['debit', 'credit', 'prepaid'] },
        },
        required: ['prefix', 'name', 'type'],
      },
    },
  },
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads a `--config` file over the defaults. Errors name the file and the offending field.
 *
 * ```json
 * { "merchants": [{ "id": "mch_shop", "apiKeySha256": "…", "acceptedBrands": ["unionpay", "visa"],
 *                   "auth": { "methods": ["password", "cvv"], "twoFactorsFrom": 500000 } }],
 *   "discounts": [{ "from": 0, "rateBps": 0 }, { "from": 100000, "rateBps": 200 }] }
 * ```
 */
export function loadConfigFile(path: string, base: PlatformConfig): PlatformConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'no such file'
        : (error as Error).message;
    throw new ConfigError(`cannot read config ${path}: ${reason}`);
  }
  return applyConfig(raw, base, path);
}

export function applyConfig(raw: unknown, base: PlatformConfig, source = 'config'): PlatformConfig {
  const checked = validate<{
    merchants?: Partial<MerchantConfig>[];
    discounts?: unknown;
    registrationsPerMinute?: number;
    maxAuthFailures?: number;
    lockMinutes?: number;
    velocity?: Partial<PlatformConfig['velocity']>;
    throttle?: Partial<Throttle>;
    allowPrivateWebhooks?: boolean;
    cardRanges?: CardRange[];
    statementTimeZone?: string;
    wechat?: {
      apps: { appId: string; secret: string | { env: string } }[];
      pluginAppId?: string;
      pluginSecret?: string | { env: string };
    };
    sessionRetentionDays?: number;
    reconcile?: { everyMs?: number; neverReceivedAfterMs?: number };
  }>(fileSchema, raw);
  if (!checked.ok) throw new ConfigError(`invalid ${source}: ${checked.message}`);
  const c = checked.value;
  const allowPrivateWebhooks = c.allowPrivateWebhooks ?? base.allowPrivateWebhooks;
  const merchants = (c.merchants ?? []).map((m): MerchantConfig => ({
    id: m.id!,
    name: m.name ?? m.id!,
    apiKeySha256: m.apiKeySha256!,
    acceptedBrands: m.acceptedBrands ?? [...CARD_BRANDS],
    currencies: m.currencies ?? ['CNY'],
    openAmounts: m.openAmounts ?? false,
    auth: {
      methods: m.auth?.methods ?? ['password', 'biometric', 'cvv'],
      ...(m.auth?.twoFactorsFrom ? { twoFactorsFrom: m.auth.twoFactorsFrom } : {}),
    },
    ...(m.webhook
      ? {
          webhook: {
            url: webhookUrl(m.webhook.url, `merchant ${m.id}: webhook.url`, allowPrivateWebhooks),
            secret: m.webhook.secret,
          },
        }
      : {}),
  }));
  // Mistakes that would otherwise pass silently: a second entry replacing the first, a key that
  // authenticates as whichever merchant comes last, the sandbox merchant replaced while its key
  // is still printed.
  const seen = new Set<string>();
  const keys = new Set(base.merchants.map((b) => b.apiKeySha256));
  for (const m of merchants) {
    if (seen.has(m.id)) throw new ConfigError(`invalid ${source}: merchant ${m.id} appears twice`);
    seen.add(m.id);
    if (m.id === SANDBOX_MERCHANT_ID && base.merchants.some((b) => b.id === SANDBOX_MERCHANT_ID))
      throw new ConfigError(
        `invalid ${source}: ${SANDBOX_MERCHANT_ID} is the sandbox merchant; give yours another id`,
      );
    if (keys.has(m.apiKeySha256))
      throw new ConfigError(
        `invalid ${source}: merchant ${m.id}: apiKeySha256 is another merchant's key too`,
      );
    keys.add(m.apiKeySha256);
    if (!m.auth.methods.some((x) => x === 'password' || x === 'biometric'))
      throw new ConfigError(
        `invalid ${source}: merchant ${m.id}: auth.methods must include password or biometric (a CVV alone does not authenticate the terminal)`,
      );
  }
  const discounts =
    c.discounts === undefined ? base.discounts : discountRanges(c.discounts, source);
  return {
    ...base,
    merchants: [
      ...base.merchants.filter((b) => !merchants.some((m) => m.id === b.id)),
      ...merchants,
    ],
    discounts,
    registrationsPerMinute: c.registrationsPerMinute ?? base.registrationsPerMinute,
    maxAuthFailures: c.maxAuthFailures ?? base.maxAuthFailures,
    lockMs: c.lockMinutes ? c.lockMinutes * 60000 : base.lockMs,
    velocity: { ...base.velocity, ...c.velocity },
    throttle: { ...base.throttle, ...c.throttle },
    allowPrivateWebhooks,
    cardRanges: c.cardRanges ?? base.cardRanges,
    wechat: c.wechat ? wechatConfig(c.wechat, source) : base.wechat,
    statementTimeZone: statementTimeZone(c.statementTimeZone ?? base.statementTimeZone, source),
    reconcileEveryMs: c.reconcile?.everyMs ?? base.reconcileEveryMs,
    neverReceivedAfterMs: c.reconcile?.neverReceivedAfterMs ?? base.neverReceivedAfterMs,
    sessionRetentionMs: c.sessionRetentionDays
      ? c.sessionRetentionDays * 24 * 3600 * 1000
      : base.sessionRetentionMs,
  };
}

const rangesSchema: Schema = {
  type: 'array',
  minItems: 1,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['from', 'rateBps'],
    properties: {
      from: { type: 'integer', minimum: 0 },
      rateBps: { type: 'integer', minimum: 0, maximum: 10000 },
    },
  },
};

/**
 * The config's `discounts`: ranges per currency, or (the form before currencies) one list, read
 * as CNY's. Each list is sorted and must start at 0.
 */
function discountRanges(raw: unknown, source: string): Record<string, DiscountRange[]> {
  const byCurrency: Record<string, unknown> = Array.isArray(raw)
    ? { CNY: raw }
    : raw !== null && typeof raw === 'object'
      ? (raw as Record<string, unknown>)
      : { '': raw };
  const out: Record<string, DiscountRange[]> = {};
  for (const [currency, ranges] of Object.entries(byCurrency)) {
    if (!/^[A-Z]{3}$/.test(currency))
      throw new ConfigError(
        `invalid ${source}: discounts must be a list of ranges or an object of them by currency (ISO 4217, e.g. "CNY"), got ${currency ? `"${currency}"` : typeof raw}`,
      );
    const checked = validate<DiscountRange[]>(rangesSchema, ranges);
    if (!checked.ok)
      throw new ConfigError(
        `invalid ${source}: discounts.${currency}${checked.message.replace(/^body/, '')}`,
      );
    const sorted = [...checked.value].sort((a, b) => a.from - b.from);
    if (sorted[0].from !== 0)
      throw new ConfigError(
        `invalid ${source}: discounts.${currency} must start with a range from 0`,
      );
    out[currency] = sorted;
  }
  return out;
}

/**
 * How long a request may act on an idempotency key before the key is thought abandoned (its
 * process died): longer than any handler runs, which is at most a payment platform's wait or two.
 */
/**
 * How long after an action was sent a "not found" from the payment platform means it never
 * arrived (so no money moved): longer than any request can be in flight.
 */
export function neverReceivedAfterMs(config: PlatformConfig): number {
  return config.neverReceivedAfterMs ?? config.paymentTimeoutMs * 3 + 30000;
}

export function idempotencyLeaseMs(config: PlatformConfig): number {
  return config.paymentTimeoutMs * 2 + 10000;
}

/** The discount for a terminal's history: the rate of the highest range whose lower bound it reaches. */
export function discountFor(
  history: number,
  amount: number,
  ranges: DiscountRange[],
): { rateBps: number; amountOff: number } {
  let rateBps = 0;
  for (const r of ranges) if (history >= r.from) rateBps = r.rateBps;
  return { rateBps, amountOff: Math.floor((amount * rateBps) / 10000) };
}

export function newApiKey(): string {
  return `sk_sandbox_${randomHex(16)}`;
}

/**
 * A notification URL: `https://`, or plain `http://` to a loopback address (development and
 * tests). Anything else is refused: a merchant's events carry its orders. The host is read as an
 * address where it is one (never by its spelling: `127.attacker.example` is a name, not
 * loopback), and an `https://` URL to a private, link-local or metadata address is refused too
 * unless the operator allows it: the platform would otherwise post into its own network.
 */
export function webhookUrl(url: string, what = 'webhook url', allowPrivate = false): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`${what} is not a URL: ${url}`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const kind = addressKind(host);
  if (u.protocol === 'http:' && kind === 'loopback') return url;
  if (u.protocol !== 'https:')
    throw new ConfigError(
      `${what} must use https:// (plain http only to a loopback address), got ${url}`,
    );
  if (kind !== 'public' && kind !== 'name' && !allowPrivate)
    throw new ConfigError(
      `${what} points at a ${kind} address (${host}); set "allowPrivateWebhooks": true in the config if that receiver is yours, got ${url}`,
    );
  return url;
}

/** What an address in a URL's host is: a name, or an IP address and its range. */
export function addressKind(
  host: string,
): 'name' | 'loopback' | 'private' | 'link-local' | 'metadata' | 'unspecified' | 'public' {
  if (host.toLowerCase() === 'localhost') return 'loopback';
  const v = isIP(host);
  if (v === 0) return 'name';
  if (v === 4) {
    const [a, b] = host.split('.').map(Number);
    if (a === 127) return 'loopback';
    if (a === 0) return 'unspecified';
    if (host === '169.254.169.254' || host === '100.100.100.200') return 'metadata';
    if (a === 169 && b === 254) return 'link-local';
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private';
    if (a === 100 && b >= 64 && b <= 127) return 'private'; // carrier-grade NAT
    return 'public';
  }
  const h = host.toLowerCase();
  if (h === '::1') return 'loopback';
  if (h === '::') return 'unspecified';
  // An IPv4 address inside IPv6 (`::ffff:127.0.0.1`, which URLs spell `::ffff:7f00:1`).
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) return addressKind(mapped[1]);
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (hex) {
    const [hi, lo] = [parseInt(hex[1], 16), parseInt(hex[2], 16)];
    return addressKind(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  if (h === 'fd00:ec2::254') return 'metadata';
  if (/^fe[89ab]/.test(h)) return 'link-local';
  if (/^f[cd]/.test(h)) return 'private';
  return 'public';
}

export function newWebhookSecret(): string {
  return `whsec_${randomHex(24)}`;
}

/** The config's `wechat`: every secret read (from the environment where it is named), apps unique. */
function wechatConfig(
  raw: {
    apps: { appId: string; secret: string | { env: string } }[];
    pluginAppId?: string;
    pluginSecret?: string | { env: string };
  },
  source: string,
): WeChatConfig {
  const secret = (value: unknown, what: string): string => {
    if (typeof value === 'string' && value.length > 0 && value.length <= 256) return value;
    const env = (value as { env?: unknown } | null)?.env;
    if (
      !value ||
      typeof value !== 'object' ||
      Object.keys(value).length !== 1 ||
      typeof env !== 'string' ||
      !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(env)
    )
      throw new ConfigError(
        // Never the value itself: it may be a secret, a little mistyped.
        `invalid ${source}: ${what}.secret must be the secret (1 to 256 characters) or {"env": "NAME"}, got ${Array.isArray(value) ? 'a list' : typeof value}`,
      );
    const found = process.env[env];
    if (!found)
      throw new ConfigError(
        `invalid ${source}: ${what}.secret names the environment variable ${env}, which is not set`,
      );
    return found;
  };
  const seen = new Set<string>();
  const apps = raw.apps.map((a, i) => {
    if (seen.has(a.appId))
      throw new ConfigError(`invalid ${source}: wechat.apps: ${a.appId} appears twice`);
    seen.add(a.appId);
    return { appId: a.appId, secret: secret(a.secret, `wechat.apps[${i}]`) };
  });
  if ((raw.pluginAppId === undefined) !== (raw.pluginSecret === undefined))
    throw new ConfigError(
      `invalid ${source}: wechat.pluginAppId and wechat.pluginSecret go together (the plugin's own credentials, for openpids)`,
    );
  return {
    apps,
    ...(raw.pluginAppId
      ? {
          plugin: {
            appId: raw.pluginAppId,
            secret: secret(raw.pluginSecret, 'wechat.plugin'),
          },
        }
      : {}),
  };
}

/** A time zone the runtime knows, or the start stops naming it. */
export function statementTimeZone(zone: string, source: string): string {
  if (!isTimeZone(zone))
    throw new ConfigError(
      `invalid ${source}: statementTimeZone must be an IANA time zone such as "Asia/Shanghai", got "${zone}"`,
    );
  return zone;
}

/** Whether `zone` is an IANA time zone this runtime knows. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
