import { utf8Encode } from '../core/encoding';
import { HostError, type Host } from '../core/host';
import {
  bodyBytes,
  callWx,
  lowerHeaders,
  scanFailure,
  scanTypeOf,
  soterProvider,
  type HostBridge,
} from './shared';

/**
 * The parts of `wx` the SDK uses: all of them offered to plugins (a plugin's own `wx`: storage
 * and requests are the plugin's). `getDeviceInfo` is optional, read only as seed material.
 */
export type WxApi = Pick<
  WechatMiniprogram.Wx,
  'request' | 'scanCode' | 'getStorage' | 'setStorage' | 'removeStorage'
> &
  Partial<Pick<WechatMiniprogram.Wx, 'getDeviceInfo' | 'getAccountInfoSync' | 'pluginLogin'>>;

export interface WxHostOptions {
  /** What the host mini-program lends (SOTER functions); biometrics are offered only with it. */
  bridge?: HostBridge;
  /** A device description sent at registration, e.g. from `wx.getDeviceInfo().model`. */
  deviceLabel?: string;
}

/**
 * The native mini-program host: `wx.request` (raw bytes, so response signatures can be checked),
 * `wx.scanCode`, plugin storage, and what the host lends through the bridge: SOTER, and its own
 * `wx.getRandomValues` (plugins have none; without it the SDK's keyed generator is used).
 *
 * @example
 * const host = createWxHost(wx, { bridge: { startSoterAuthentication: wx.startSoterAuthentication, checkIsSoterEnrolledInDevice: wx.checkIsSoterEnrolledInDevice } })
 */
export function createWxHost(wxApi: WxApi, options: WxHostOptions = {}): Host {
  const biometric = options.bridge ? soterProvider(options.bridge) : undefined;
  return {
    request(req) {
      return new Promise((resolve, reject) => {
        wxApi.request({
          url: req.url,
          method: req.method,
          header: req.headers,
          ...(req.body !== undefined ? { data: req.body } : {}),
          dataType: '其他',
          responseType: 'arraybuffer',
          timeout: req.timeoutMs,
          success: (res) =>
            resolve({
              status: res.statusCode,
              headers: lowerHeaders(res.header),
              body: bodyBytes(res.data, utf8Encode),
            }),
          fail: (err) =>
            reject(
              new HostError(
                /timeout/i.test(err.errMsg)
                  ? 'timeout'
                  : /domain list|合法域名/i.test(err.errMsg)
                    ? 'domain'
                    : 'network',
                `wx.request failed: ${err.errMsg}`,
              ),
            ),
        });
      });
    },
    scanCode({ scanType }) {
      return new Promise((resolve) => {
        wxApi.scanCode({
          onlyFromCamera: false,
          scanType,
          success: (res) =>
            resolve({ ok: true, result: res.result, scanType: scanTypeOf(res.scanType) }),
          fail: (err) => resolve(scanFailure(err.errMsg)),
        });
      });
    },
    storage: {
      get: (key) =>
        callWx<{ data: unknown }>(wxApi.getStorage as never, { key }).then(
          (res) => (typeof res.data === 'string' ? res.data : undefined),
          () => undefined,
        ),
      set: (key, value) =>
        callWx<void>(wxApi.setStorage as never, { key, data: value }).then(() => undefined),
      remove: (key) =>
        callWx<void>(wxApi.removeStorage as never, { key }).then(
          () => undefined,
          () => undefined,
        ),
    },
    ...(options.bridge?.getRandomValues
      ? { randomBytes: lent(options.bridge.getRandomValues) }
      : {}),
    entropy: () => {
      const info = wxApi.getDeviceInfo?.();
      return info ? JSON.stringify(info) : '';
    },
    ...(biometric ? { biometric } : {}),
    ...(options.deviceLabel ? { deviceLabel: options.deviceLabel } : {}),
    ...(options.bridge && options.bridge.login
      ? { identity: identityFrom(wxApi, options.bridge.login) }
      : {}),
  };
}

/**
 * Who the shopper is in the host app (PROTOCOL.md §2.1): the host's AppID as the plugin reads it
 * (`wx.getAccountInfoSync`, plugins from 2.2.2), a code from the host's `wx.login` it lent, and
 * one from `wx.pluginLogin` (plugins from 2.20.1) where the base library has it. Undefined when
 * any of the first two cannot be had: the platform then keeps to the password.
 */
function identityFrom(wxApi: WxApi, login: NonNullable<HostBridge['login']>) {
  return async () => {
    try {
      const account = wxApi.getAccountInfoSync && wxApi.getAccountInfoSync();
      const hostAppId = account && account.miniProgram && account.miniProgram.appId;
      // DevTools' tourist mode has no AppID WeChat could log a shopper into.
      if (!hostAppId || !/^wx[0-9a-f]{16}$/.test(hostAppId)) return undefined;
      const host = await callWx<{ code: string }>(login, {});
      const plugin = wxApi.pluginLogin
        ? await callWx<{ code: string }>(wxApi.pluginLogin, {}).catch(() => undefined)
        : undefined;
      return {
        hostAppId,
        hostLoginCode: host.code,
        ...(plugin && plugin.code ? { pluginLoginCode: plugin.code } : {}),
      };
    } catch {
      return undefined;
    }
  };
}

export type { HostBridge };

/** The host's own `wx.getRandomValues`, lent through the bridge, as a random source. */
function lent(getRandomValues: NonNullable<HostBridge['getRandomValues']>) {
  return (length: number) =>
    callWx<{ randomValues: ArrayBuffer }>(getRandomValues, { length }).then((res) => {
      const bytes = new Uint8Array(res.randomValues);
      if (bytes.length !== length) throw new Error('getRandomValues returned the wrong length');
      return bytes;
    });
}
