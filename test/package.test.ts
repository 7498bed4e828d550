import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// What a merchant installs: `npm pack`, unpacked into a project outside this repository, used only
// through the package's entry points, with a stock jest config.

const root = join(__dirname, '..');
let scratch: string;
let files: string[];

beforeAll(() => {
  const out = mkdtempSync(join(tmpdir(), 'cardpay-pack-'));
  // The plugin and server were built by jest's global setup (other tests load them: rebuilding
  // here would pull files from under them), so only dist/lib is made here, and prepack skipped.
  (require('../scripts/build-package.js') as { compileLib(): void }).compileLib();
  const packed = execFileSync(
    'npm',
    ['pack', '--ignore-scripts', '--pack-destination', out, '--json'],
    {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const [info] = JSON.parse(packed.slice(packed.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
  }[];
  files = info.files.map((f) => f.path);

  // A merchant's project: the tarball as node_modules/cardpay, its dependencies beside it.
  scratch = join(out, 'shop');
  const modules = join(scratch, 'node_modules');
  mkdirSync(join(modules, 'cardpay'), { recursive: true });
  execFileSync('tar', [
    '-xzf',
    join(out, info.filename),
    '-C',
    join(modules, 'cardpay'),
    '--strip-components=1',
  ]);
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name === '.bin' || name === 'cardpay' || name.startsWith('.')) continue;
    symlinkSync(join(root, 'node_modules', name), join(modules, name));
  }
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'shop', private: true }));
  writeFileSync(
    join(scratch, 'jest.config.js'),
    "module.exports = { testEnvironment: 'jsdom' };\n",
  );
  const page = join(scratch, 'pages/pay');
  mkdirSync(page, { recursive: true });
  writeFileSync(
    join(page, 'index.json'),
    JSON.stringify({
      component: true,
      usingComponents: { 'cardpay-checkout': 'plugin://cardpay/checkout' },
    }),
  );
  writeFileSync(
    join(page, 'index.wxml'),
    '<cardpay-checkout id="cardpay-checkout" amount="{{1999}}" bind:success="onPaid" />\n<view id="shop-paid">{{paid}}</view>\n',
  );
  writeFileSync(join(page, 'index.wxss'), '');
  writeFileSync(
    join(page, 'index.js'),
    "Component({ data: { paid: '' }, methods: { onPaid(e) { this.setData({ paid: e.detail.payment.paymentId }); } } });\n",
  );
  writeFileSync(
    join(scratch, 'pay.test.js'),
    `const { input, installWx, loadWithPlugin, mount, shimPluginGlobals, spawnSandboxPlatform, tap, text, typeDigits, waitFor, waitForScreen } = require('cardpay/testing');
const wx = installWx();
let platform, pageId;
beforeAll(async () => {
  shimPluginGlobals();
  platform = await spawnSandboxPlatform();
  requirePlugin('cardpay').configure({ platformUrl: platform.url, merchantId: 'mch_sandbox' });
  pageId = loadWithPlugin(require('path').join(__dirname, 'pages/pay/index'));
});
afterAll(() => platform.close());
it('pays with a sandbox card', async () => {
  const page = mount(pageId);
  wx.scanner.push('4242424242424242');
  await waitForScreen(page, 'entry');
  tap(page, 'cardpay-start');
  await waitForScreen(page, 'enrol');
  typeDigits(page, '204816');
  typeDigits(page, '204816');
  await waitForScreen(page, 'confirm');
  tap(page, 'cardpay-confirm');
  await waitForScreen(page, 'auth');
  input(page, 'cardpay-cvv', '123');
  typeDigits(page, '204816');
  await waitFor(() => text(page, 'shop-paid') !== '', 'the payment');
  expect(text(page, 'shop-paid')).toMatch(/^pay_/);
});
`,
  );
}, 120000);

describe('the package a merchant installs', () => {
  it('ships compiled JavaScript and declarations only, never the TypeScript sources', () => {
    expect(files.filter((f) => f.startsWith('src/'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    for (const entry of ['dist/lib/core/index', 'dist/lib/node', 'dist/lib/testing/index'])
      expect(files).toEqual(expect.arrayContaining([`${entry}.js`, `${entry}.d.ts`]));
    expect(files).toEqual(
      expect.arrayContaining([
        'bin/cardpay-platform.js',
        'dist/server/cli.js',
        'dist/plugin/plugin.json',
      ]),
    );
  });

  it('resolves its named entry points from outside the repository', () => {
    const probe = spawnSync(
      process.execPath,
      [
        '-e',
        "for (const e of ['cardpay', 'cardpay/node', 'cardpay/testing', 'cardpay/wx', 'cardpay/server']) require(e); console.log(typeof require('cardpay').createCheckout, typeof require('cardpay/node').createNodeHost)",
      ],
      { cwd: scratch, encoding: 'utf8' },
    );
    expect(probe.stderr).toBe('');
    expect(probe.stdout.trim()).toBe('function function');
  });

  it('runs the README’s “Using the SDK” script as pasted, paying a merchant order', async () => {
    const readme = require('node:fs').readFileSync(join(root, 'README.md'), 'utf8') as string;
    const section = readme.slice(readme.indexOf('## Using the SDK'));
    const script = /```js\n([\s\S]*?)```/.exec(section)![1];
    writeFileSync(join(scratch, 'pay.js'), script);
    const { spawnSandboxPlatform } = require('../packages/testing/src/platform');
    const platform = await spawnSandboxPlatform();
    try {
      const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = require('node:child_process').spawn(process.execPath, ['pay.js'], {
          cwd: scratch,
          env: {
            ...process.env,
            CARDPAY_URL: platform.url,
            CARDPAY_SANDBOX_MERCHANT_KEY: platform.merchantKey,
          },
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c));
        child.stderr.on('data', (c: Buffer) => (out += c));
        child.on('exit', (code: number | null) => resolve({ code, out }));
      });
      expect(run.out).toMatch(/^succeeded \{/m);
      expect(run.out).toMatch(/paymentId: 'pay_/);
      expect(run.out).toMatch(/→ awaiting_confirmation/);
      expect(run.code).toBe(0);
    } finally {
      await platform.close();
    }
  }, 60000);

  it('runs a merchant’s own simulate test of a checkout page with a stock jest config', () => {
    const run = spawnSync(
      process.execPath,
      [join(root, 'node_modules/jest/bin/jest.js'), '--ci', '--colors=false'],
      { cwd: scratch, encoding: 'utf8', timeout: 120000, env: { ...process.env, CI: 'true' } },
    );
    expect(run.stderr).toMatch(/Tests:\s+1 passed, 1 total/);
    expect(run.status).toBe(0);
  });
});
