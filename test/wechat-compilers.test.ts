import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// WeChat's own compilers (wcc for WXML, wcsc for WXSS, Linux builds in the npm package
// miniprogram-compiler): what they refuse, DevTools and WeChat's upload refuse. miniprogram-simulate
// does not use them, so a template it renders can still be one WeChat will not take. The builds
// compiled here are the ones jest's global setup made.

const root = join(__dirname, '..');
const compiler = require('miniprogram-compiler') as {
  wxmlToJs(root: string): string;
  wxssToJs(root: string): string;
};

beforeAll(() => {
  // The package ships wcsc without its run bit.
  const bin = join(
    dirname(createRequire(__filename).resolve('miniprogram-compiler')),
    'bin',
    'linux',
  );
  for (const tool of ['wcc', 'wcsc']) chmodSync(join(bin, tool), 0o755);
});

describe('WeChat’s compilers', () => {
  const builds = ['dist/plugin', 'dist/demo', 'demo-taro/dist'].filter((b) =>
    existsSync(join(root, b)),
  );

  it.each(builds)('accept every WXML of %s', (build) => {
    expect(compiler.wxmlToJs(join(root, build))).toContain('$gwx');
  });

  it.each(builds)('accept every WXSS of %s', (build) => {
    expect(() => compiler.wxssToJs(join(root, build))).not.toThrow();
  });

  it('refuse what WeChat would refuse, so the checks above can fail', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardpay-wcc-'));
    try {
      writeFileSync(join(dir, 'index.wxml'), '<view>\n  <text>unclosed\n</view>\n');
      expect(() => compiler.wxmlToJs(dir)).toThrow(/index\.wxml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
