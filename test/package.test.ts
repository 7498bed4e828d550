import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { installInEmptyProject, packWorkspace, type SdkInstall } from '../scripts/sdk-install';

// What merchants and operators install: each of the three packages packed with `npm pack`, put
// into a project outside this repository as its users would, and used through its entry points
// only, with what the README and the guides show pasted as written.

const root = join(__dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'cardpay-pack-'));
const packed: Record<string, { file: string; files: string[] }> = {};

beforeAll(() => {
  // The packages' JavaScript and the plugin were built by jest's global setup (other tests load
  // them: rebuilding here would pull files from under them): only the declarations are added.
  (
    require('../scripts/build-package.js') as {
      buildForPack(names?: string[], options?: { plugin?: boolean }): void;
    }
  ).buildForPack(undefined, { plugin: false });
  for (const name of ['sdk', 'platform', 'testing']) packed[name] = packWorkspace(root, name, out);
}, 120000);

/** Runs a script in a project and resolves with its exit code and output. */
function runIn(cwd: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env } });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c));
    child.stderr.on('data', (c: Buffer) => (text += c));
    child.on('exit', (code) => resolve({ code, out: text }));
  });
}

describe('cardpay, the SDK a merchant installs', () => {
  const shop = join(out, 'shop');
  let install: SdkInstall;

  beforeAll(() => {
    install = installInEmptyProject(packed.sdk.file, shop);
    process.stderr.write(
      `npm install cardpay: ${install.ms} ms, ${install.packages.length} packages (${install.packages.join(', ')})\n`,
    );
  }, 120000);

  it('installs in seconds with no compiler: no install script, at most 10 packages', () => {
    expect(install.withInstallScript).toEqual([]);
    expect(install.packages.length).toBeLessThanOrEqual(10);
    expect(install.packages).not.toContain('better-sqlite3');
    expect(install.packages).not.toContain('fastify');
    expect(install.ms).toBeLessThan(15000);
  });

  it('ships compiled JavaScript and declarations only', () => {
    const files = packed.sdk.files;
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    for (const entry of ['dist/core/index', 'dist/node', 'dist/hosts/wx', 'dist/plugin'])
      expect(files).toEqual(expect.arrayContaining([`${entry}.js`, `${entry}.d.ts`]));
  });

  it('resolves its named entry points from outside the repository', async () => {
    const probe = await runIn(shop, [
      '-e',
      "for (const e of ['cardpay', 'cardpay/node', 'cardpay/wx', 'cardpay/taro', 'cardpay/plugin']) require(e); console.log(typeof require('cardpay').createCheckout, typeof require('cardpay/node').verifyWebhook)",
    ]);
    expect(probe.out.trim()).toBe('function function');
  });

  it('runs the README’s “Using the SDK” script as pasted, paying a merchant order', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Using the SDK'));
    writeFileSync(join(shop, 'pay.js'), /```js\n([\s\S]*?)```/.exec(section)![1]);
    const { spawnSandboxPlatform } = require('../packages/testing/src/platform');
    const platform = await spawnSandboxPlatform();
    try {
      const run = await runIn(shop, ['pay.js'], {
        CARDPAY_URL: platform.url,
        CARDPAY_SANDBOX_MERCHANT_KEY: platform.merchantKey,
      });
      expect(run.out).toMatch(/^succeeded \{/m);
      expect(run.out).toMatch(/paymentId: 'pay_/);
      expect(run.out).toMatch(/→ awaiting_confirmation/);
      expect(run.code).toBe(0);
      // Without the merchant key, the script says the platform refused the order.
      const refused = await runIn(shop, ['pay.js'], {
        CARDPAY_URL: platform.url,
        CARDPAY_SANDBOX_MERCHANT_KEY: '',
      });
      expect(refused.code).not.toBe(0);
      expect(refused.out).toMatch(/making the order: 401/);
    } finally {
      await platform.close();
    }
  }, 60000);
});

describe('cardpay-platform and cardpay-testing, as a merchant’s dev dependencies', () => {
  // Unpacked as npm would install them; their own dependencies are this repository's, linked,
  // so that SQLite is not compiled again here.
  const shop = join(out, 'kit-shop');
  beforeAll(() => {
    const modules = join(shop, 'node_modules');
    const packages = {
      cardpay: 'sdk',
      'cardpay-platform': 'platform',
      'cardpay-testing': 'testing',
    };
    for (const [name, dir] of Object.entries(packages)) {
      mkdirSync(join(modules, name), { recursive: true });
      execFileSync('tar', [
        '-xzf',
        packed[dir].file,
        '-C',
        join(modules, name),
        '--strip-components=1',
      ]);
    }
    for (const name of readdirSync(join(root, 'node_modules'))) {
      if (name === '.bin' || name.startsWith('.') || name in packages) continue;
      symlinkSync(join(root, 'node_modules', name), join(modules, name));
    }
    writeFileSync(join(shop, 'package.json'), JSON.stringify({ name: 'shop', private: true }));
  });

  it('ships the platform without the plugin’s UI, and the kit with the built plugin', () => {
    const platform = packed.platform.files;
    expect(platform).toEqual(
      expect.arrayContaining(['bin/cardpay-platform.js', 'dist/cli.js', 'dist/index.d.ts']),
    );
    expect(platform.filter((f) => /plugin\/components|\.wxml$/.test(f))).toEqual([]);
    expect(packed.testing.files).toEqual(
      expect.arrayContaining(['plugin/plugin.json', 'dist/index.js', 'dist/index.d.ts']),
    );
  });

  it('starts the platform from its command, with its sandbox', async () => {
    const bin = join(shop, 'node_modules/cardpay-platform/bin/cardpay-platform.js');
    const child = spawn(
      process.execPath,
      [bin, '--port', '0', '--sandbox-payments-port', '0', '--db', ':memory:'],
      { cwd: shop, env: { ...process.env, CARDPAY_MASTER_KEY: '7e'.repeat(32) } },
    );
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c));
    try {
      for (let i = 0; i < 200 && !/sandbox payment platform: /.test(text); i++)
        await new Promise((r) => setTimeout(r, 50));
      const url = /listening on (\S+)/.exec(text)![1];
      expect(await (await fetch(`${url}/v1/health`)).json()).toEqual({ status: 'ok' });
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('runs the merchant guide’s page and test, as the guide shows them', () => {
    // Every file the guide's section 4 names, written as it is shown there.
    const guide = readFileSync(join(root, 'docs/merchant-guide.md'), 'utf8');
    const section = guide.slice(
      guide.indexOf('## 4.'),
      guide.indexOf('\n## ', guide.indexOf('## 4.') + 1),
    );
    const files = [...section.matchAll(/^`([^`\s]+)`:\n\n```\w*\n([\s\S]*?)```/gm)];
    expect(files.map((f) => f[1]).sort()).toEqual([
      'jest.config.js',
      'pages/pay/index.js',
      'pages/pay/index.json',
      'pages/pay/index.wxml',
      'pages/pay/index.wxss',
      'pay.test.js',
    ]);
    for (const [, path, content] of files) {
      mkdirSync(dirname(join(shop, path)), { recursive: true });
      writeFileSync(join(shop, path), content);
    }
    const run = spawnSync(
      process.execPath,
      [join(root, 'node_modules/jest/bin/jest.js'), '--ci', '--colors=false'],
      { cwd: shop, encoding: 'utf8', timeout: 120000, env: { ...process.env, CI: 'true' } },
    );
    expect(run.stderr).toMatch(/Tests:\s+1 passed, 1 total/);
    expect(run.status).toBe(0);
  });
});
