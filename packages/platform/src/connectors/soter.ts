import { ApiError } from '../infra/errors';
import { WeChatUnavailable, type WeChatApi } from './wechat';

/**
 * Verifies a SOTER biometric assertion. Keys live with the messaging app, so the platform asks
 * WeChat's `verify_signature` service rather than checking the signature itself.
 */
export interface SoterVerifier {
  /** Whether a terminal must have told its identity in WeChat (PROTOCOL.md §2.1) first. */
  readonly needsIdentity: boolean;
  /**
   * True when the signature is the shopper's; false when it is not (a failed attempt). Throws an
   * `ApiError` when it cannot be told now (`503`, retryable, not a failed attempt).
   */
  verify(input: SoterAssertion): Promise<boolean>;
}

export interface SoterAssertion {
  terminalId: string;
  /** The terminal's host app and its shopper's openid there (PROTOCOL.md §2.1). */
  hostAppId?: string;
  openid?: string;
  resultJSON: string;
  signatureHex: string;
  /** SOTER's base64 signature as the terminal received it, when it sent it (same bytes). */
  signatureBase64?: string;
}

/**
 * The production verifier: `verify_signature` under the access token of the terminal's host app
 * (where `startSoterAuthentication` ran), for the shopper's openid in that app. Each merchant's
 * app is verified with its own token, so biometrics work for every merchant configured.
 */
export class WeChatSoterVerifier implements SoterVerifier {
  readonly needsIdentity = true;
  constructor(private readonly api: WeChatApi) {}

  async verify(input: SoterAssertion): Promise<boolean> {
    if (!input.hostAppId || !input.openid) return false;
    try {
      return await this.api.verifySoter(
        input.hostAppId,
        input.openid,
        input.resultJSON,
        input.signatureBase64 ?? Buffer.from(input.signatureHex, 'hex').toString('base64'),
      );
    } catch (error) {
      // WeChat cannot say now: neither a match nor a failed attempt; the shopper may use the
      // password instead, or try again.
      if (error instanceof WeChatUnavailable)
        throw new ApiError(
          503,
          'wechat_unavailable',
          'WeChat cannot check the biometric signature now; try again or use the password',
          { retryAfter: 5 },
          true,
        );
      return false; // WeChat refused the check itself (an openid of another app): not a match
    }
  }
}
