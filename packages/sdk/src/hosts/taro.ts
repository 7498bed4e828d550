import type TaroNamespace from '@tarojs/taro';
import { utf8Encode } from '../core/encoding';
import { HostError, type Host } from '../core/host';
import {
  bodyBytes,
  lowerHeaders,
  scanFailure,
  scanTypeOf,
  soterProvider,
  type HostBridge,
} from './shared';

type TaroStatic = typeof TaroNamespace;

/** The parts of Taro the SDK uses; `getRandomValues` exists on the weapp target only. */
export type TaroApi = Pick<
  TaroStatic,
  'request' | 'scanCode' | 'getStorage' | 'setStorage' | 'removeStorage'
> & {
  getRandomValues?: (option: { length: number }) => Promise<{ randomValues: ArrayBuffer }>;
};

export interface TaroHostOptions {
  bridge?: HostBridge;
  deviceLabel?: string;
}

/**
 * The host for Taro apps, on any target that has `scanCode` (weapp, alipay, tt, h5 with a scanner
 * polyfill…). `@tarojs/taro` is an optional peer dependency: pass your app's `Taro` object.
 *
 * @example
 * import Taro from '@tarojs/taro'
 * const checkout = createCheckout({ host: createTaroHost(Taro), platformUrl, merchantId, amount })
 */
export function createTaroHost(taro: TaroApi, options: TaroHostOptions = {}): Host {
  const biometric = options.bridge ? soterProvider(options.bridge) : undefined;
  return {
    async request(req) {
      try {
        const res = await taro.request({
          url: req.url,
          method: req.method,
          header: req.headers,
          ...(req.body !== undefined ? { data: req.body } : {}),
          dataType: 'text',
          responseType: 'arraybuffer',
          timeout: req.timeoutMs,
        });
        return {
          status: res.statusCode,
          headers: lowerHeaders(res.header),
          body: bodyBytes(res.data, utf8Encode),
        };
      } catch (err) {
        const msg = String((err as { errMsg?: string })?.errMsg ?? err);
        throw new HostError(
          /timeout/i.test(msg) ? 'timeout' : 'network',
          `Taro.request failed: ${msg}`,
        );
      }
    },
    async scanCode({ scanType }) {
      try {
        const res = await taro.scanCode({ onlyFromCamera: false, scanType });
        return { ok: true, result: res.result, scanType: scanTypeOf(res.scanType) };
      } catch (err) {
        return scanFailure((err as { errMsg?: string })?.errMsg);
      }
    },
    storage: {
      get: (key) =>
        taro.getStorage<unknown>({ key }).then(
          (res) => (typeof res.data === 'string' ? res.data : undefined),
          () => undefined,
        ),
      set: (key, value) => taro.setStorage({ key, data: value }).then(() => undefined),
      remove: (key) =>
        taro.removeStorage({ key }).then(
          () => undefined,
          () => undefined,
        ),
    },
    ...randomSource(taro),
    ...(biometric ? { biometric } : {}),
    ...(options.deviceLabel ? { deviceLabel: options.deviceLabel } : {}),
  };
}

declare const crypto: { getRandomValues?: (a: Uint8Array) => Uint8Array } | undefined;

/**
 * A Taro app is a host, not a plugin: on weapp it has `getRandomValues`, on h5 Web Crypto. Where
 * neither exists the SDK's keyed generator makes its values unique instead.
 */
function randomSource(taro: TaroApi): Pick<Host, 'randomBytes'> {
  if (taro.getRandomValues) {
    const draw = taro.getRandomValues;
    return {
      randomBytes: async (length) => new Uint8Array((await draw({ length })).randomValues),
    };
  }
  const webCrypto = typeof crypto !== 'undefined' ? crypto : undefined;
  if (webCrypto?.getRandomValues) {
    const draw = webCrypto.getRandomValues.bind(webCrypto);
    return { randomBytes: async (length) => draw(new Uint8Array(length)) };
  }
  return {};
}
