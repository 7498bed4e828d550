#!/usr/bin/env node
// `npm run screenshots`: renders each checkout step from the real components (HTML with their
// styles, under miniprogram-simulate) and shoots it with headless Chromium, light and dark.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(
  (p) => fs.existsSync(p),
);
if (!chromium) {
  console.error('screenshots: headless Chromium is not installed.');
  console.error('  On Debian: apt-get update && apt-get install -y chromium fonts-noto-cjk');
  process.exit(1);
}
// Without a font that has Chinese, Chromium draws every character of the zh_CN screens as a box:
// pictures that look like a broken UI. Refuse rather than overwrite the good ones.
const chinese = spawnSync('fc-list', [':lang=zh', 'family'], { encoding: 'utf8' });
if (chinese.status === 0 && chinese.stdout.trim() === '') {
  console.error('screenshots: no font with Chinese characters is installed.');
  console.error('  On Debian: apt-get install -y fonts-noto-cjk');
  process.exit(1);
}

const jest = spawnSync(
  process.execPath,
  [require.resolve('jest/bin/jest'), '-c', 'jest.screenshots.config.js'],
  { cwd: root, stdio: 'inherit' },
);
if (jest.status !== 0) process.exit(jest.status ?? 1);

const html = path.join(root, 'screenshots/html');
const out = path.join(root, 'screenshots');
for (const file of fs
  .readdirSync(html)
  .filter((f) => f.endsWith('.html'))
  .sort()) {
  for (const theme of ['light', 'dark']) {
    const png = path.join(out, `${file.replace(/\.html$/, '')}-${theme}.png`);
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      `--user-data-dir=${fs.mkdtempSync('/tmp/cardpay-chromium-')}`,
      '--window-size=750,1200',
      `--screenshot=${png}`,
      ...(theme === 'dark'
        ? ['--force-dark-mode', '--blink-settings=preferredColorScheme=0']
        : ['--blink-settings=preferredColorScheme=1']),
      `file://${path.join(html, file)}`,
    ];
    const r = spawnSync(chromium, args, { encoding: 'utf8', timeout: 60000 });
    if (r.status !== 0 || !fs.existsSync(png)) {
      console.error(
        `screenshots: Chromium failed on ${file} (${theme}): ${(r.stderr || '').split('\n').slice(-3).join(' ')}`,
      );
      process.exit(1);
    }
    console.log(`screenshots/${path.basename(png)}`);
  }
}

// The merchant dashboard's pages, light and dark, desktop and phone (playwright-core drives the
// same Chromium).
const dashboard = spawnSync(
  process.execPath,
  [path.join(__dirname, 'run-ts.js'), path.join(__dirname, 'screenshots/dashboard.ts')],
  { cwd: root, stdio: 'inherit' },
);
if (dashboard.status !== 0) process.exit(dashboard.status ?? 1);

// The plugin's documentation page for WeChat (doc/) shows two of these screens: made from the
// same shots, so that it never shows an older sheet than the plugin has.
for (const [shot, page] of [
  ['1-entry-light.png', 'entry.png'],
  ['5-password-light.png', 'password.png'],
  ['4-security-code-light.png', 'security-code.png'],
  ['8-reset-light.png', 'reset.png'],
]) {
  fs.copyFileSync(path.join(out, shot), path.join(root, 'doc/images', page));
  console.log(`doc/images/${page}`);
}
