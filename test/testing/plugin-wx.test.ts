import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pluginSupport } from '../../packages/testing/src/plugin-apis';
import { installWx } from '../../packages/testing/src/simulate';

describe('the kit’s wx, as a plugin sees it', () => {
  it('reads WeChat’s plugin support from the installed typings', () => {
    const support = pluginSupport();
    expect(support.get('request')).toEqual({ supported: true, since: '1.9.6' });
    expect(support.get('scanCode')?.supported).toBe(true);
    for (const absent of [
      'getRandomValues',
      'getUserCryptoManager',
      'startSoterAuthentication',
      'requestPayment',
    ])
      expect([absent, support.get(absent)]).toEqual([absent, { supported: false }]);
  });

  it('hides from plugin code what WeChat does not offer plugins, and keeps it for the host', () => {
    const root = mkdtempSync(join(tmpdir(), 'cardpay-plugin-'));
    const probe = join(root, 'probe.js');
    writeFileSync(
      probe,
      'module.exports = () => ({ random: typeof wx.getRandomValues, has: "getRandomValues" in wx, request: typeof wx.request, soter: typeof wx.startSoterAuthentication });',
    );
    installWx({ pluginRoot: root });
    const seen = (require(probe) as () => Record<string, unknown>)();
    expect(seen).toEqual({
      random: 'undefined',
      has: false,
      request: 'function',
      soter: 'undefined',
    });
    // The host's own code (this test) keeps the whole wx.
    const hostWx = (globalThis as unknown as { wx: Record<string, unknown> }).wx;
    expect(typeof hostWx.getRandomValues).toBe('function');
  });
});
