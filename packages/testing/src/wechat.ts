import {
  createHmac,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WeChatApp {
  /** `wx` and 16 hex digits, as WeChat's AppIDs are. */
  appId: string;
  secret: string;
}

export interface WeChatStandInOptions {
  /** The host mini-programs it knows, with their secrets. */
  apps: WeChatApp[];
  /** The plugin's own AppID and secret (for `getpluginopenpid`). */
  plugin?: WeChatApp;
  /** How long an access token lives, in seconds. Default 7200, as WeChat's. */
  tokenLifetimeS?: number;
}

/** The stand-in, listening: what a test drives it with, and what it saw. */
export interface WeChatStandIn {
  /** Where it listens: the platform's `--wechat-api-url`. */
  url: string;
  /** A code the host app's `wx.login` gives the shopper (five minutes, once). */
  loginCode(appId: string, shopper: string): string;
  /** A code `wx.pluginLogin` gives the shopper inside that host app (five minutes, once). */
  pluginCode(appId: string, shopper: string): string;
  /** SOTER on the shopper's phone in that host app: the base64 signature of `resultJSON`. */
  soterSign(appId: string, shopper: string, resultJSON: string): string;
  /** The shopper's openid in that app, as WeChat would give it (for assertions). */
  openid(appId: string, shopper: string): string;
  /** Every token of that app stops working (as when another server forced a new one). */
  invalidateTokens(appId: string): void;
  /** While true it answers nothing: WeChat unreachable. */
  down: boolean;
  /** The APIs called, in order, with the app each was for (never a secret or a code). */
  calls: { api: string; appId?: string }[];
  close(): Promise<void>;
}

const CODE_LIFETIME_MS = 5 * 60 * 1000;

/**
 * A stand-in of the four WeChat server APIs the platform uses for a shopper's identity and SOTER
 * (`stable_token`, `jscode2session`, `getpluginopenpid`, `soter/verify_signature`), behaving as
 * WeChat documents them: codes expire and work once (40029 unknown or of another app, 40163
 * used), a wrong secret is 40125, a token is tied to its app and refused when stale (40001,
 * 42001). Point the platform at it with `--wechat-api-url`, and give it the same apps.
 *
 * @example
 * const wechat = await startWeChatStandIn({ apps: [{ appId: 'wx0123456789abcdef', secret: 's' }] })
 * const code = wechat.loginCode('wx0123456789abcdef', 'alice')
 */
export async function startWeChatStandIn(options: WeChatStandInOptions): Promise<WeChatStandIn> {
  const apps = new Map(options.apps.map((a) => [a.appId, a]));
  const lifetimeS = options.tokenLifetimeS ?? 7200;
  const tokens = new Map<string, { appId: string; expiresAt: number; valid: boolean }>();
  const codes = new Map<
    string,
    { appId: string; shopper: string; plugin: boolean; expiresAt: number; used: boolean }
  >();
  const keys = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>();
  const salt = randomBytes(16);
  const ids = (kind: string, ...parts: string[]) =>
    `o${createHmac('sha256', salt)
      .update(`${kind}\n${parts.join('\n')}`)
      .digest('base64url')
      .slice(0, 27)}`;
  const openid = (appId: string, shopper: string) => ids('openid', appId, shopper);
  const openidOwner = new Map<string, { appId: string; shopper: string }>();
  const keyOf = (appId: string, shopper: string) => {
    const k = `${appId}\n${shopper}`;
    let pair = keys.get(k);
    if (!pair) {
      pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      keys.set(k, pair);
    }
    return pair;
  };
  const issue = (appId: string, shopper: string, plugin: boolean) => {
    const code = randomBytes(16).toString('hex');
    codes.set(code, {
      appId,
      shopper,
      plugin,
      expiresAt: Date.now() + CODE_LIFETIME_MS,
      used: false,
    });
    openidOwner.set(openid(appId, shopper), { appId, shopper });
    return code;
  };
  const calls: WeChatStandIn['calls'] = [];
  const state = { down: false };

  const error = (errcode: number, errmsg: string) => ({ errcode, errmsg });
  /** The app a token belongs to, or WeChat's error for it. */
  const tokenApp = (token: string | null): string | { errcode: number; errmsg: string } => {
    const t = token ? tokens.get(token) : undefined;
    if (!t || !t.valid)
      return error(40001, 'invalid credential, access_token is invalid or not latest');
    if (t.expiresAt <= Date.now()) return error(42001, 'access_token expired');
    return t.appId;
  };
  const takeCode = (code: unknown, appId: string, plugin: boolean) => {
    const c = typeof code === 'string' ? codes.get(code) : undefined;
    if (!c || c.plugin !== plugin || c.appId !== appId || c.expiresAt <= Date.now())
      return { err: error(40029, 'invalid code') };
    if (c.used) return { err: error(40163, 'code been used') };
    c.used = true;
    return { code: c };
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (state.down) {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = chunks.length
        ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body)
        : {};
    } catch {
      return send(res, error(47001, 'data format error'));
    }
    switch (`${req.method} ${url.pathname}`) {
      case 'POST /cgi-bin/stable_token': {
        const app =
          apps.get(String(body.appid)) ??
          (options.plugin?.appId === body.appid ? options.plugin : undefined);
        calls.push({ api: 'stable_token', appId: String(body.appid) });
        if (body.grant_type !== 'client_credential')
          return send(res, error(40002, 'invalid grant_type'));
        if (!app) return send(res, error(40013, 'invalid appid'));
        if (body.secret !== app.secret) return send(res, error(40125, 'invalid appsecret'));
        // The same token until it expires, unless a new one is forced (the old one then stops).
        const live = [...tokens.entries()].find(
          ([, t]) => t.appId === app.appId && t.valid && t.expiresAt > Date.now(),
        );
        if (live && body.force_refresh !== true)
          return send(res, {
            access_token: live[0],
            expires_in: Math.floor((live[1].expiresAt - Date.now()) / 1000),
          });
        for (const t of tokens.values()) if (t.appId === app.appId) t.valid = false;
        const token = randomBytes(24).toString('hex');
        tokens.set(token, {
          appId: app.appId,
          expiresAt: Date.now() + lifetimeS * 1000,
          valid: true,
        });
        return send(res, { access_token: token, expires_in: lifetimeS });
      }
      case 'GET /sns/jscode2session': {
        const appId = url.searchParams.get('appid') ?? '';
        calls.push({ api: 'jscode2session', appId });
        const app = apps.get(appId);
        if (!app) return send(res, error(40013, 'invalid appid'));
        if (url.searchParams.get('secret') !== app.secret)
          return send(res, error(40125, 'invalid appsecret'));
        if (url.searchParams.get('grant_type') !== 'authorization_code')
          return send(res, error(40002, 'invalid grant_type'));
        const taken = takeCode(url.searchParams.get('js_code'), appId, false);
        if (taken.err) return send(res, taken.err);
        return send(res, {
          openid: openid(appId, taken.code.shopper),
          session_key: randomBytes(16).toString('base64'),
        });
      }
      case 'POST /wxa/getpluginopenpid': {
        const owner = tokenApp(url.searchParams.get('access_token'));
        calls.push({
          api: 'getpluginopenpid',
          ...(typeof owner === 'string' ? { appId: owner } : {}),
        });
        if (typeof owner !== 'string') return send(res, owner);
        if (owner !== options.plugin?.appId)
          return send(res, error(40001, 'not the plugin’s access_token'));
        const c = typeof body.code === 'string' ? codes.get(body.code) : undefined;
        if (!c || !c.plugin) return send(res, error(40029, 'invalid code'));
        const taken = takeCode(body.code, c.appId, true);
        if (taken.err) return send(res, taken.err);
        return send(res, {
          errcode: 0,
          errmsg: 'ok',
          openpid: ids('openpid', c.appId, owner, c.shopper),
        });
      }
      case 'POST /cgi-bin/soter/verify_signature': {
        const owner = tokenApp(url.searchParams.get('access_token'));
        calls.push({
          api: 'verify_signature',
          ...(typeof owner === 'string' ? { appId: owner } : {}),
        });
        if (typeof owner !== 'string') return send(res, owner);
        const who = openidOwner.get(String(body.openid));
        if (!who || who.appId !== owner) return send(res, error(40003, 'invalid openid'));
        const { publicKey } = keyOf(who.appId, who.shopper);
        let ok = false;
        try {
          ok = verify(
            'sha256',
            Buffer.from(String(body.json_string), 'utf8'),
            publicKey,
            Buffer.from(String(body.json_signature), 'base64'),
          );
        } catch {
          ok = false;
        }
        return send(res, { errcode: 0, errmsg: 'ok', is_ok: ok });
      }
      default:
        res.writeHead(404).end();
    }
  }

  function send(res: ServerResponse, body: unknown): void {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    loginCode: (appId, shopper) => issue(appId, shopper, false),
    pluginCode: (appId, shopper) => issue(appId, shopper, true),
    soterSign: (appId, shopper, resultJSON) =>
      sign('sha256', Buffer.from(resultJSON, 'utf8'), keyOf(appId, shopper).privateKey).toString(
        'base64',
      ),
    openid,
    invalidateTokens(appId) {
      for (const t of tokens.values()) if (t.appId === appId) t.valid = false;
    },
    get down() {
      return state.down;
    },
    set down(value: boolean) {
      state.down = value;
    },
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
