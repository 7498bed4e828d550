import { PlatformClient, normaliseBaseUrl } from '../../packages/sdk/src/core/client';
import type { HostResponse } from '../../packages/sdk/src/core/host';
import { createNodeHost } from '../../packages/sdk/src/hosts/node';
import { FakePlatform } from '../support/fake-platform';

async function registered(platform = new FakePlatform()) {
  const host = { ...createNodeHost({ now: platform.now }), request: platform.request };
  const client = new PlatformClient({
    baseUrl: platform.baseUrl,
    host,
    sleep: async () => undefined,
  });
  const r = await client.register({
    password: { salt: '00'.repeat(16), iterations: 10000, key: '11'.repeat(32) },
  });
  client.identity = r;
  return { client, host, platform };
}

describe('PlatformClient', () => {
  it('rejects an answer without a signature as unverified', async () => {
    const { client, host } = await registered();
    const real = host.request;
    host.request = async (req) => {
      const res = await real(req);
      return { ...res, headers: { 'content-type': 'application/json' } };
    };
    await expect(
      client.createSession({ merchantId: 'mch_sandbox' }, 'key_00000001'),
    ).rejects.toMatchObject({ code: 'response_unverified' });
  });

  it('rejects a replayed answer signed for another request', async () => {
    const { client, host } = await registered();
    let first: HostResponse | undefined;
    const real = host.request;
    host.request = async (req) => (first ??= await real(req));
    await client.createSession({ merchantId: 'mch_sandbox' }, 'key_00000001');
    await expect(
      client.createSession({ merchantId: 'mch_sandbox' }, 'key_00000002'),
    ).rejects.toMatchObject({ code: 'response_unverified' });
  });

  it('reports an unknown terminal even though that answer cannot be signed', async () => {
    const { client } = await registered();
    client.identity = { terminalId: 'trm_nobody', terminalSecret: '22'.repeat(32) };
    await expect(client.getSession('ses_1')).rejects.toMatchObject({ code: 'terminal_unknown' });
  });

  it('gives up after three transmissions and says the network failed', async () => {
    const { client, host } = await registered();
    let calls = 0;
    host.request = async () => {
      calls++;
      throw Object.assign(new Error('down'), { kind: 'network' });
    };
    await expect(client.getSession('ses_1')).rejects.toMatchObject({
      code: 'network_error',
      retryable: true,
    });
    expect(calls).toBe(3);
  });

  it('does not retry a client error', async () => {
    const { client, platform } = await registered();
    const before = platform.requests.length;
    await expect(client.getSession('ses_missing')).rejects.toMatchObject({
      code: 'session_not_found',
      status: 404,
    });
    expect(platform.requests.length - before).toBe(1);
  });

  it('refuses a session id that is not one before sending anything', async () => {
    const { client } = await registered();
    await expect(client.getSession('../terminals')).rejects.toMatchObject({
      code: 'invalid_argument',
    });
  });

  it('refuses to sign without an identity', async () => {
    const { client } = await registered();
    client.identity = undefined;
    await expect(client.getSession('ses_1')).rejects.toMatchObject({ code: 'not_enrolled' });
  });
});

describe('normaliseBaseUrl', () => {
  it('accepts https and loopback http, and drops a trailing slash', () => {
    expect(normaliseBaseUrl('https://pay.example.com/')).toBe('https://pay.example.com');
    expect(normaliseBaseUrl('http://127.0.0.1:8787')).toBe('http://127.0.0.1:8787');
    expect(normaliseBaseUrl('http://localhost:8787/')).toBe('http://localhost:8787');
  });
  it('refuses plain http to another host, and anything that is not a URL', () => {
    expect(() => normaliseBaseUrl('http://pay.example.com')).toThrow(/https/);
    expect(() => normaliseBaseUrl('pay.example.com')).toThrow(/absolute/);
  });
});
