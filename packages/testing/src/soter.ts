import { randomBytes } from 'node:crypto';
import type { HostBridge } from 'cardpay/wx';
import type { BiometricMode } from 'cardpay';
import type { WeChatStandIn } from './wechat';

export interface SandboxSoterOptions {
  /** The modes the device has enrolled. Default: fingerprint only. */
  modes?: BiometricMode[];
  /** The modes the device supports (`checkIsSupportSoterAuthentication`). Default: `modes`. */
  supportedModes?: BiometricMode[];
  /**
   * What the next authentications do, in order (then `pass`): `pass` signs; `cancel` is the
   * user closing the dialog (errCode 90008); `mismatch` signs with the sandbox's refused signature.
   */
  outcomes?: ('pass' | 'cancel' | 'mismatch')[];
  /**
   * Sign as this shopper's SOTER key in this host app, as known to a WeChat stand-in, so that a
   * platform pointed at the stand-in verifies the signatures as WeChat would. The bridge then also
   * lends the host's `login`, from the stand-in. Without it, signatures are random bytes the
   * sandbox platform accepts.
   */
  wechat?: { standIn: WeChatStandIn; appId: string; shopper: string };
}

/**
 * A host bridge that plays WeChat's SOTER for tests against the sandbox platform: lend it with
 * `requirePlugin('cardpay').setHostBridge(...)` and the checkout offers biometrics. Its assertions
 * have SOTER's shape (the challenge as `raw`, a base64 signature); the sandbox accepts any
 * signature but all zeros, since only WeChat can check a real one.
 *
 * @example
 * const soter = sandboxSoterBridge({ outcomes: ['cancel'] })   // first try cancelled, then passes
 * requirePlugin('cardpay').setHostBridge(soter)
 */
export function sandboxSoterBridge(
  options: SandboxSoterOptions = {},
): Required<
  Pick<
    HostBridge,
    | 'startSoterAuthentication'
    | 'checkIsSoterEnrolledInDevice'
    | 'checkIsSupportSoterAuthentication'
  >
> &
  Pick<HostBridge, 'login'> & { calls: { challenge: string; modes: BiometricMode[] }[] } {
  const modes = options.modes ?? ['fingerPrint'];
  const outcomes = [...(options.outcomes ?? [])];
  const calls: { challenge: string; modes: BiometricMode[] }[] = [];
  let counter = 0;
  const wechat = options.wechat;
  return {
    calls,
    ...(wechat
      ? {
          login({ success }: { success?: (res: { code: string }) => void }) {
            setTimeout(
              () => success?.({ code: wechat.standIn.loginCode(wechat.appId, wechat.shopper) }),
              0,
            );
          },
        }
      : {}),
    checkIsSupportSoterAuthentication({ success }) {
      setTimeout(() => success?.({ supportMode: [...(options.supportedModes ?? modes)] }), 0);
    },
    checkIsSoterEnrolledInDevice({ checkAuthMode, success }) {
      setTimeout(() => success?.({ isEnrolled: modes.includes(checkAuthMode) }), 0);
    },
    startSoterAuthentication({ requestAuthModes, challenge, success, fail }) {
      calls.push({ challenge, modes: requestAuthModes });
      const outcome = outcomes.shift() ?? 'pass';
      setTimeout(() => {
        if (outcome === 'cancel')
          return fail?.({ errCode: 90008, errMsg: 'startSoterAuthentication:fail cancel' });
        const resultJSON = JSON.stringify({
          raw: challenge,
          fid: '1',
          counter: ++counter,
          tee_n: 'sandbox',
          tee_v: '1',
          fp_n: 'sandbox',
          fp_v: '1',
          cpu_id: 'sandbox',
          uid: '0',
        });
        const signature =
          outcome === 'mismatch'
            ? Buffer.alloc(32)
            : wechat
              ? Buffer.from(
                  wechat.standIn.soterSign(wechat.appId, wechat.shopper, resultJSON),
                  'base64',
                )
              : randomBytes(256);
        success?.({
          authMode: requestAuthModes[0],
          resultJSON,
          resultJSONSignature: signature.toString('base64'),
        });
      }, 0);
    },
  };
}
