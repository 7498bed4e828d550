/**
 * @jest-environment jsdom
 */
// The Taro demo shop's cart page (demo-taro, built by Taro's own CLI), tested with the kit.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSandboxPlatform, type SpawnedPlatform } from '../../packages/testing/src/platform';
import {
  installWx,
  loadWithPlugin,
  mount,
  payAsNewShopper,
  shimPluginGlobals,
  text,
  waitFor,
} from '../../packages/testing/src/simulate';

const TARO = join(__dirname, '../../demo-taro');
const BUILT = join(TARO, 'dist');
// demo-taro is a package of its own: installed and built by .ci/run (and by anyone who uses it),
// never by the root `npm install`. Outside CI an unbuilt demo skips these tests, saying so.
const built = existsSync(join(BUILT, 'app.js')) && existsSync(join(TARO, 'node_modules'));
if (!built && process.env.CI === 'true')
  throw new Error('demo-taro is not built: .ci/run builds it (npm run build:taro)');
// Written past jest's console, which does not show what a file whose tests all skip logged.
if (!built)
  process.stderr.write('demo-taro is not built: its tests are skipped (npm run build:taro)\n');
const maybe = built ? describe : describe.skip;

const wx = installWx();
let platform: SpawnedPlatform;
let cartId: string;

maybe('the Taro demo shop', () => {
  beforeAll(async () => {
    shimPluginGlobals();
    platform = await spawnSandboxPlatform();
    require(join(BUILT, 'app.js'));
    requirePlugin('cardpay').configure({ platformUrl: platform.url, merchantId: 'mch_sandbox' });
    cartId = loadWithPlugin(join(BUILT, 'pages/cart/index'));
  });
  afterAll(() => platform?.close());

  it('pays the Taro cart total by card and shows the outcome on the page', async () => {
    const page = mount(cartId);
    await waitFor(() => text(page, 'demo-total') !== '', 'the cart');
    expect(text(page, 'demo-total')).toBe('合计 ¥31.00');
    wx.scanner.push('6222021000000000009');
    expect(await payAsNewShopper(page)).toEqual({ confirmedAmount: '¥31.00' });
    // React state set from the component's `success` event, rendered by Taro into the page.
    await waitFor(() => text(page, 'demo-outcome') !== '', 'the outcome');
    expect(text(page, 'demo-outcome')).toMatch(/^已支付 ¥31\.00（pay_\w+）$/);
    expect(wx.shown).toEqual([{ api: 'showToast', title: '支付成功' }]);
  });

  it('binds the plugin’s events the way Taro compiles onSuccess and onStatechange', () => {
    const base = readFileSync(join(BUILT, 'base.wxml'), 'utf8');
    const element = /<cardpay-checkout [^>]*>/.exec(base)?.[0] ?? '';
    for (const event of ['statechange', 'success', 'fail', 'cancel'])
      expect(element).toContain(`bind${event}="eh"`);
  });

  it('has its TSX checked against the typings: the right use compiles, each wrong one fails', () => {
    const out = execFileSync(process.execPath, [join(TARO, 'test/types.js')], { encoding: 'utf8' });
    expect(out.match(/^ok /gm)).toHaveLength(4);
  });
});
