import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verify } from 'node:crypto';
import { createTaroHost, type TaroApi } from '../../packages/sdk/src/hosts/taro';
import {
  createNodeHost,
  createSandboxBiometric,
  FileStorage,
} from '../../packages/sdk/src/hosts/node';

describe('the Taro host', () => {
  const store = new Map<string, unknown>();
  const taro = {
    request: async (o: any) => ({
      statusCode: 201,
      header: { 'X-A': 'b' },
      data: new TextEncoder().encode(`{"echo":${o.data}}`).buffer,
    }),
    scanCode: async () => ({ result: '4242424242424242', scanType: 'QR_CODE' }),
    getStorage: async (o: any) => {
      if (!store.has(o.key)) throw { errMsg: 'getStorage:fail data not found' };
      return { data: store.get(o.key) };
    },
    setStorage: async (o: any) => void store.set(o.key, o.data),
    removeStorage: async (o: any) => void store.delete(o.key),
  } as unknown as TaroApi;

  it('sends the exact body and returns raw bytes with lower-case headers', async () => {
    const res = await createTaroHost(taro).request({
      method: 'POST',
      url: 'https://x',
      headers: {},
      body: '{"a":1}',
      timeoutMs: 1000,
    });
    expect(res).toMatchObject({ status: 201, headers: { 'x-a': 'b' } });
    expect(Buffer.from(res.body).toString()).toBe('{"echo":{"a":1}}');
  });

  it('maps the scanner and tells a cancel apart', async () => {
    expect(await createTaroHost(taro).scanCode({ scanType: ['qrCode'] })).toEqual({
      ok: true,
      result: '4242424242424242',
      scanType: 'qrCode',
    });
    const cancelling = {
      ...taro,
      scanCode: async () => Promise.reject({ errMsg: 'scanCode:fail cancel' }),
    } as unknown as TaroApi;
    expect(await createTaroHost(cancelling).scanCode({ scanType: ['qrCode'] })).toMatchObject({
      ok: false,
      reason: 'cancelled',
    });
  });

  it('reads a missing key as undefined, and falls back to Web Crypto for randomness', async () => {
    const host = createTaroHost(taro);
    expect(await host.storage.get('nope')).toBeUndefined();
    await host.storage.set('k', 'v');
    expect(await host.storage.get('k')).toBe('v');
    expect((await host.randomBytes!(16)).length).toBe(16);
  });

  it('turns a failed request into a network error', async () => {
    const failing = {
      ...taro,
      request: async () => Promise.reject({ errMsg: 'request:fail timeout' }),
    } as unknown as TaroApi;
    await expect(
      createTaroHost(failing).request({
        method: 'GET',
        url: 'https://x',
        headers: {},
        timeoutMs: 1,
      }),
    ).rejects.toMatchObject({ kind: 'timeout' });
  });
});

describe('the Node host', () => {
  it('times out a request that gets no answer', async () => {
    const server = createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as { port: number };
    try {
      await expect(
        createNodeHost().request({
          method: 'GET',
          url: `http://127.0.0.1:${port}/`,
          headers: {},
          timeoutMs: 100,
        }),
      ).rejects.toMatchObject({ kind: 'timeout' });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('keeps storage in a file across host instances', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cardpay-store-')), 'terminal.json');
    await new FileStorage(path).set('k', 'v');
    expect(await new FileStorage(path).get('k')).toBe('v');
    await new FileStorage(path).remove('k');
    expect(await new FileStorage(path).get('k')).toBeUndefined();
  });

  it('signs the challenge with a P-256 key the platform can verify from its public key', async () => {
    const bio = createSandboxBiometric();
    const a = await bio.authenticate('ab'.repeat(32), 'fingerPrint');
    expect(JSON.parse(a.resultJSON).challenge).toBe('ab'.repeat(32));
    const key = {
      key: Buffer.from(bio.publicKey, 'hex'),
      format: 'der' as const,
      type: 'spki' as const,
    };
    expect(verify('sha256', Buffer.from(a.resultJSON), key, Buffer.from(a.signature, 'hex'))).toBe(
      true,
    );
  });
});
