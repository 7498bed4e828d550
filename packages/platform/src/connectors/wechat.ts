import type { WeChatConfig, WeChatCredentials } from '../infra/config';

// Clients of the four WeChat server APIs the platform needs (PROTOCOL.md §2.1), written from
// WeChat's documentation: `stable_token` (an app's access token), `jscode2session` (a host app's
// login code to the shopper's openid there), `getpluginopenpid` (a plugin login code to the
// openpid) and `soter/verify_signature`. WeChat answers HTTP 200 with `errcode` on failure.
// Nothing here logs: the caller logs the app id and the outcome, never a secret, a token, a
// code or an openid.

/** WeChat's error codes that decide what the platform answers. */
export const WECHAT_ERRORS = {
  busy: -1,
  invalidToken: 40001,
  invalidCode: 40029,
  badSecret: 40125,
  invalidAppId: 40013,
  codeUsed: 40163,
  tokenExpired: 42001,
  rateLimited: 45011,
} as const;

/** WeChat could not be asked, or answered that it cannot now: `503`, retryable. */
export class WeChatUnavailable extends Error {
  constructor(
    readonly api: string,
    reason: string,
  ) {
    super(`WeChat ${api}: ${reason}`);
    this.name = 'WeChatUnavailable';
  }
}

/** WeChat refused what was asked (a code expired, used or of another app; a wrong secret). */
export class WeChatRefused extends Error {
  constructor(
    readonly api: string,
    readonly errcode: number,
  ) {
    super(`WeChat ${api} refused it (errcode ${errcode})`);
    this.name = 'WeChatRefused';
  }
}

export interface WeChatApiOptions {
  /** `https://api.weixin.qq.com` by default; `--wechat-api-url` points it at a stand-in. */
  baseUrl?: string;
  timeoutMs?: number;
  now?: () => number;
}

interface Token {
  value: string;
  expiresAt: number;
}

/** Tokens are taken again this long before WeChat says they expire. */
const TOKEN_MARGIN_MS = 5 * 60 * 1000;

export class WeChatApi {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly apps = new Map<string, WeChatCredentials>();
  private readonly tokens = new Map<string, Token>();
  private readonly fetching = new Map<string, Promise<Token>>();

  constructor(
    readonly config: WeChatConfig,
    options: WeChatApiOptions = {},
  ) {
    this.baseUrl = (options.baseUrl ?? 'https://api.weixin.qq.com').replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.now = options.now ?? Date.now;
    for (const app of config.apps) this.apps.set(app.appId, app);
  }

  /** Whether the configuration names this host app. */
  knows(appId: string): boolean {
    return this.apps.has(appId);
  }

  get hasPlugin(): boolean {
    return !!this.config.plugin;
  }

  /** `GET /sns/jscode2session`: the shopper's openid in a host app, from its `wx.login` code. */
  async openidFor(appId: string, code: string): Promise<string> {
    const app = this.apps.get(appId);
    if (!app) throw new WeChatRefused('jscode2session', WECHAT_ERRORS.invalidCode);
    const query = new URLSearchParams({
      appid: app.appId,
      secret: app.secret,
      js_code: code,
      grant_type: 'authorization_code',
    });
    const body = await this.call('jscode2session', 'GET', `/sns/jscode2session?${query}`);
    if (typeof body.openid !== 'string' || !body.openid)
      throw new WeChatUnavailable('jscode2session', 'no openid in the answer');
    return body.openid;
  }

  /** `POST /wxa/getpluginopenpid`: the shopper's openpid, from a `wx.pluginLogin` code. */
  async openpidFor(code: string): Promise<string> {
    const plugin = this.config.plugin;
    if (!plugin) throw new WeChatRefused('getpluginopenpid', WECHAT_ERRORS.invalidCode);
    const body = await this.withToken(plugin, 'getpluginopenpid', (token) =>
      this.call('getpluginopenpid', 'POST', `/wxa/getpluginopenpid?access_token=${token}`, {
        code,
      }),
    );
    if (typeof body.openpid !== 'string' || !body.openpid)
      throw new WeChatUnavailable('getpluginopenpid', 'no openpid in the answer');
    return body.openpid;
  }

  /**
   * `POST /cgi-bin/soter/verify_signature` under the host app's token, for the shopper's openid
   * there: whether SOTER signed `json` with that shopper's key.
   */
  async verifySoter(
    appId: string,
    openid: string,
    json: string,
    signatureBase64: string,
  ): Promise<boolean> {
    const app = this.apps.get(appId);
    if (!app) throw new WeChatRefused('verify_signature', WECHAT_ERRORS.invalidCode);
    const body = await this.withToken(app, 'verify_signature', (token) =>
      this.call(
        'verify_signature',
        'POST',
        `/cgi-bin/soter/verify_signature?access_token=${token}`,
        {
          openid,
          json_string: json,
          json_signature: signatureBase64,
        },
      ),
    );
    return body.is_ok === true;
  }

  /** Calls with the app's token; a token WeChat calls invalid or expired is taken again, once. */
  private async withToken(
    app: WeChatCredentials,
    api: string,
    call: (token: string) => Promise<Record<string, unknown>>,
  ): Promise<Record<string, unknown>> {
    const token = await this.token(app);
    try {
      return await call(encodeURIComponent(token.value));
    } catch (error) {
      if (
        !(error instanceof WeChatRefused) ||
        (error.errcode !== WECHAT_ERRORS.invalidToken &&
          error.errcode !== WECHAT_ERRORS.tokenExpired)
      )
        throw error;
      // Another caller may have refreshed it meanwhile; otherwise ask WeChat for a new one.
      if (this.tokens.get(app.appId) === token) this.tokens.delete(app.appId);
      const fresh = await this.token(app, true);
      try {
        return await call(encodeURIComponent(fresh.value));
      } catch (again) {
        if (again instanceof WeChatRefused && again.errcode === error.errcode)
          throw new WeChatUnavailable(api, 'the access token was refused twice');
        throw again;
      }
    }
  }

  /** `POST /cgi-bin/stable_token`: cached per app, one request at a time per app. */
  private async token(app: WeChatCredentials, forceRefresh = false): Promise<Token> {
    const cached = this.tokens.get(app.appId);
    if (cached && cached.expiresAt > this.now()) return cached;
    let pending = this.fetching.get(app.appId);
    if (!pending) {
      pending = this.call('stable_token', 'POST', '/cgi-bin/stable_token', {
        grant_type: 'client_credential',
        appid: app.appId,
        secret: app.secret,
        force_refresh: forceRefresh,
      })
        .then((body) => {
          if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number')
            throw new WeChatUnavailable('stable_token', 'no token in the answer');
          const token = {
            value: body.access_token,
            expiresAt: this.now() + Math.max(0, body.expires_in * 1000 - TOKEN_MARGIN_MS),
          };
          this.tokens.set(app.appId, token);
          return token;
        })
        .catch((error: unknown) => {
          // A wrong secret is the operator's to fix: it is unavailable to the shopper, not theirs.
          if (error instanceof WeChatRefused)
            throw new WeChatUnavailable('stable_token', error.message);
          throw error;
        })
        .finally(() => this.fetching.delete(app.appId));
      this.fetching.set(app.appId, pending);
    }
    return pending;
  }

  private async call(
    api: string,
    method: 'GET' | 'POST',
    path: string,
    json?: unknown,
  ): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        ...(json === undefined
          ? {}
          : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(json) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      throw new WeChatUnavailable(api, timedOut ? 'no answer in time' : 'unreachable');
    }
    let body: Record<string, unknown>;
    try {
      body = (await res.json()) as Record<string, unknown>;
    } catch {
      throw new WeChatUnavailable(api, `HTTP ${res.status} without JSON`);
    }
    if (!res.ok) throw new WeChatUnavailable(api, `HTTP ${res.status}`);
    const errcode = typeof body.errcode === 'number' ? body.errcode : 0;
    if (errcode === 0) return body;
    if (errcode === WECHAT_ERRORS.busy || errcode === WECHAT_ERRORS.rateLimited)
      throw new WeChatUnavailable(api, `errcode ${errcode}`);
    // The app's own credentials refused: the operator's to fix, not the shopper's code.
    if (errcode === WECHAT_ERRORS.badSecret || errcode === WECHAT_ERRORS.invalidAppId)
      throw new WeChatUnavailable(
        api,
        `errcode ${errcode}: the configured AppID or secret is wrong`,
      );
    throw new WeChatRefused(api, errcode);
  }
}
