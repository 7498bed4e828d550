import type { SoterVerifier } from '../connectors/soter';

/** The signature the sandbox refuses: all zero bytes, so tests can play a biometric mismatch. */
export const SANDBOX_SOTER_REFUSED = '00'.repeat(32);

/**
 * The sandbox's stand-in for WeChat's SOTER check. SOTER keys live with the messaging app and
 * only WeChat's service can check a signature, which the sandbox cannot reach; so here any
 * signature passes except the documented refusal. The binding to the session's challenge (the
 * assertion's `raw`) is still checked by the platform itself, as in production. Installed only in
 * sandbox mode, so that DevTools' simulated SOTER and the merchant kit's bridge can pay.
 */
export class SandboxSoterVerifier implements SoterVerifier {
  readonly needsIdentity = false;
  // The request schema already holds the signature to 8-1024 bytes of hex.
  async verify(input: { signatureHex: string }): Promise<boolean> {
    return !/^0+$/.test(input.signatureHex);
  }
}
