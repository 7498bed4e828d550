// The fuzz run: every endpoint of the platform with random and mutated requests (unsigned, and
// correctly signed so that they reach the handlers), then the card reader with random and mutated
// payloads. `npm run fuzz` and test/fuzz/fuzz.test.ts both call these.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { LOAD_TOOL_LIMITS } from '../load-limits';
import { Agent, request } from 'node:http';
import { readCard } from '../../packages/sdk/src/core/card/brand';
import { parseCard } from '../../packages/sdk/src/core/card/reader';
import { seededRandom } from '../../packages/testing/src/fault-proxy';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';

type Rand = () => number;

export interface HttpFuzzReport {
  requests: number;
  byClass: Record<string, number>;
  byStatus: Record<string, number>;
  serverErrors: { request: string; status: number; body: string }[];
  badShapes: { request: string; status: number; body: string }[];
  unhandled: string[];
  /** Correctly signed requests answered other than 401: they reached validation and the handlers. */
  signedPastAuthentication: number;
  /** Sent again on a new connection: the server had closed the kept-alive one (not an error). */
  resent: number;
  heapMb: { afterWarmUp: number; atEnd: number };
  checkoutsAfter: { tried: number; succeeded: number };
  seconds: number;
}

export interface ReaderFuzzReport {
  inputs: number;
  byResult: Record<string, number>;
  throws: { input: string; error: string }[];
  seconds: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

/** Requests sent again because the server had closed the kept-alive connection they went out on. */
export let resentOnClosedConnection = 0;

function send(
  url: string,
  r: Sent,
  fresh = false,
): Promise<{ status: number; body: string; headers: any }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const req = request(
      {
        agent: fresh ? false : agent,
        hostname: u.hostname,
        port: u.port,
        method: r.method,
        path: r.path,
        headers: r.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
        res.on('error', () => resolve({ status: -1, body: 'response aborted', headers: {} }));
      },
    );
    req.on('error', (e) => {
      // A server closes a connection after some refusals (an oversized body, say); a request that
      // went out on it at that moment is resent on a new one, as Node's documentation advises.
      if (req.reusedSocket && !fresh) {
        resentOnClosedConnection++;
        void send(url, r, true).then(resolve);
      } else resolve({ status: -1, body: `connection: ${e.message}`, headers: {} });
    });
    if (r.body !== undefined) req.write(r.body);
    req.end();
  });
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Terminal {
  id: string;
  secret: Buffer;
  pinKey: Buffer;
}

function sign(t: Terminal, r: Sent, nonce = randomBytes(16).toString('hex')): Sent {
  const ts = String(Math.floor(Date.now() / 1000));
  const body = r.body ?? '';
  const sig = createHmac('sha256', t.secret)
    .update([r.method.toUpperCase(), r.path, ts, nonce, sha(body)].join('\n'))
    .digest('hex');
  return {
    ...r,
    headers: {
      ...r.headers,
      'x-cardpay-terminal': t.id,
      'x-cardpay-timestamp': ts,
      'x-cardpay-nonce': nonce,
      'x-cardpay-signature': sig,
    },
  };
}

// ---- value generators -------------------------------------------------------------------------

const STRINGS = [
  '',
  ' ',
  '0',
  '-1',
  'null',
  'true',
  '__proto__',
  'constructor',
  "' OR 1=1 --",
  '../../etc/passwd',
  '%00',
  '\u0000',
  '\ud800',
  '支付',
  '😀'.repeat(50),
  'a'.repeat(5000),
  '6222021000000000009',
  '4000000000000002',
  '1e309',
  'NaN',
];

function randomValue(rand: Rand, depth = 0): unknown {
  const k = Math.floor(rand() * (depth > 3 ? 6 : 9));
  switch (k) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5;
    case 2:
      return [0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1.5, 1e308, 100000000, 100000001][
        Math.floor(rand() * 10)
      ];
    case 3:
    case 4:
      return STRINGS[Math.floor(rand() * STRINGS.length)];
    case 5:
      return randomBytes(Math.floor(rand() * 40)).toString('hex');
    case 6:
      return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = [
        'amount',
        'currency',
        'card',
        'factors',
        'challenge',
        'merchantId',
        'x',
        '__proto__',
      ];
      for (let i = Math.floor(rand() * 4); i > 0; i--)
        o[keys[Math.floor(rand() * keys.length)]] = randomValue(rand, depth + 1);
      return o;
    }
  }
}

/** A valid body with one thing changed: a field dropped, retyped, set to an edge, or added. */
function mutate(rand: Rand, valid: unknown): unknown {
  if (valid === null || typeof valid !== 'object') return rand() < 0.5 ? randomValue(rand) : valid;
  const copy: any = Array.isArray(valid) ? [...valid] : { ...(valid as object) };
  const keys = Object.keys(copy);
  const key = keys[Math.floor(rand() * keys.length)];
  const r = rand();
  if (r < 0.2 && key !== undefined) delete copy[key];
  else if (r < 0.6 && key !== undefined) copy[key] = randomValue(rand);
  else if (r < 0.85 && key !== undefined) copy[key] = mutate(rand, copy[key]);
  else copy[`extra${Math.floor(rand() * 3)}`] = randomValue(rand);
  return copy;
}

function encodeBody(rand: Rand, value: unknown): { body: Buffer | string; type: string } {
  const r = rand();
  const json = JSON.stringify(value) ?? 'null';
  if (r < 0.75) return { body: json, type: 'application/json' };
  if (r < 0.82)
    return { body: json.slice(0, Math.floor(json.length * rand())), type: 'application/json' };
  if (r < 0.87) return { body: randomBytes(Math.floor(rand() * 300)), type: 'application/json' };
  if (r < 0.9) return { body: '['.repeat(5000), type: 'application/json' };
  if (r < 0.93) return { body: json, type: 'text/plain' };
  if (r < 0.96) return { body: 'x'.repeat(70 * 1024), type: 'application/json' };
  return { body: json, type: 'application/x-www-form-urlencoded' };
}

// ---- the HTTP fuzz -------------------------------------------------------------------------

const PASSWORD_SALT = Buffer.alloc(16, 7);

async function register(url: string): Promise<Terminal> {
  const pinKey = pbkdf2Sync('204816', PASSWORD_SALT, 10000, 32, 'sha256');
  const r = await send(url, {
    method: 'POST',
    path: '/v1/terminals',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      password: {
        salt: PASSWORD_SALT.toString('hex'),
        iterations: 10000,
        key: pinKey.toString('hex'),
      },
    }),
  });
  const b = JSON.parse(r.body);
  return { id: b.terminalId, secret: Buffer.from(b.terminalSecret, 'hex'), pinKey };
}

async function signedJson(url: string, t: Terminal, method: string, path: string, body?: unknown) {
  const raw = body === undefined ? undefined : JSON.stringify(body);
  const r = await send(
    url,
    sign(t, {
      method,
      path,
      headers: {
        ...(raw ? { 'content-type': 'application/json' } : {}),
        ...(method === 'POST' ? { 'idempotency-key': randomBytes(12).toString('hex') } : {}),
      },
      body: raw,
    }),
  );
  return { status: r.status, body: r.body ? JSON.parse(r.body) : undefined };
}

/** One full, correct checkout: the platform still serves after the fuzz. */
async function checkout(url: string, t: Terminal, amount: number): Promise<boolean> {
  const s = await signedJson(url, t, 'POST', '/v1/sessions', { merchantId: 'mch_sandbox' });
  if (s.status !== 201) return false;
  const id = s.body.sessionId;
  const o = await signedJson(url, t, 'POST', `/v1/sessions/${id}/order`, {
    amount,
    currency: 'CNY',
    card: { source: 'scan', scanType: 'qrCode', payload: '6222021000000000009' },
  });
  if (o.status !== 200) return false;
  const c = await signedJson(url, t, 'POST', `/v1/sessions/${id}/confirm`, {
    confirmToken: o.body.confirmation.confirmToken,
    accept: true,
  });
  if (c.status !== 200) return false;
  const { challenge, mandatory } = c.body.authPrompt;
  const message = [
    'cardpay-auth-v1',
    id,
    challenge,
    o.body.confirmation.orderId,
    o.body.confirmation.amount,
    'CNY',
  ].join('\n');
  const proof = createHmac('sha256', t.pinKey).update(message).digest('hex');
  const a = await signedJson(url, t, 'POST', `/v1/sessions/${id}/authenticate`, {
    challenge,
    factors: [
      { method: 'password', proof },
      ...(mandatory?.includes('cvv') ? [{ method: 'cvv', value: '123' }] : []),
    ],
  });
  return a.status === 200 && a.body.state === 'succeeded';
}

const ROUTES: {
  method: string;
  path: (id: string) => string;
  signed: boolean;
  merchant?: boolean;
}[] = [
  { method: 'POST', path: () => '/v1/terminals', signed: false },
  { method: 'POST', path: () => '/v1/sessions', signed: true },
  { method: 'GET', path: (id) => `/v1/sessions/${id}`, signed: true },
  { method: 'POST', path: (id) => `/v1/sessions/${id}/order`, signed: true },
  { method: 'POST', path: (id) => `/v1/sessions/${id}/confirm`, signed: true },
  { method: 'POST', path: (id) => `/v1/sessions/${id}/authenticate`, signed: true },
  { method: 'POST', path: (id) => `/v1/sessions/${id}/cancel`, signed: true },
  { method: 'GET', path: () => '/v1/health', signed: false },
  { method: 'GET', path: () => '/v1/health/ready', signed: false },
  { method: 'POST', path: () => '/v1/merchant/orders', signed: false, merchant: true },
  {
    method: 'GET',
    path: (id) => `/v1/merchant/orders${id.startsWith('?') ? id : `/${id}`}`,
    signed: false,
    merchant: true,
  },
  {
    method: 'POST',
    path: (id) => `/v1/merchant/orders/${id}/refunds`,
    signed: false,
    merchant: true,
  },
  { method: 'GET', path: (id) => `/v1/merchant/refunds/${id}`, signed: false, merchant: true },
  {
    method: 'GET',
    path: (id) => `/v1/merchant/events${id.startsWith('?') ? id : ''}`,
    signed: false,
    merchant: true,
  },
];

/** The path as bytes on the wire: printable ASCII kept (stray `%` included), the rest escaped. */
function rawPath(path: string): string {
  return [...Buffer.from(path, 'utf8')]
    .map((b) =>
      b > 0x20 && b < 0x7f ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`,
    )
    .join('');
}

function isErrorShape(body: string): boolean {
  try {
    const b = JSON.parse(body);
    return (
      typeof b?.error?.code === 'string' &&
      /^[a-z_]+$/.test(b.error.code) &&
      typeof b.error.message === 'string' &&
      typeof b.error.retryable === 'boolean'
    );
  } catch {
    return false;
  }
}

export async function fuzzHttp(options: {
  requests: number;
  seed?: number;
  platform?: SandboxPlatform;
}): Promise<HttpFuzzReport> {
  const t0 = Date.now();
  const rand = seededRandom(options.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => pickWith(rand, xs);
  const unhandled: string[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(String((e as Error)?.stack ?? e));
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  const platform =
    options.platform ??
    (await startSandboxPlatform({
      configObject: LOAD_TOOL_LIMITS,
    }));
  const url = platform.url;
  try {
    const terminals = [await register(url), await register(url), await register(url)];
    // Real ids to aim at: sessions in each state, a merchant order, a paid one.
    const ids: string[] = ['ses_' + 'a'.repeat(24), 'mor_x', '..', '%2e%2e', 'a'.repeat(3000)];
    for (const t of terminals) {
      const s = await signedJson(url, t, 'POST', '/v1/sessions', { merchantId: 'mch_sandbox' });
      ids.push(s.body.sessionId);
    }
    const merchantHeaders = { authorization: `Bearer ${platform.merchantKey}` };
    const order = await send(url, {
      method: 'POST',
      path: '/v1/merchant/orders',
      headers: { ...merchantHeaders, 'content-type': 'application/json' },
      body: JSON.stringify({ merchantOrderId: 'fuzz-1', amount: 1999, currency: 'CNY' }),
    });
    ids.push(JSON.parse(order.body).orderRef);
    await checkout(url, terminals[0], 2500);
    ids.push(
      '?limit=0',
      '?limit=abc&status=paid',
      '?cursor=%ff',
      '?after=evt_1&limit=500',
      '?status[]=x',
    );

    const validBodies: Record<string, unknown> = {
      '/v1/terminals': {
        password: { salt: '00'.repeat(16), iterations: 10000, key: '11'.repeat(32) },
      },
      '/v1/sessions': { merchantId: 'mch_sandbox' },
      order: {
        amount: 1999,
        currency: 'CNY',
        card: { source: 'scan', scanType: 'qrCode', payload: '6222021000000000009' },
      },
      confirm: { confirmToken: 'ct_' + 'a'.repeat(32), accept: true },
      authenticate: {
        challenge: 'ab'.repeat(16),
        factors: [
          { method: 'password', proof: 'cd'.repeat(32) },
          { method: 'cvv', value: '123' },
        ],
      },
      cancel: {},
      '/v1/merchant/orders': { merchantOrderId: 'fuzz-2', amount: 1999, currency: 'CNY' },
      refunds: { amount: 100, reason: 'fuzz' },
    };
    const bodyFor = (path: string) => {
      const tail = path.split('/').pop()!;
      return validBodies[path] ?? validBodies[tail] ?? {};
    };

    resentOnClosedConnection = 0;
    let pastAuth = 0;
    const byClass: Record<string, number> = {};
    const byStatus: Record<string, number> = {};
    const serverErrors: HttpFuzzReport['serverErrors'] = [];
    const badShapes: HttpFuzzReport['badShapes'] = [];
    let heapAfterWarmUp = 0;

    const one = async (n: number) => {
      const route = pick(ROUTES);
      const id = pick(ids);
      let path = route.path(id);
      const klass = route.signed
        ? rand() < 0.6
          ? 'signed'
          : 'unsigned'
        : route.merchant
          ? rand() < 0.7
            ? 'merchant'
            : 'merchant-unauthenticated'
          : 'open';
      let method = route.method;
      const r = rand();
      let kind = 'mutated-body';
      if (r < 0.08) {
        method = pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'GET', 'POST']);
        kind = 'method';
      } else if (r < 0.16) {
        path = pick([
          path + '/',
          path + '//x',
          path.toUpperCase(),
          path + '?a=%',
          '/v1/' + pick(STRINGS),
          '/' + 'v'.repeat(2000),
          path + '#frag',
        ]);
        kind = 'path';
      } else if (r < 0.3) kind = 'random-body';
      const value =
        kind === 'random-body'
          ? randomValue(rand)
          : mutate(rand, bodyFor(route.path('x').replace(/\?.*/, '')));
      const hasBody = method !== 'GET' && method !== 'HEAD' && rand() < 0.95;
      const encoded = hasBody ? encodeBody(rand, value) : undefined;
      let sent: Sent = {
        method,
        path: rawPath(path),
        headers: {
          ...(encoded ? { 'content-type': encoded.type } : {}),
          ...(method === 'POST' && rand() < 0.9
            ? {
                'idempotency-key': pick([
                  randomBytes(12).toString('hex'),
                  '',
                  'x'.repeat(300),
                  'ключ',
                ]),
              }
            : {}),
          ...(klass === 'merchant' ? merchantHeaders : {}),
          ...(klass === 'merchant-unauthenticated'
            ? {
                authorization: pick([
                  'Bearer sk_sandbox_' + '0'.repeat(32),
                  'Basic x',
                  'Bearer',
                  '',
                ]),
              }
            : {}),
        },
        body: encoded?.body,
      };
      for (const [k, v] of Object.entries(sent.headers))
        if (!/^[\t\x20-\x7e]*$/.test(v)) delete sent.headers[k];
      if (klass === 'signed') {
        sent = sign(pick(terminals), sent);
        if (rand() < 0.15) {
          const h = pick([
            'x-cardpay-timestamp',
            'x-cardpay-nonce',
            'x-cardpay-signature',
            'x-cardpay-terminal',
          ]);
          sent.headers[h] = pick([
            '',
            '0',
            '-1',
            'Z'.repeat(64),
            '99999999999999999999',
            sent.headers[h].toUpperCase(),
          ]);
          kind = 'signed-header';
        }
      } else if (klass === 'unsigned' && rand() < 0.5) {
        sent.headers['x-cardpay-terminal'] = pick([...terminals.map((t) => t.id), 'trm_x', '']);
        sent.headers['x-cardpay-signature'] = randomBytes(32).toString('hex');
      }
      byClass[`${klass}/${kind}`] = (byClass[`${klass}/${kind}`] ?? 0) + 1;
      const res = await send(url, sent);
      byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
      if (klass === 'signed' && kind !== 'signed-header' && res.status !== 401) pastAuth++;
      const label = `${sent.method} ${sent.path.slice(0, 120)} (${sent.body?.length ?? 0} bytes, ${sent.headers['content-type'] ?? 'no type'})`;
      if (res.status >= 500 || res.status < 0)
        serverErrors.push({ request: label, status: res.status, body: res.body.slice(0, 300) });
      else if (res.status >= 400 && method !== 'HEAD' && !isErrorShape(res.body))
        badShapes.push({ request: label, status: res.status, body: res.body.slice(0, 300) });
      if (n === Math.floor(options.requests / 5)) {
        global.gc?.();
        heapAfterWarmUp = process.memoryUsage().heapUsed;
      }
    };

    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < options.requests) await one(next++);
      }),
    );
    global.gc?.();
    const heapAtEnd = process.memoryUsage().heapUsed;

    const tried = 20;
    let succeeded = 0;
    for (let i = 0; i < tried; i++)
      if (await checkout(url, terminals[i % 3], 1000 + i)) succeeded++;

    return {
      requests: options.requests,
      byClass,
      byStatus,
      serverErrors,
      badShapes,
      unhandled,
      resent: resentOnClosedConnection,
      signedPastAuthentication: pastAuth,
      heapMb: { afterWarmUp: heapAfterWarmUp / 2 ** 20, atEnd: heapAtEnd / 2 ** 20 },
      checkoutsAfter: { tried, succeeded },
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    if (!options.platform) await platform.close();
  }
}

// ---- the card reader fuzz ------------------------------------------------------------------

const SEEDS = [
  '6222021000000000009',
  '4242424242424242',
  // An EMV CPM payload (base64) with a PAN in tag 5A inside the 61 application template.
  Buffer.from(
    '85054350563031614f4f07a0000003330101500a556e696f6e5061792020205a0a6222021000000000009f5f24032812315f3401009f2608',
    'hex',
  ).toString('base64'),
  'hQVDUFYwMWE', // truncated
  'https://qr.alipay.com/abc',
  'wxp://f2f0abc',
  '280012345678901234',
];

function mutatePayload(rand: Rand, seed: string): string {
  const r = rand();
  if (r < 0.15)
    return randomBytes(Math.floor(rand() * 200)).toString(rand() < 0.5 ? 'base64' : 'latin1');
  if (r < 0.25) return seed.slice(0, Math.floor(rand() * seed.length));
  if (r < 0.35) return seed + pickWith(rand, ['\u0000', '支付', '😀', ' ', '\n', '=', '%']);
  if (r < 0.37) return 'A'.repeat(Math.floor(rand() * 100000));
  if (r < 0.6) {
    // Flip bytes of the decoded EMV payload, favouring length bytes (long forms 0x81..0x84, 0xFF).
    const bytes = Buffer.from(seed, 'base64');
    for (let i = 0, n = 1 + Math.floor(rand() * 4); i < n && bytes.length; i++)
      bytes[Math.floor(rand() * bytes.length)] = pickWith(rand, [
        0x81,
        0x82,
        0x84,
        0xff,
        0x00,
        0x5a,
        0x61,
        Math.floor(rand() * 256),
      ]);
    return bytes.toString('base64');
  }
  if (r < 0.7) {
    // A TLV built by hand: tag 5A with an absurd long-form length.
    const len = pickWith(rand, ['81ff', '82ffff', '84ffffffff', '8000', '85']);
    return Buffer.from(`85054350563031615a${len}6222`, 'hex').toString('base64');
  }
  if (r < 0.8)
    return seed
      .split('')
      .map((c) => (rand() < 0.1 ? String.fromCharCode(Math.floor(rand() * 0xffff)) : c))
      .join('');
  return String(Math.floor(rand() * 1e19)).padStart(Math.floor(12 + rand() * 10), '0');
}

function pickWith<T>(rand: Rand, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)];
}

export function fuzzReader(options: { inputs: number; seed?: number }): ReaderFuzzReport {
  const t0 = Date.now();
  const rand = seededRandom(options.seed ?? 1);
  const byResult: Record<string, number> = {};
  const throws: ReaderFuzzReport['throws'] = [];
  for (let i = 0; i < options.inputs; i++) {
    const input = mutatePayload(rand, pickWith(rand, SEEDS));
    try {
      for (const result of [readCard(input), parseCard(input)]) {
        if (typeof result?.ok !== 'boolean')
          throw new Error(`not a typed result: ${JSON.stringify(result)}`);
        const key = result.ok ? 'card' : `refused:${(result as { reason: string }).reason}`;
        byResult[key] = (byResult[key] ?? 0) + 1;
      }
    } catch (error) {
      throws.push({ input: input.slice(0, 80), error: String(error) });
    }
  }
  return { inputs: options.inputs, byResult, throws, seconds: (Date.now() - t0) / 1000 };
}
