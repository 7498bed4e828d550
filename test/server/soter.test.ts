import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { BiometricProvider } from '../../packages/sdk/src/core/host';
import type { TerminalIdentityRequest } from '../../packages/sdk/src/core/protocol';
import { createNodeHost } from '../../packages/sdk/src/hosts/node';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import { derivePinKey } from '../../packages/sdk/src/core/crypto';
import { toHex } from '../../packages/sdk/src/core/encoding';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { startWeChatStandIn, type WeChatStandIn } from '../../packages/testing/src/wechat';
import { describePg, freshDatabase } from '../support/postgres';
import { PASSWORD, SALT, factorsFor, toPrompt } from '../support/server-harness';

// PROTOCOL.md §2.1 and §5.4: SOTER that WeChat verifies for every merchant. Two host apps, each
// with its own credentials; the platform asks WeChat (the kit's stand-in, behaving as WeChat
// documents) for each shopper's openid and checks each signature under that app's token.

const SHOP_A = { appId: 'wx00000000000000a1', secret: 'secret-of-shop-a' };
const SHOP_B = { appId: 'wx00000000000000b2', secret: 'secret-of-shop-b' };
const PLUGIN = { appId: 'wx000000000000c0de', secret: 'secret-of-the-plugin' };

/** SOTER on a shopper's phone in one host app: signed with that shopper's key there. */
function soterOf(
  wechat: WeChatStandIn,
  appId: string,
  shopper: string,
  forge = false,
): BiometricProvider {
  return {
    scheme: 'soter',
    available: async () => ['fingerPrint'],
    authenticate: async (challenge, mode) => {
      const resultJSON = JSON.stringify({
        raw: challenge,
        fid: '1',
        counter: 1,
        tee_n: 'TEE',
        tee_v: '1',
        uid: '0',
      });
      const signed = wechat.soterSign(appId, forge ? `${shopper}-thief` : shopper, resultJSON);
      return {
        mode,
        resultJSON,
        signature: Buffer.from(signed, 'base64').toString('hex'),
        resultJSONSignature: signed,
      };
    },
  };
}

/** A terminal of `shopper` in `appId`, registered with its identity (or without, `identity: false`). */
async function shopperTerminal(
  platform: SandboxPlatform,
  wechat: WeChatStandIn,
  appId: string,
  shopper: string,
  options: { identity?: boolean; plugin?: boolean; forge?: boolean } = {},
) {
  const bio = soterOf(wechat, appId, shopper, options.forge);
  const client = new PlatformClient({
    baseUrl: platform.url,
    host: createNodeHost(),
    backoffMs: 20,
    maxRetryAfterMs: 50,
  });
  const identity: TerminalIdentityRequest | undefined =
    options.identity === false
      ? undefined
      : {
          hostAppId: appId,
          hostLoginCode: wechat.loginCode(appId, shopper),
          ...(options.plugin ? { pluginLoginCode: wechat.pluginCode(appId, shopper) } : {}),
        };
  const r = await client.register({
    password: {
      salt: SALT,
      iterations: 10000,
      key: toHex(derivePinKey(PASSWORD, Buffer.from(SALT, 'hex'), 10000)),
    },
    biometric: { scheme: 'soter' },
    ...(identity ? { identity } : {}),
  });
  client.identity = r;
  return {
    client,
    bio,
    id: r.terminalId,
    secret: r.terminalSecret,
    key: '',
    host: createNodeHost(),
  };
}

type ShopperTerminal = Awaited<ReturnType<typeof shopperTerminal>>;

/** Pays by fingerprint (and the CVV on the card's first payment here); the state or the error code. */
async function payByFingerprint(t: ShopperTerminal, card = '4242424242424242', amount = 1999) {
  const p = await toPrompt(t as never, card, amount);
  expect(p.prompt.methods).toContain('biometric');
  const assertion = await t.bio.authenticate(p.prompt.challenge, 'fingerPrint');
  return t.client
    .authenticate(
      p.sessionId,
      {
        challenge: p.prompt.challenge,
        factors: [
          { method: 'biometric', ...assertion },
          ...(p.prompt.mandatory?.includes('cvv')
            ? [{ method: 'cvv' as const, value: '123' }]
            : []),
        ],
      },
      await t.client.newIdempotencyKey(),
    )
    .then(
      (r) => ({ outcome: r.state as string, attemptsLeft: p.prompt.attemptsLeft }),
      (e: { code: string; details: { authPrompt?: { attemptsLeft: number } } }) => ({
        outcome: e.code,
        attemptsLeft: e.details.authPrompt?.attemptsLeft,
      }),
    );
}

function soterSuite(name: string, db: () => string | undefined) {
  describe(name, () => {
    let wechat: WeChatStandIn;
    let platform: SandboxPlatform;
    const logs = new PassThrough();
    let logText = '';
    logs.on('data', (c: Buffer) => (logText += c.toString('utf8')));
    let dir: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'cardpay-soter-'));
      wechat = await startWeChatStandIn({ apps: [SHOP_A, SHOP_B], plugin: PLUGIN });
      process.env.CARDPAY_TEST_SHOP_B_SECRET = SHOP_B.secret;
      platform = await startSandboxPlatform({
        ...(db() ? { db: db()!, sandboxDb: join(dir, 'payments.db') } : {}),
        wechatApiUrl: wechat.url,
        logLevel: 'info',
        logStream: logs,
        configObject: {
          registrationsPerMinute: 1000,
          throttle: { postsPerSecond: 1000, postsBurst: 1000 },
          // One secret in the file, one named in the environment, as the operator guide shows.
          wechat: {
            apps: [SHOP_A, { appId: SHOP_B.appId, secret: { env: 'CARDPAY_TEST_SHOP_B_SECRET' } }],
            pluginAppId: PLUGIN.appId,
            pluginSecret: PLUGIN.secret,
          },
        },
      });
    });
    afterAll(async () => {
      await platform?.close();
      await wechat?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('verifies each app’s shopper with that app’s token and openid', async () => {
      const alice = await shopperTerminal(platform, wechat, SHOP_A.appId, 'alice');
      const bob = await shopperTerminal(platform, wechat, SHOP_B.appId, 'bob');
      const before = wechat.calls.length;
      expect((await payByFingerprint(alice)).outcome).toBe('succeeded');
      expect((await payByFingerprint(bob)).outcome).toBe('succeeded');
      const verified = wechat.calls.slice(before).filter((c) => c.api === 'verify_signature');
      expect(verified.map((c) => c.appId)).toEqual([SHOP_A.appId, SHOP_B.appId]);
    });

    it('refuses a signature made with another key as a failed attempt', async () => {
      const mallory = await shopperTerminal(platform, wechat, SHOP_A.appId, 'mallory', {
        forge: true,
      });
      const r = await payByFingerprint(mallory);
      expect(r.outcome).toBe('auth_failed');
      expect(r.attemptsLeft).toBe(4);
    });

    it('takes a new token once when WeChat has invalidated the app’s, and the payment goes through', async () => {
      const carol = await shopperTerminal(platform, wechat, SHOP_A.appId, 'carol');
      expect((await payByFingerprint(carol)).outcome).toBe('succeeded');
      wechat.invalidateTokens(SHOP_A.appId);
      const before = wechat.calls.length;
      expect((await payByFingerprint(carol)).outcome).toBe('succeeded');
      const asked = wechat.calls.slice(before).map((c) => c.api);
      expect(asked).toEqual(['verify_signature', 'stable_token', 'verify_signature']);
    });

    it('refuses a used code, a code of another app and an app it has no credentials for, keeping no terminal', async () => {
      const code = wechat.loginCode(SHOP_A.appId, 'dave');
      const register = (identity: TerminalIdentityRequest) =>
        new PlatformClient({ baseUrl: platform.url, host: createNodeHost(), maxAttempts: 1 })
          .register({
            password: { salt: SALT, iterations: 10000, key: '11'.repeat(32) },
            biometric: { scheme: 'soter' },
            identity,
          })
          .then(
            () => 'registered',
            (e: { code: string; status: number }) => `${e.status} ${e.code}`,
          );
      expect(await register({ hostAppId: SHOP_A.appId, hostLoginCode: code })).toBe('registered');
      expect(await register({ hostAppId: SHOP_A.appId, hostLoginCode: code })).toBe(
        '422 identity_invalid',
      );
      expect(
        await register({
          hostAppId: SHOP_B.appId,
          hostLoginCode: wechat.loginCode(SHOP_A.appId, 'dave'),
        }),
      ).toBe('422 identity_invalid');
      expect(await register({ hostAppId: 'wx0000000000000fff', hostLoginCode: 'abc' })).toBe(
        '422 identity_invalid',
      );
    });

    it('lets a shopper’s second phone in the same app find the card bound and the history, through the openpid', async () => {
      const first = await shopperTerminal(platform, wechat, SHOP_A.appId, 'erin', { plugin: true });
      // ¥1,000 paid on the first phone: 2 % off from then on, on any phone of this shopper here.
      expect((await payByFingerprint(first, '5555555555554444', 100000)).outcome).toBe('succeeded');
      const second = await shopperTerminal(platform, wechat, SHOP_A.appId, 'erin', {
        plugin: true,
      });
      const p = await toPrompt(second as never, '5555555555554444', 5680);
      expect(p.prompt.mandatory).toBeUndefined();
      expect(p.confirmation.discount).toEqual({ rateBps: 200, amountOff: 113, charged: 5567 });
      // The same shopper in another merchant's app is someone else there: the card is new.
      const elsewhere = await shopperTerminal(platform, wechat, SHOP_B.appId, 'erin', {
        plugin: true,
      });
      const there = await toPrompt(elsewhere as never, '5555555555554444', 5680);
      expect(there.prompt.mandatory).toEqual(['cvv']);
      expect(there.confirmation.discount?.rateBps).toBe(0);
    });

    it('answers identity_required, not a failed attempt, to a SOTER factor from a terminal that never said who it is; the identity route mends it', async () => {
      const frank = await shopperTerminal(platform, wechat, SHOP_A.appId, 'frank', {
        identity: false,
      });
      const r = await payByFingerprint(frank);
      expect(r.outcome).toBe('identity_required');
      expect((await toPrompt(frank as never, '4242424242424242')).prompt.attemptsLeft).toBe(5);
      const told = await frank.client.identify(
        { hostAppId: SHOP_A.appId, hostLoginCode: wechat.loginCode(SHOP_A.appId, 'frank') },
        await frank.client.newIdempotencyKey(),
      );
      expect(told).toMatchObject({ terminalId: frank.id, hostAppId: SHOP_A.appId });
      expect((await payByFingerprint(frank)).outcome).toBe('succeeded');
    });

    it('answers 503 while WeChat is unreachable: never approved, never a failed attempt, and the password still pays', async () => {
      const grace = await shopperTerminal(platform, wechat, SHOP_B.appId, 'grace');
      expect((await payByFingerprint(grace)).outcome).toBe('succeeded');
      wechat.down = true;
      try {
        const r = await payByFingerprint(grace);
        expect(r.outcome).toBe('wechat_unavailable');
        const p = await toPrompt(grace as never, '4242424242424242');
        expect(p.prompt.attemptsLeft).toBe(5);
        const paid = await grace.client.authenticate(
          p.sessionId,
          {
            challenge: p.prompt.challenge,
            factors: factorsFor(p.sessionId, p.prompt, p.confirmation),
          },
          await grace.client.newIdempotencyKey(),
        );
        expect(paid.state).toBe('succeeded');
        const registering = await new PlatformClient({
          baseUrl: platform.url,
          host: createNodeHost(),
          maxAttempts: 1,
        })
          .register({
            password: { salt: SALT, iterations: 10000, key: '11'.repeat(32) },
            identity: { hostAppId: SHOP_B.appId, hostLoginCode: 'abc' },
          })
          .catch((e: { status: number; code: string; retryable: boolean }) => e);
        expect(registering).toMatchObject({
          status: 503,
          code: 'wechat_unavailable',
          retryable: true,
        });
      } finally {
        wechat.down = false;
      }
    });

    it('logs no secret, token, code or openid', async () => {
      await shopperTerminal(platform, wechat, SHOP_A.appId, 'heidi', { plugin: true });
      expect(logText).toContain('terminal_identified');
      for (const secret of [SHOP_A.secret, SHOP_B.secret, PLUGIN.secret])
        expect(logText).not.toContain(secret);
      for (const shopper of ['alice', 'bob', 'erin', 'heidi'])
        expect(logText).not.toContain(wechat.openid(SHOP_A.appId, shopper));
      expect(logText).not.toMatch(/access_token|js_code|openpid"/);
    });
  });
}

soterSuite('SOTER for several merchants’ apps, on SQLite', () => undefined);

describePg('on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.drop());
  soterSuite('SOTER for several merchants’ apps', () => db.url);
});

it('keeps the sandbox’s own SOTER check in sandbox mode without WeChat credentials, and needs no identity there', async () => {
  const platform = await startSandboxPlatform();
  try {
    expect(platform.ctx.soter?.needsIdentity).toBe(false);
    expect(platform.ctx.wechat).toBeUndefined();
    // A plugin that lends login registers the same way: the identity is not needed, nor kept.
    const client = new PlatformClient({ baseUrl: platform.url, host: createNodeHost() });
    const r = await client.register({
      password: { salt: SALT, iterations: 10000, key: '11'.repeat(32) },
      biometric: { scheme: 'soter' },
      identity: { hostAppId: SHOP_A.appId, hostLoginCode: 'a-code-nobody-checks' },
    });
    expect(r.terminalId).toMatch(/^trm_/);
    expect((await platform.store.getTerminal(r.terminalId))?.openidSealed).toBeNull();
  } finally {
    await platform.close();
  }
});

it('answers 503, not identity_invalid, when the operator configured a wrong secret: the shopper’s code is not at fault', async () => {
  const wechat = await startWeChatStandIn({ apps: [SHOP_A] });
  const platform = await startSandboxPlatform({
    wechatApiUrl: wechat.url,
    configObject: { wechat: { apps: [{ appId: SHOP_A.appId, secret: 'not-the-secret' }] } },
  });
  try {
    const refused = await new PlatformClient({
      baseUrl: platform.url,
      host: createNodeHost(),
      maxAttempts: 1,
    })
      .register({
        password: { salt: SALT, iterations: 10000, key: '11'.repeat(32) },
        identity: {
          hostAppId: SHOP_A.appId,
          hostLoginCode: wechat.loginCode(SHOP_A.appId, 'ivan'),
        },
      })
      .catch((e: { status: number; code: string }) => e);
    expect(refused).toMatchObject({ status: 503, code: 'wechat_unavailable' });
  } finally {
    await platform.close();
    await wechat.close();
  }
});
