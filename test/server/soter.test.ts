import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import type { BiometricProvider } from '../../packages/sdk/src/core/host';
import { SANDBOX_SOTER_REFUSED } from '../../packages/platform/src/sandbox/soter';
import { WeChatSoterVerifier } from '../../packages/platform/src/connectors/soter';
import { startSandboxPlatform, type SandboxPlatform } from '../../packages/testing/src/platform';
import { terminal, toPrompt } from '../support/server-harness';

// A stand-in for WeChat's verify_signature service: it accepts a signature that is the SHA-256 of
// the JSON it signs (a rule of this test), for the openid it expects.
const standIn = Fastify();
const seen: Record<string, unknown>[] = [];
standIn.post('/cgi-bin/soter/verify_signature', async (req) => {
  const body = req.body as { openid: string; json_string: string; json_signature: string };
  seen.push({ ...(req.query as object), ...body });
  const expected = createHash('sha256').update(body.json_string).digest('base64');
  return {
    errcode: 0,
    errmsg: 'ok',
    is_ok: body.openid === 'openid-1' && body.json_signature === expected,
  };
});

// SOTER's resultJSON carries the challenge as `raw`, beside the device's TEE details.
const soterLike = (
  options: { tamper?: boolean; raw?: string; signature?: string } = {},
): BiometricProvider => ({
  scheme: 'soter',
  available: async () => ['fingerPrint'],
  authenticate: async (challenge, mode) => {
    const resultJSON = JSON.stringify({
      raw: options.raw ?? challenge,
      fid: '101',
      counter: 7,
      tee_n: 'TEE',
      tee_v: '1.0',
      cpu_id: 'c',
      uid: '10086',
    });
    const sig = createHash('sha256')
      .update(options.tamper ? resultJSON + ' ' : resultJSON)
      .digest('hex');
    return { mode, resultJSON, signature: options.signature ?? sig };
  },
});

async function pay(platform: SandboxPlatform, bio: BiometricProvider, key: string) {
  const t = await terminal(platform, { biometric: bio });
  const { sessionId, prompt } = await toPrompt(t, '4242424242424242');
  expect(prompt.methods).toContain('biometric');
  const assertion = await bio.authenticate(prompt.challenge, 'fingerPrint');
  return {
    assertion,
    result: t.client.authenticate(
      sessionId,
      {
        challenge: prompt.challenge,
        factors: [
          { method: 'biometric', ...assertion },
          { method: 'cvv', value: '123' },
        ],
      },
      key,
    ),
  };
}

let platform: SandboxPlatform;
beforeAll(async () => {
  const url = await standIn.listen({ port: 0, host: '127.0.0.1' });
  platform = await startSandboxPlatform({
    soter: new WeChatSoterVerifier({
      endpoint: `${url}/cgi-bin/soter/verify_signature`,
      accessToken: async () => 'token-1',
      openidFor: async () => 'openid-1',
    }),
  });
});
afterAll(async () => {
  await platform.close();
  await standIn.close();
});

describe('SOTER biometrics', () => {
  it('asks the verification service and pays when it says the signature holds', async () => {
    const { assertion, result } = await pay(platform, soterLike(), 'soter-key-01');
    expect((await result).state).toBe('succeeded');
    expect(seen.at(-1)).toMatchObject({
      access_token: 'token-1',
      openid: 'openid-1',
      json_string: assertion.resultJSON,
    });
  });

  it('counts a signature the service rejects as a failed attempt', async () => {
    const { result } = await pay(platform, soterLike({ tamper: true }), 'soter-key-02');
    await expect(result).rejects.toMatchObject({ code: 'auth_failed' });
  });

  it('refuses a genuine assertion of another challenge without asking the service', async () => {
    const asked = seen.length;
    const { result } = await pay(platform, soterLike({ raw: 'ab'.repeat(32) }), 'soter-key-03');
    await expect(result).rejects.toMatchObject({ code: 'auth_failed' });
    expect(seen).toHaveLength(asked);
  });
});

describe('SOTER in the sandbox', () => {
  let sandbox: SandboxPlatform;
  beforeAll(async () => {
    sandbox = await startSandboxPlatform();
  });
  afterAll(() => sandbox.close());

  it('is offered and passes an assertion of the session challenge, WeChat being out of reach', async () => {
    const { result } = await pay(sandbox, soterLike(), 'soter-key-04');
    expect((await result).state).toBe('succeeded');
  });

  it('refuses the documented all-zero signature and an assertion of another challenge', async () => {
    await expect(
      (await pay(sandbox, soterLike({ signature: SANDBOX_SOTER_REFUSED }), 'soter-key-05')).result,
    ).rejects.toMatchObject({ code: 'auth_failed' });
    await expect(
      (await pay(sandbox, soterLike({ raw: 'cd'.repeat(32) }), 'soter-key-06')).result,
    ).rejects.toMatchObject({ code: 'auth_failed' });
  });
});

describe('SOTER without a verifier', () => {
  it('is not offered in production mode, since the platform could not check it', async () => {
    // Production mode: a payment URL of its own (the sandbox's, borrowed) and no sandbox stand-in.
    const merchants = [
      {
        id: 'mch_sandbox',
        apiKeySha256: createHash('sha256').update('k').digest('hex'),
        openAmounts: true,
      },
    ];
    const plain = await startSandboxPlatform({
      paymentUrl: platform.sandbox!.url,
      configObject: { merchants },
    });
    try {
      expect(plain.sandbox).toBeUndefined();
      const t = await terminal(plain, { biometric: soterLike() });
      const { prompt } = await toPrompt(t, '4242424242424242');
      expect(prompt.methods).toEqual(['password', 'cvv']);
    } finally {
      await plain.close();
    }
  });
});
