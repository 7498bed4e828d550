import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import type { BiometricProvider } from '../../src/core/host';
import { WeChatSoterVerifier } from '../../src/server/soter';
import { startSandboxPlatform, type SandboxPlatform } from '../../src/testing/platform';
import { terminal, toPrompt } from '../support/server-harness';

// A stand-in for WeChat's verify_signature service: it accepts a signature that is the SHA-256 of
// the JSON it signs (a rule of this test), for the openid it expects.
const standIn = Fastify();
const seen: Record<string, unknown>[] = [];
standIn.post('/cgi-bin/soter/verify_signature', async (req) => {
  const body = req.body as { openid: string; json_string: string; json_signature: string };
  seen.push({ ...(req.query as object), ...body });
  const expected = createHash('sha256').update(body.json_string).digest('base64');
  return { errcode: 0, errmsg: 'ok', is_ok: body.openid === 'openid-1' && body.json_signature === expected };
});

const soterLike = (tamper = false): BiometricProvider => ({
  scheme: 'soter',
  available: async () => ['fingerPrint'],
  authenticate: async (challenge, mode) => {
    const resultJSON = JSON.stringify({ raw: challenge, challenge, fid: '101' });
    const sig = createHash('sha256').update(tamper ? resultJSON + ' ' : resultJSON).digest('hex');
    return { mode, resultJSON, signature: sig };
  },
});

let platform: SandboxPlatform;
beforeAll(async () => {
  const url = await standIn.listen({ port: 0, host: '127.0.0.1' });
  platform = await startSandboxPlatform({
    soter: new WeChatSoterVerifier({ endpoint: `${url}/cgi-bin/soter/verify_signature`, accessToken: async () => 'token-1', openidFor: async () => 'openid-1' }),
  });
});
afterAll(async () => {
  await platform.close();
  await standIn.close();
});

describe('SOTER biometrics', () => {
  it('asks the verification service and pays when it says the signature holds', async () => {
    const bio = soterLike();
    const t = await terminal(platform, { biometric: bio });
    const { sessionId, prompt } = await toPrompt(t, '4242424242424242');
    expect(prompt.methods).toContain('biometric');
    const assertion = await bio.authenticate(prompt.challenge, 'fingerPrint');
    const r = await t.client.authenticate(sessionId, { challenge: prompt.challenge, factors: [{ method: 'biometric', ...assertion }] }, 'soter-key-01');
    expect(r.state).toBe('succeeded');
    expect(seen.at(-1)).toMatchObject({ access_token: 'token-1', openid: 'openid-1', json_string: assertion.resultJSON });
  });

  it('counts a signature the service rejects as a failed attempt', async () => {
    const bio = soterLike(true);
    const t = await terminal(platform, { biometric: bio });
    const { sessionId, prompt } = await toPrompt(t, '4242424242424242');
    const assertion = await bio.authenticate(prompt.challenge, 'fingerPrint');
    await expect(t.client.authenticate(sessionId, { challenge: prompt.challenge, factors: [{ method: 'biometric', ...assertion }] }, 'soter-key-02')).rejects.toMatchObject({ code: 'auth_failed' });
  });
});

describe('SOTER without a verifier', () => {
  it('is not offered, since the platform could not check it', async () => {
    const plain = await startSandboxPlatform();
    try {
      const t = await terminal(plain, { biometric: soterLike() });
      const { prompt } = await toPrompt(t, '4242424242424242');
      expect(prompt.methods).toEqual(['password', 'cvv']);
    } finally {
      await plain.close();
    }
  });
});
