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
  const jitless = jitlessProofMs(code);
  log(
    `the same under node --jitless (iOS runs JavaScriptCore without JIT), median of 7: ${jitless.toFixed(0)} ms, ${(jitless / ours).toFixed(0)}x the JIT figure (budget 150 ms)`,
  );
  // The cardpay-sm-v1 suite's key (PROTOCOL.md §3.1): PBKDF2-HMAC-SM3 beside PBKDF2-HMAC-SHA256.
  const password = new Uint8Array([50, 48, 52, 56, 49, 54]);
  const smJit = time(() => sdk.pbkdf2Sm3(password, salt, 10000, 32));
  const shaJit = time(() => sdk.derivePinKey('204816', salt, 10000));
  const smNode = time(() => crypto.pbkdf2Sync('204816', salt, 10000, 32, 'sm3'));
  const smJitless = jitlessProofMs(code, 'sm3');
  log(
    `PBKDF2-HMAC-SM3(10,000), median: bundled SDK ${smJit.toFixed(1)} ms (${(smJit / shaJit).toFixed(2)}x SHA-256's ${shaJit.toFixed(1)} ms; node:crypto's SM3 ${smNode.toFixed(1)} ms); under --jitless ${smJitless.toFixed(0)} ms (${(smJitless / jitless).toFixed(2)}x SHA-256's)`,
  );
  return {
    bundleBytes: code.length,
    gzipBytes: gzipSync(code).length,
    proofMs: ours,
    nodeProofMs: node,
    jitlessProofMs: jitless,
    sm3Ms: smJit,
    sha256Ms: shaJit,
    sm3JitlessMs: smJitless,
  };
}

/**
 * PBKDF2(10,000) + proof of the bundle in a `node --jitless` child: the interpreter only, as
 * WeChat's JavaScriptCore runs on iOS. Median of 7 runs.
 */
function jitlessProofMs(code, hash = 'sha256') {
  const { spawnSync } = require('node:child_process');
  const script = `
    const mod = { exports: {} };
    new Function('module', 'exports', 'require', process.env.CARDPAY_BUNDLE)(mod, mod.exports, () => { throw new Error('no require'); });
    const sdk = mod.exports;
    const salt = new Uint8Array(16).fill(7);
    const input = { sessionId: 'ses_1', challenge: 'ab'.repeat(32), orderId: 'ord_1', amount: 1999, currency: 'CNY' };
    const xs = [];
    for (let i = 0; i < 7; i++) {
      const t = process.hrtime.bigint();
      if (process.env.CARDPAY_HASH === 'sm3') sdk.pbkdf2Sm3(new Uint8Array([50, 48, 52, 56, 49, 54]), salt, 10000, 32);
      else sdk.passwordProof(sdk.derivePinKey('204816', salt, 10000), input);
      xs.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    xs.sort((a, b) => a - b);
    console.log(xs[3]);`;
  const run = spawnSync(process.execPath, ['--jitless', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, CARDPAY_BUNDLE: code, CARDPAY_HASH: hash },
  });
  if (run.status !== 0) throw new Error(`the --jitless run failed: ${run.stderr}`);
  return Number(run.stdout.trim());
}

module.exports = { benchCore };
if (require.main === module) benchCore();
