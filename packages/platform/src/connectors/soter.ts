/**
 * Verifies a SOTER biometric assertion. Keys live with the messaging app, so the platform asks
 * WeChat's `verify_signature` service rather than checking the signature itself.
 */
export interface SoterVerifier {
  verify(input: SoterAssertion): Promise<boolean>;
}

export interface SoterAssertion {
  terminalId: string;
  resultJSON: string;
  signatureHex: string;
  /** SOTER's base64 signature as the terminal received it, when it sent it (same bytes). */
  signatureBase64?: string;
}

export interface WeChatSoterOptions {
  /** Defaults to WeChat's endpoint; tests point it at a local stand-in. */
  endpoint?: string;
  /** A current access token of the merchant's mini-program. */
  accessToken: () => Promise<string>;
  /** The user's openid for a terminal (kept by the merchant's back end). */
  openidFor: (terminalId: string) => Promise<string | undefined>;
  timeoutMs?: number;
}

/** The production verifier: `POST /cgi-bin/soter/verify_signature` with the openid, the JSON and its signature (base64). */
export class WeChatSoterVerifier implements SoterVerifier {
  private readonly endpoint: string;
  constructor(private readonly options: WeChatSoterOptions) {
    this.endpoint = options.endpoint ?? 'https://api.weixin.qq.com/cgi-bin/soter/verify_signature';
  }

  async verify(input: SoterAssertion): Promise<boolean> {
    const openid = await this.options.openidFor(input.terminalId);
    if (!openid) return false;
    const token = await this.options.accessToken();
    try {
      const res = await fetch(`${this.endpoint}?access_token=${encodeURIComponent(token)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          openid,
          json_string: input.resultJSON,
          json_signature:
            input.signatureBase64 ?? Buffer.from(input.signatureHex, 'hex').toString('base64'),
        }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 3000),
      });
      const body = (await res.json()) as { errcode?: number; is_ok?: boolean };
      return res.ok && (body.errcode ?? 0) === 0 && body.is_ok === true;
    } catch {
      return false; // an unreachable verifier proves nothing
    }
  }
}
