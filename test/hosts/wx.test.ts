import { PlatformClient } from '../../packages/sdk/src/core/client';
import { createWxHost, type WxApi } from '../../packages/sdk/src/hosts/wx';

function fakeWx(overrides: Partial<Record<keyof WxApi, unknown>> = {}): WxApi {
  const store = new Map<string, unknown>();
  return {
    request: (o: any) =>
      o.success({
        statusCode: 200,
        header: { 'X-CardPay-Timestamp': '1' },
        data: new TextEncoder().encode('{"a":1}').buffer,
      }),
    scanCode: (o: any) => o.success({ result: '4242424242424242', scanType: 'EAN_13' }),
    getStorage: (o: any) =>
      store.has(o.key)
        ? o.success({ data: store.get(o.key) })
        : o.fail({ errMsg: 'getStorage:fail data not found' }),
    setStorage: (o: any) => (store.set(o.key, o.data), o.success({})),
    removeStorage: (o: any) => (store.delete(o.key), o.success({})),
    ...overrides,
  } as unknown as WxApi;
}

describe('the wx host', () => {
  it('returns raw body bytes and lower-cased headers', async () => {
    const res = await createWxHost(fakeWx()).request({
      method: 'GET',
      url: 'https://x',
      headers: {},
      timeoutMs: 1000,
    });
    expect(res.headers['x-cardpay-timestamp']).toBe('1');
    expect(Buffer.from(res.body).toString()).toBe('{"a":1}');
  });

  it('reports a timeout as a timeout', async () => {
    const wx = fakeWx({ request: (o: any) => o.fail({ errMsg: 'request:fail timeout' }) });
    await expect(
      createWxHost(wx).request({ method: 'GET', url: 'https://x', headers: {}, timeoutMs: 1 }),
    ).rejects.toMatchObject({ kind: 'timeout' });
  });

  it('maps scanner results and tells a cancel from a refused camera', async () => {
    expect(await createWxHost(fakeWx()).scanCode({ scanType: ['barCode'] })).toEqual({
      ok: true,
      result: '4242424242424242',
      scanType: 'barCode',
    });
    const cancel = fakeWx({ scanCode: (o: any) => o.fail({ errMsg: 'scanCode:fail cancel' }) });
    expect(await createWxHost(cancel).scanCode({ scanType: ['qrCode'] })).toMatchObject({
      ok: false,
      reason: 'cancelled',
    });
    const denied = fakeWx({ scanCode: (o: any) => o.fail({ errMsg: 'scanCode:fail auth deny' }) });
    expect(await createWxHost(denied).scanCode({ scanType: ['qrCode'] })).toMatchObject({
      ok: false,
      reason: 'denied',
    });
  });

  it('keeps strings in plugin storage and reads a missing key as undefined', async () => {
    const host = createWxHost(fakeWx());
    expect(await host.storage.get('k')).toBeUndefined();
    await host.storage.set('k', 'v');
    expect(await host.storage.get('k')).toBe('v');
    await host.storage.remove('k');
    expect(await host.storage.get('k')).toBeUndefined();
  });

  it('has no random source of its own, as a plugin has none, but uses one the host lends', async () => {
    expect(createWxHost(fakeWx()).randomBytes).toBeUndefined();
    const lentHost = createWxHost(fakeWx(), {
      bridge: {
        getRandomValues: (o) => o.success!({ randomValues: new Uint8Array(4).fill(7).buffer }),
      },
    });
    expect(Array.from(await lentHost.randomBytes!(4))).toEqual([7, 7, 7, 7]);
  });

  it('turns WeChat’s “url not in domain list” into a configuration error a merchant can act on', async () => {
    const host = createWxHost(
      fakeWx({ request: (o: any) => o.fail({ errMsg: 'request:fail url not in domain list' }) }),
    );
    const client = new PlatformClient({ baseUrl: 'https://pay.example.com', host });
    await expect(
      client.register({
        password: { salt: '00'.repeat(16), iterations: 10000, key: '00'.repeat(32) },
      }),
    ).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/domain list/),
    });
  });

  it('asks which SOTER modes the device supports before asking what is enrolled', async () => {
    const asked: string[] = [];
    const host = createWxHost(fakeWx(), {
      bridge: {
        checkIsSupportSoterAuthentication: (o) => o.success!({ supportMode: ['facial'] }),
        checkIsSoterEnrolledInDevice: (o) => {
          asked.push(o.checkAuthMode);
          o.success!({ isEnrolled: true });
        },
        startSoterAuthentication: () => undefined,
      },
    });
    expect(await host.biometric!.available()).toEqual(['facial']);
    expect(asked).toEqual(['facial']);
  });

  it('offers SOTER only when the host lends it, and sends its signature as hex', async () => {
    expect(createWxHost(fakeWx()).biometric).toBeUndefined();
    const host = createWxHost(fakeWx(), {
      bridge: {
        checkIsSoterEnrolledInDevice: (o) =>
          o.success!({ isEnrolled: o.checkAuthMode === 'fingerPrint' }),
        startSoterAuthentication: (o) =>
          o.success!({
            resultJSON: `{"raw":"${o.challenge}"}`,
            resultJSONSignature: Buffer.from([1, 2, 255]).toString('base64'),
          }),
      },
    });
    expect(await host.biometric!.available()).toEqual(['fingerPrint']);
    expect(await host.biometric!.authenticate('ab'.repeat(32), 'fingerPrint')).toMatchObject({
      signature: '0102ff',
      mode: 'fingerPrint',
    });
  });

  it('turns a cancelled SOTER prompt into biometric_cancelled', async () => {
    const host = createWxHost(fakeWx(), {
      bridge: {
        checkIsSoterEnrolledInDevice: (o) => o.success!({ isEnrolled: true }),
        startSoterAuthentication: (o) =>
          o.fail!({ errCode: 90008, errMsg: 'startSoterAuthentication:fail cancel' }),
      },
    });
    await expect(host.biometric!.authenticate('ab', 'facial')).rejects.toMatchObject({
      code: 'biometric_cancelled',
    });
  });
});
