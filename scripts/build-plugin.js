// Builds the WeChat plugin (dist/plugin) and the demo host (dist/demo) for DevTools: esbuild for
// the TypeScript (browser platform, CommonJS, es2017, minified), WXML, WXSS and JSON minified.
// The SDK is bundled once into lib/sdk.js; every component and the main module require it.
const { buildSync } = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');

const BUDGET = 84 * 1024;

function walk(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

function minifyWxml(text) {
  return text
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/>\s+</g, '><')
    .replace(/\s{2,}/g, ' ')
    .trim();
}

function minifyWxss(text) {
  return (
    text
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\s+/g, ' ')
      .replace(/\s*([{}:;,>])\s*/g, '$1')
      .replace(/;}/g, '}')
      // #ffffff is #fff, 0.25s is .25s: the same values, shorter.
      .replace(/#([0-9a-fA-F])\1([0-9a-fA-F])\2([0-9a-fA-F])\3\b/g, '#$1$2$3')
      .replace(/([\s:,(])0\.(\d)/g, '$1.$2')
      .trim()
  );
}

// Imports of the shared SDK stay requires of the built lib/sdk.js (the mini-program runtime adds
// the .js); everything else is bundled in.
const SHARED = ['./lib/sdk', '../../lib/sdk'];

/**
 * The platform the demo shop talks to: the local reference platform by default; for a build that
 * WeChat's reviewers run on their phones, an HTTPS sandbox on the plugin's registered request
 * domain (`CARDPAY_DEMO_PLATFORM_URL=https://sandbox.pay.example.com npm run build`).
 */
function demoPlatformUrl() {
  const url = process.env.CARDPAY_DEMO_PLATFORM_URL || 'http://127.0.0.1:8787';
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  const loopback = parsed && ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
  if (!parsed || !(parsed.protocol === 'https:' || (parsed.protocol === 'http:' && loopback))) {
    console.error(
      `CARDPAY_DEMO_PLATFORM_URL must be an https:// URL (plain http only on loopback), got ${JSON.stringify(url)}`,
    );
    process.exit(2);
  }
  return url.replace(/\/+$/, '');
}

// Private members end in `_` (the SDK's convention for that), so they can be renamed short: they
// never cross a file boundary, and nothing public or on the wire ends in `_`.
const PRIVATE = /[^_]_$/;

// The plugin's main module (index.ts) and lib/sdk.ts export, and are CommonJS. Every other entry
// (component, page, app) registers itself with Component()/Page()/App() and exports nothing, so
// it is built as an IIFE, without the CommonJS export wrapper (about 370 bytes a file); except an
// entry that takes the shared bundle with `import x = require()` and has no ES import or export:
// as CommonJS it keeps that require as it is, where an IIFE would add esbuild's require shim
// (about 290 bytes).
const EXPORTING = ['index.ts', path.join('lib', 'sdk.ts')];
const PLAIN_REQUIRE = /^import \w+ = require\(/m;

function bundle(entry, outfile, { shared, exporting }) {
  buildSync({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    platform: 'browser',
    format: exporting || PLAIN_REQUIRE.test(fs.readFileSync(entry, 'utf8')) ? 'cjs' : 'iife',
    target: 'es2017',
    charset: 'utf8',
    legalComments: 'none',
    logLevel: 'warning',
    external: shared ? SHARED : [],
    mangleProps: PRIVATE,
    define: { CARDPAY_DEMO_PLATFORM_URL: JSON.stringify(demoPlatformUrl()) },
  });
}

/** Copies a mini-program folder: .ts bundled, .wxml/.wxss/.json minified, anything else copied. */
function buildTree(srcRoot, outRoot, skip = () => false) {
  fs.rmSync(outRoot, { recursive: true, force: true });
  for (const file of walk(srcRoot)) {
    const rel = path.relative(srcRoot, file);
    if (skip(rel) || rel.endsWith('.md')) continue;
    const out = path.join(outRoot, rel);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    if (rel.endsWith('.ts'))
      bundle(file, out.replace(/\.ts$/, '.js'), {
        shared: rel !== path.join('lib', 'sdk.ts'),
        exporting: EXPORTING.includes(rel),
      });
    else if (rel.endsWith('.wxml'))
      fs.writeFileSync(out, minifyWxml(fs.readFileSync(file, 'utf8')));
    else if (rel.endsWith('.wxss'))
      fs.writeFileSync(out, minifyWxss(fs.readFileSync(file, 'utf8')));
    else if (rel.endsWith('.json'))
      fs.writeFileSync(out, JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8'))));
    else fs.copyFileSync(file, out);
  }
}

function buildPlugin(root) {
  const src = path.join(root, 'plugin');
  const out = path.join(root, 'dist/plugin');
  // Under lib/ only sdk.ts is an entry point; the other modules are bundled into it.
  buildTree(
    src,
    out,
    (rel) => rel.startsWith(`lib${path.sep}`) && rel !== path.join('lib', 'sdk.ts'),
  );
  const files = walk(out);
  const size = files.reduce((n, f) => n + fs.statSync(f).size, 0);
  buildTree(path.join(root, 'demo'), path.join(root, 'dist/demo'));
  const line = `plugin: ${files.length} files, ${(size / 1024).toFixed(1)} KB (budget ${BUDGET / 1024} KB)`;
  console.log(line);
  return { size, files: files.map((f) => path.relative(out, f)), budget: BUDGET };
}

module.exports = { buildPlugin, BUDGET, demoPlatformUrl };
