import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as plugin from '../../plugin/index';
import { currentConfig, pluginHost } from '../../plugin/lib/sdk';

// The merchant guide's `app.js` (section 2), run as written against the plugin's own module:
// what `requirePlugin('cardpay')` returns in WeChat. The host's `wx` is WeChat's, stood in for.

it('configures the plugin and lends it the host’s random source and SOTER, as the guide shows', () => {
  const guide = readFileSync(join(__dirname, '../../docs/merchant-guide.md'), 'utf8');
  const section = guide.slice(guide.indexOf('## 2.'), guide.indexOf('\n## 3.'));
  const appJs = /```js\n([\s\S]*?)```/.exec(section)![1];
  const hostWx = {
    getRandomValues: jest.fn(),
    startSoterAuthentication: jest.fn(),
    checkIsSupportSoterAuthentication: jest.fn(),
    checkIsSoterEnrolledInDevice: jest.fn(),
  };
  new Function('requirePlugin', 'wx', appJs)((name: string) => {
    expect(name).toBe('cardpay');
    return plugin;
  }, hostWx);
  expect(currentConfig()).toMatchObject({
    platformUrl: 'https://pay.example.com',
    merchantId: 'mch_shop',
    locale: 'zh_CN',
  });
  // The plugin's host now offers biometrics through what was lent.
  (globalThis as { wx?: unknown }).wx = {};
  expect(pluginHost().biometric).toBeDefined();
  expect(plugin.createCheckout({ amount: 1999 })).toBeDefined();
});
