#!/usr/bin/env node
// Bundles the SDK core (packages/sdk/src/core) for the mini-program (esbuild, browser, minified) and reports its size, then
// times PBKDF2 (10,000) + the password proof in that bundle against node:crypto, in one run.
const { buildSync } = require('esbuild');
const crypto = require('node:crypto');
const { gzipSync } = require('node:zlib');
const path = require('node:path');

/** Builds the core bundle and times it; returns the figures (and prints them through `log`). */
function benchCore(log = console.log) {
  const out = buildSync({
    entryPoints: [path.join(__dirname, '../packages/sdk/src/core/index.ts')],
    bundle: true,
    minify: true,
    platform: 'browser',
    format: 'cjs',
    target: 'es2017',
    write: false,
  });
  const code = out.outputFiles[0].text;
  log(
    `SDK core bundle: ${(code.length / 1024).toFixed(1)} KB minified, ${(gzipSync(code).length / 1024).toFixed(1)} KB gzip`,
  );
  if (/require\(["'](crypto|fs|path)/.test(code))
    throw new Error('the core bundle requires a Node built-in');

  const mod = { exports: {} };
  new Function('module', 'exports', 'require', code)(mod, mod.exports, () => {
    throw new Error('no require in the bundle');
  });
  const sdk = mod.exports;
  const salt = crypto.randomBytes(16);
  const input = {
    sessionId: 'ses_1',
    challenge: 'ab'.repeat(32),
    orderId: 'ord_1',
    amount: 1999,
    currency: 'CNY',
  };
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  function time(fn, runs = 21) {
    const xs = [];
    for (let i = 0; i < runs; i++) {
      const t = process.hrtime.bigint();
      fn();
      xs.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return median(xs);
  }
  const ours = time(() => sdk.passwordProof(sdk.derivePinKey('204816', salt, 10000), input));
  const node = time(() => {
    const k = crypto.pbkdf2Sync('204816', salt, 10000, 32, 'sha256');
    crypto.createHmac('sha256', k).update(sdk.authMessage(input)).digest('hex');
  });
  log(
    `PBKDF2(10,000) + proof, median of 21: bundled SDK ${ours.toFixed(1)} ms, node:crypto ${node.toFixed(1)} ms, ratio ${(ours / node).toFixed(2)}x (budget 30 ms)`,
  );
  return {
    bundleBytes: code.length,
    gzipBytes: gzipSync(code).length,
    proofMs: ours,
    nodeProofMs: node,
  };
}

module.exports = { benchCore };
if (require.main === module) benchCore();
