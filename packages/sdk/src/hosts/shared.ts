import { base64Decode, toHex } from '../core/encoding';
import { CardPayError } from '../core/errors';
import type { BiometricProvider, ScanOutcome } from '../core/host';
import type { BiometricMode, ScanType } from '../core/protocol';

// What the wx and Taro adapters share: both speak the mini-program API family.

/** Maps the `scanType` a mini-program scanner reports (`QR_CODE`, `EAN_13`, …) to the protocol's. */
export function scanTypeOf(reported: string | undefined): ScanType {
  switch ((reported ?? '').toUpperCase()) {
    case 'QR_CODE':
    case 'WX_CODE':
      return 'qrCode';
    case 'DATA_MATRIX':
      return 'datamatrix';
    case 'PDF_417':
      return 'pdf417';
    default:
      return 'barCode';
  }
}

/** Classifies a scanner failure by its `errMsg`: a user who backs out is not an error. */
export function scanFailure(errMsg: string | undefined): ScanOutcome & { ok: false } {
  const msg = errMsg ?? 'scanCode:fail';
  if (/cancel/i.test(msg))
    return { ok: false, reason: 'cancelled', message: 'the user closed the scanner' };
  if (/auth|deny|denied|permission/i.test(msg)) {
    return { ok: false, reason: 'denied', message: 'the camera permission was refused' };
  }
  return { ok: false, reason: 'failed', message: 'the scanner failed' };
}

/** Lower-cases header names (mini-program runtimes keep the server's spelling). */
export function lowerHeaders(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = String(v);
  return out;
}

/** Turns an ArrayBuffer, typed array or string body into bytes. */
export function bodyBytes(data: unknown, encode: (s: string) => Uint8Array): Uint8Array {
  // Checked by tag, not instanceof: the buffer may come from another realm (a test DOM, a worker).
  if (Object.prototype.toString.call(data) === '[object ArrayBuffer]')
    return new Uint8Array(data as ArrayBuffer);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof data === 'string') return encode(data);
  return encode(data === undefined || data === null ? '' : JSON.stringify(data));
}

/**
 * What a host mini-program lends the plugin (INTERFACES.md §2.2). Plugins cannot call SOTER, so
 * biometric payment needs the host's own functions (or wrappers of them).
 */
export interface HostBridge {
  /**
   * The host's own `wx.login` (a plugin cannot log a shopper into the host): its code tells the
   * platform who the shopper is in the host app, which WeChat's SOTER check needs (§2.1).
   */
  login?: (options: {
    success?: (res: { code: string }) => void;
    fail?: (err: { errMsg?: string }) => void;
  }) => unknown;
  /** The host's own `wx.getRandomValues` (plugins are not given it): a random source to use. */
  getRandomValues?: (options: {
    length: number;
    success?: (res: { randomValues: ArrayBuffer }) => void;
    fail?: (err: { errMsg?: string }) => void;
  }) => unknown;
  startSoterAuthentication?: (options: {
    requestAuthModes: BiometricMode[];
    challenge: string;
    authContent?: string;
    success?: (res: { authMode?: string; resultJSON: string; resultJSONSignature: string }) => void;
    fail?: (err: { errCode?: number; errMsg?: string }) => void;
  }) => unknown;
  /** Which SOTER modes this device supports: asked first (iOS may report fingerprints enrolled on a Face ID phone). */
  checkIsSupportSoterAuthentication?: (options: {
    success?: (res: { supportMode: BiometricMode[] }) => void;
    fail?: (err: { errMsg?: string }) => void;
  }) => unknown;
  checkIsSoterEnrolledInDevice?: (options: {
    checkAuthMode: BiometricMode;
    success?: (res: { isEnrolled: boolean }) => void;
    fail?: (err: { errMsg?: string }) => void;
  }) => unknown;
}

/** Calls a callback-style mini-program function, also accepting one that returns a promise. */
export function callWx<R>(
  fn: (options: any) => unknown,
  options: Record<string, unknown>,
): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const returned = fn({ ...options, success: resolve, fail: reject });
    if (returned && typeof (returned as Promise<R>).then === 'function')
      (returned as Promise<R>).then(resolve, reject);
  });
}

/**
 * A SOTER authenticator built from the host bridge. SOTER signs with a key kept by the messaging
 * app; the platform verifies through WeChat's service, so no public key is registered.
 */
export function soterProvider(
  bridge: HostBridge,
  authContent = '验证以完成支付',
): BiometricProvider | undefined {
  const start = bridge.startSoterAuthentication;
  const check = bridge.checkIsSoterEnrolledInDevice;
  if (!start || !check) return undefined;
  return {
    scheme: 'soter',
    async available() {
      // The modes the device supports, then those of them with something enrolled.
      let supported: BiometricMode[] = ['fingerPrint', 'facial'];
      const support = bridge.checkIsSupportSoterAuthentication;
      if (support) {
        try {
          const res = await callWx<{ supportMode?: BiometricMode[] }>(support, {});
          supported = supported.filter((m) => (res.supportMode ?? []).includes(m));
        } catch {
          return [];
        }
      }
      const modes: BiometricMode[] = [];
      for (const mode of supported) {
        try {
          const res = await callWx<{ isEnrolled: boolean }>(check, { checkAuthMode: mode });
          if (res.isEnrolled) modes.push(mode);
        } catch {
          // not supported on this device
        }
      }
      return modes;
    },
    async authenticate(challenge, mode) {
      let res: { resultJSON: string; resultJSONSignature: string };
      try {
        res = await callWx(start, { requestAuthModes: [mode], challenge, authContent });
      } catch (err) {
        const e = err as { errCode?: number; errMsg?: string };
        // 90008: the user cancelled; 90009/90010: locked or too many failures.
        const cancelled = e?.errCode === 90008 || /cancel/i.test(e?.errMsg ?? '');
        throw new CardPayError(
          cancelled ? 'biometric_cancelled' : 'biometric_failed',
          cancelled
            ? 'the user cancelled biometric authentication'
            : 'biometric authentication failed',
          { retryable: true },
        );
      }
      // SOTER's signature arrives in base64; the protocol carries hex, and the untouched text
      // too, for WeChat's verification service to see exactly what SOTER produced.
      const signature = base64Decode(res.resultJSONSignature);
      if (!signature)
        throw new CardPayError('biometric_failed', 'SOTER returned a malformed signature');
      return {
        mode,
        resultJSON: res.resultJSON,
        signature: toHex(signature),
        resultJSONSignature: res.resultJSONSignature,
      };
    },
  };
}
