import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import { derivePinKey } from '../../packages/sdk/src/core/crypto';
import { toHex } from '../../packages/sdk/src/core/encoding';
import { createNodeHost } from '../../packages/sdk/src/hosts/node';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { describePg, freshDatabase } from '../support/postgres';
import { factorsFor, PASSWORD, SALT } from '../support/server-harness';

// PROTOCOL.md §4 and the operator guide's security section: a copy of everything the platform
// keeps (its database files with their WAL, or a dump) gives up no card number, CVV, password key
// or proof, and no unkeyed hash of them or of a request body that carried one.

const CARD = '6222021000000000009';
const CVV = '371';
const MASTER_KEY = '5a'.repeat(32);

interface Sent {
  path: string;
  body: string;
}

/** A terminal whose every request body is kept, as sent, for the search. */
async function recordingTerminal(platform: SandboxPlatform) {
  const sent: Sent[] = [];
  const host = createNodeHost();
  const request = host.request.bind(host);
  host.request = (req) => {
    if (req.body !== undefined) sent.push({ path: new URL(req.url).pathname, body: req.body });
    return request(req);
  };
  const client = new PlatformClient({ baseUrl: platform.url, host, backoffMs: 20 });
  const pinKey = derivePinKey(PASSWORD, Buffer.from(SALT, 'hex'), 10000);
  client.identity = await client.register({
    password: { salt: SALT, iterations: 10000, key: toHex(pinKey) },
  });
  return { client, sent, pinKey: Buffer.from(pinKey) };
}

/** Pays `CARD` once: the password, with the CVV while the card is not yet bound. */
async function payOnce(t: Awaited<ReturnType<typeof recordingTerminal>>) {
  const k = () => t.client.newIdempotencyKey();
  const { sessionId } = await t.client.createSession({ merchantId: 'mch_sandbox' }, await k());
  const order = await t.client.submitOrder(
    sessionId,
    { amount: 5680, currency: 'CNY', card: { source: 'scan', scanType: 'qrCode', payload: CARD } },
    await k(),
  );
  const { authPrompt } = await t.client.confirm(
    sessionId,
    { confirmToken: order.confirmation.confirmToken, accept: true },
    await k(),
  );
  const factors = factorsFor(sessionId, authPrompt!, order.confirmation, PASSWORD, CVV);
  const paid = await t.client.authenticate(
    sessionId,
    { challenge: authPrompt!.challenge, factors },
    await k(),
  );
  expect(paid.state).toBe('succeeded');
  return factors;
}

/** Every form a secret could take in a copy: as text, hex, base64 and raw bytes. */
function needles(t: Awaited<ReturnType<typeof recordingTerminal>>, proofs: string[]) {
  const list: { what: string; bytes: Buffer }[] = [];
  const digest = (what: string, data: string | Buffer) => {
    const raw = createHash('sha256').update(data).digest();
    list.push(
      { what: `${what}, SHA-256 raw`, bytes: raw },
      { what: `${what}, SHA-256 hex`, bytes: Buffer.from(raw.toString('hex')) },
      { what: `${what}, SHA-256 base64`, bytes: Buffer.from(raw.toString('base64')) },
    );
  };
  list.push({ what: 'the card number', bytes: Buffer.from(CARD) });
  digest('the card number', CARD);
  digest('the CVV', CVV);
  list.push(
    { what: 'the password key, hex', bytes: Buffer.from(t.pinKey.toString('hex')) },
    { what: 'the password key, raw', bytes: t.pinKey },
  );
  for (const p of proofs) {
    list.push(
      { what: 'a password proof, hex', bytes: Buffer.from(p) },
      { what: 'a password proof, raw', bytes: Buffer.from(p, 'hex') },
      {
        what: 'a password proof, base64',
        bytes: Buffer.from(Buffer.from(p, 'hex').toString('base64')),
      },
    );
  }
  const secretBodies = t.sent.filter((s) => /\/(order|authenticate)$/.test(s.path));
  expect(secretBodies).toHaveLength(4);
  for (const s of secretBodies) digest(`the body of ${s.path.split('/').pop()}`, s.body);
  return list;
}

function found(haystack: Buffer, list: { what: string; bytes: Buffer }[]): string[] {
  return list.filter((n) => haystack.includes(n.bytes)).map((n) => n.what);
}

/** Two payments of one card on one terminal: its first use (password and CVV), then the password alone. */
async function twoPayments(platform: SandboxPlatform) {
  const t = await recordingTerminal(platform);
  const first = await payOnce(t);
  expect(first.map((f) => f.method)).toEqual(['password', 'cvv']);
  const second = await payOnce(t);
  expect(second.map((f) => f.method)).toEqual(['password']);
  const proofs = [...first, ...second].flatMap((f) => (f.method === 'password' ? [f.proof] : []));
  return { t, proofs };
}

describe('what a copy of the SQLite files gives up', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cardpay-at-rest-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const everyByte = () => Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))));

  it('holds no card number, CVV, password key, proof or unkeyed hash of them, running or stopped', async () => {
    const platform = await startSandboxPlatform({
      db: join(dir, 'cardpay.db'),
      masterKey: MASTER_KEY,
    });
    const { t, proofs } = await twoPayments(platform);
    const list = needles(t, proofs);
    // While it runs (the WAL holds the recent writes) and once it has stopped.
    expect(found(everyByte(), list)).toEqual([]);
    await platform.close();
    expect(found(everyByte(), list)).toEqual([]);
    // The search is real: the same bytes do hold what is meant to be kept (the masked card).
    expect(everyByte().includes(Buffer.from('622202*********0009'))).toBe(true);
  });

  it('rewrites the records an older version kept, and scrubs them from the files, when it upgrades', async () => {
    const db = join(dir, 'old.db');
    let platform = await startSandboxPlatform({ db, masterKey: MASTER_KEY });
    const { t, proofs } = await twoPayments(platform);
    await platform.close();

    // As an older version kept them: `METHOD path hex(SHA-256(body))` and the answer in clear.
    const old = new Database(db);
    const records = old.prepare('SELECT terminal_id, key, body FROM idempotency').all() as {
      terminal_id: string;
      key: string;
      body: string;
    }[];
    const posts = t.sent.filter((s) => s.path !== '/v1/terminals');
    expect(records).toHaveLength(posts.length);
    const clear = (r: (typeof records)[number]) =>
      platform.ctx.sealer.open(r.body, `idempotent-reply:${r.terminal_id}:${r.key}`).toString();
    const answers = records.map(clear);
    old.transaction(() => {
      // Records are listed in the order they were made, as the requests were sent.
      records.forEach((r, i) => {
        const legacy = `POST ${posts[i].path} ${createHash('sha256').update(posts[i].body).digest('hex')}`;
        old
          .prepare(
            'UPDATE idempotency SET fingerprint = ?, body = ? WHERE terminal_id = ? AND key = ?',
          )
          .run(legacy, answers[i], r.terminal_id, r.key);
      });
      // One more, deleted, as pruning leaves them: its bytes stay in a free page.
      old
        .prepare("INSERT INTO idempotency VALUES ('trm_gone', 'gone-0001', ?, 200, '{}', 0)")
        .run(`POST /v1/sessions/ses_gone/order ${createHash('sha256').update(CARD).digest('hex')}`);
      old.prepare("DELETE FROM idempotency WHERE key = 'gone-0001'").run();
      old.prepare("DELETE FROM meta WHERE key = 'idempotency-keyed'").run();
    })();
    old.pragma('wal_checkpoint(TRUNCATE)');
    old.close();
    const list = needles(t, proofs);
    expect(found(readFileSync(db), list).length).toBeGreaterThan(0);

    const warnings: string[] = [];
    platform = await startSandboxPlatform({
      db,
      masterKey: MASTER_KEY,
      warn: (l) => warnings.push(l),
    });
    expect(warnings.join('\n')).toMatch(
      new RegExp(`upgrade: ${posts.length} idempotency records keyed and sealed`),
    );
    expect(found(everyByte(), list)).toEqual([]);

    // An upgraded record still answers a retry of its request: the same body, the same key.
    const last = records[records.length - 1];
    const again = await sendAgain(platform, t, posts[posts.length - 1], last.key);
    expect(again).toEqual(JSON.parse(answers[answers.length - 1]));
    await platform.close();
  });
});

describe('secrets sealed with SM4 (--seal sm4)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cardpay-at-rest-sm4-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives up nothing secret from a copy of the files, and seals every secret with SM4', async () => {
    const db = join(dir, 'sm4.db');
    const platform = await startSandboxPlatform({ db, masterKey: MASTER_KEY, seal: 'sm4' });
    const { t, proofs } = await twoPayments(platform);
    const files = () =>
      Buffer.concat(
        readdirSync(dir)
          .filter((f) => f.startsWith('sm4'))
          .map((f) => readFileSync(join(dir, f))),
      );
    const list = needles(t, proofs);
    expect(found(files(), list)).toEqual([]);
    await platform.close();
    expect(found(files(), list)).toEqual([]);
    expect(files().includes(Buffer.from('622202*********0009'))).toBe(true);

    const copy = new Database(db, { readonly: true });
    const sealed = [
      ...(
        copy
          .prepare('SELECT secret_sealed, pin_key_sealed FROM terminals')
          .raw()
          .all() as string[][]
      ).flat(),
      ...(
        copy
          .prepare('SELECT body FROM idempotency WHERE body IS NOT NULL')
          .raw()
          .all() as string[][]
      ).flat(),
    ];
    copy.close();
    expect(sealed.length).toBeGreaterThan(4);
    for (const value of sealed)
      expect(value).toMatch(/^sm4\.[0-9a-f]{32}\.[0-9a-f]{64}\.[0-9a-f]*$/);
  });

  it('opens its secrets again after a restart the same way, and refuses a start the other way', async () => {
    const db = join(dir, 'either.db');
    let platform = await startSandboxPlatform({ db, masterKey: MASTER_KEY, seal: 'sm4' });
    const t = await recordingTerminal(platform);
    await platform.close();
    await expect(startSandboxPlatform({ db, masterKey: MASTER_KEY })).rejects.toThrow(
      'this database is sealed with sm4, not aes-256-gcm: start it with --seal sm4',
    );
    platform = await startSandboxPlatform({ db, masterKey: MASTER_KEY, seal: 'sm4' });
    // The terminal registered before the restart still signs and pays: its secrets open.
    const client = new PlatformClient({ baseUrl: platform.url, host: createNodeHost() });
    client.identity = t.client.identity;
    await payOnce({ ...t, client });
    await platform.close();

    const aes = join(dir, 'aes.db');
    await (await startSandboxPlatform({ db: aes, masterKey: MASTER_KEY })).close();
    await expect(
      startSandboxPlatform({ db: aes, masterKey: MASTER_KEY, seal: 'sm4' }),
    ).rejects.toThrow(
      'this database is sealed with aes-256-gcm, not sm4: start it with --seal aes-256-gcm',
    );
    // On the command line: exit 2 and that one line.
    const bin = join(__dirname, '../../packages/platform/bin/cardpay-platform.js');
    const cli = spawnSync(
      process.execPath,
      [bin, '--db', aes, '--seal', 'sm4', '--port', '0', '--sandbox-payments-port', '0'],
      { encoding: 'utf8', timeout: 20000, env: { ...process.env, CARDPAY_MASTER_KEY: MASTER_KEY } },
    );
    expect(cli.status).toBe(2);
    expect(cli.stderr.trim().split('\n')).toEqual([
      'cardpay-platform: this database is sealed with aes-256-gcm, not sm4: start it with --seal aes-256-gcm',
    ]);
  });
});

/** Sends a recorded authentication again under its key, signed anew: a retry, to `platform`. */
function sendAgain(
  platform: SandboxPlatform,
  t: Awaited<ReturnType<typeof recordingTerminal>>,
  sent: Sent,
  key: string,
) {
  const client = new PlatformClient({ baseUrl: platform.url, host: createNodeHost() });
  client.identity = t.client.identity;
  return client.authenticate(sent.path.split('/')[3], JSON.parse(sent.body), key);
}

describePg('what a dump of the PostgreSQL database gives up', () => {
  it.each(['aes-256-gcm', 'sm4'] as const)(
    'holds no card number, CVV, password key, proof or unkeyed hash of them, sealed with %s',
    async (seal) => {
      const db = await freshDatabase();
      const dir = mkdtempSync(join(tmpdir(), 'cardpay-at-rest-pg-'));
      try {
        const platform = await startSandboxPlatform({
          db: db.url,
          sandboxDb: join(dir, 'payments.db'),
          masterKey: MASTER_KEY,
          seal,
        });
        const { t, proofs } = await twoPayments(platform);
        await platform.close();
        const dump = execFileSync('pg_dump', ['--no-owner', db.url], { maxBuffer: 64 << 20 });
        const sandbox = Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))));
        const list = needles(t, proofs);
        expect(found(Buffer.concat([dump, sandbox]), list)).toEqual([]);
        expect(dump.includes(Buffer.from('622202*********0009'))).toBe(true);
        // Every sealed value is in the chosen form.
        const prefix = seal === 'sm4' ? 'sm4.' : 'v1.';
        const other = seal === 'sm4' ? /\tv1\.[0-9a-f]{24}\./ : /\tsm4\.[0-9a-f]{32}\./;
        expect(dump.toString().match(/\t(v1|sm4)\.[0-9a-f]{24}/g)?.length).toBeGreaterThan(4);
        expect(dump.toString()).toContain(`\t${prefix}`);
        expect(dump.toString()).not.toMatch(other);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await db.drop();
      }
    },
  );
});
