/**
 * @jest-environment jsdom
 */
// The Taro demo shop's cart page, built by Taro's CLI (npm run build:taro), as a shopper sees it.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSandboxPlatform, type SpawnedPlatform } from '../../packages/testing/src/platform';
import {
  installWx,
  loadWithPlugin,
  mount,
  shimPluginGlobals,
  text,
  waitFor,
  waitForScreen,
} from '../../packages/testing/src/simulate';
import { OUT, snap } from './snap';

const taro = join(__dirname, '../../demo-taro/dist');
installWx();
let platform: SpawnedPlatform;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  shimPluginGlobals();
  platform = await spawnSandboxPlatform();
});
afterAll(() => platform.close());

(existsSync(join(taro, 'app.js')) ? it : it.skip)('renders the Taro cart page', async () => {
  require(join(taro, 'app.js'));
  requirePlugin('cardpay').configure({ platformUrl: platform.url, merchantId: 'mch_sandbox' });
  const page = mount(loadWithPlugin(join(taro, 'pages/cart/index')));
  await waitFor(() => text(page, 'demo-total') !== '', 'the cart');
  await waitForScreen(page, 'entry');
  await new Promise((r) => setTimeout(r, 300));
  snap(page, '10-taro-cart');
}, 60000);
