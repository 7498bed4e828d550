import { randomBytes } from 'node:crypto';
import type { HostBridge } from 'cardpay/wx';
import type { BiometricMode } from 'cardpay';

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
> & { calls: { challenge: string; modes: BiometricMode[] }[] } {
  const modes = options.modes ?? ['fingerPrint'];
  const outcomes = [...(options.outcomes ?? [])];
  const calls: { challenge: string; modes: BiometricMode[] }[] = [];
  let counter = 0;
  return {
    calls,
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
        const signature = outcome === 'mismatch' ? Buffer.alloc(32) : randomBytes(256);
        success?.({
          authMode: requestAuthModes[0],
          resultJSON,
          resultJSONSignature: signature.toString('base64'),
        });
      }, 0);
    },
  };
}
