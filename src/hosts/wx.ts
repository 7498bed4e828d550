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

/** The parts of `wx` the SDK uses (a plugin's own `wx`: storage and requests are the plugin's). */
export type WxApi = Pick<
  WechatMiniprogram.Wx,
  'request' | 'scanCode' | 'getStorage' | 'setStorage' | 'removeStorage' | 'getRandomValues'
>;

export interface WxHostOptions {
  /** What the host mini-program lends (SOTER functions); biometrics are offered only with it. */
  bridge?: HostBridge;
  /** A device description sent at registration, e.g. from `wx.getDeviceInfo().model`. */
  deviceLabel?: string;
}

/**
 * The native mini-program host: `wx.request` (raw bytes, so response signatures can be checked),
 * `wx.scanCode`, plugin storage, `wx.getRandomValues`, and SOTER through the host bridge.
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
                /timeout/i.test(err.errMsg) ? 'timeout' : 'network',
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
    randomBytes: (length) =>
      callWx<{ randomValues: ArrayBuffer }>(wxApi.getRandomValues as never, { length }).then(
        (res) => {
          const bytes = new Uint8Array(res.randomValues);
          if (bytes.length !== length)
            throw new Error('wx.getRandomValues returned the wrong length');
          return bytes;
        },
      ),
    ...(biometric ? { biometric } : {}),
    ...(options.deviceLabel ? { deviceLabel: options.deviceLabel } : {}),
  };
}

export type { HostBridge };
