import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = join(__dirname, '..');
const walk = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) =>
    statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)],
  );

// The build itself ran once in jest's global setup (the component tests load it concurrently,
// so a second build here would pull files from under them).
describe('the plugin build', () => {
  const out = join(root, 'dist/plugin');

  it('is self-contained: every require stays inside the plugin and names no Node built-in', () => {
    for (const file of walk(out).filter((f) => f.endsWith('.js'))) {
      for (const [, target] of readFileSync(file, 'utf8').matchAll(/require\("([^"]+)"\)/g)) {
        expect(target.startsWith('.')).toBe(true);
        const resolved = resolve(dirname(file), target);
        expect(relative(out, resolved).startsWith('..')).toBe(false);
        expect(existsSync(resolved.endsWith('.js') ? resolved : `${resolved}.js`)).toBe(true);
      }
    }
  });

  it('runs on the oldest engines WeChat supports: ES2017 syntax, no BigInt, no globalThis', () => {
    // iOS 11 and Android WebView 66-era engines: acorn at ecmaVersion 2017 refuses anything newer
    // (optional chaining, ??, object spread, BigInt literals…).
    const { parse } = require('acorn') as typeof import('acorn');
    for (const file of walk(out).filter((f) => f.endsWith('.js'))) {
      const code = readFileSync(file, 'utf8');
      const name = relative(out, file);
      expect([name, /\bBigInt\b/.test(code), /\bglobalThis\b/.test(code)]).toEqual([
        name,
        false,
        false,
      ]);
      expect(() => parse(code, { ecmaVersion: 2017, sourceType: 'script' })).not.toThrow();
    }
  });

  it('stays within its 84 KB budget', () => {
    // 68.1 KB at the time of writing; what makes it up is in docs/measurements.md.
    const size = walk(out).reduce((n, f) => n + statSync(f).size, 0);
    expect(size).toBeLessThanOrEqual(84 * 1024);
  });

  it('declares the public checkout component and the main module that exist in the build', () => {
    const manifest = JSON.parse(readFileSync(join(out, 'plugin.json'), 'utf8'));
    expect(existsSync(join(out, `${manifest.publicComponents.checkout}.js`))).toBe(true);
    expect(existsSync(join(out, `${manifest.publicComponents.checkout}.wxml`))).toBe(true);
    expect(existsSync(join(out, manifest.main))).toBe(true);
  });

  it('isolates every component’s styles, so the host page’s WXSS cannot restyle or hide the sheets', () => {
    const components = walk(join(out, 'components')).filter((f) => f.endsWith('index.json'));
    expect(components.length).toBeGreaterThanOrEqual(4);
    for (const file of components) {
      const name = relative(out, file);
      expect([name, JSON.parse(readFileSync(file, 'utf8')).styleIsolation]).toEqual([
        name,
        'isolated',
      ]);
    }
  });

  it('builds the demo host with the plugin under the alias cardpay', () => {
    const app = JSON.parse(readFileSync(join(root, 'dist/demo/app.json'), 'utf8'));
    expect(Object.keys(app.plugins)).toEqual(['cardpay']);
    expect(existsSync(join(root, 'dist/demo/pages/cart/index.js'))).toBe(true);
  });
});

describe('the SDK sources', () => {
  it('name every private member with a trailing underscore, so the plugin build can shorten it', () => {
    const sources = [
      ...walk(join(root, 'packages/sdk/src/core')),
      ...walk(join(root, 'packages/sdk/src/hosts')),
    ].filter((f) => f.endsWith('.ts'));
    expect(sources.length).toBeGreaterThan(20);
    const offenders = sources.flatMap((file) =>
      [
        ...readFileSync(file, 'utf8').matchAll(
          /^\s+(?:private|protected)\s+(?:(?:readonly|async)\s+)*(\w+)/gm,
        ),
      ]
        .filter(([, name]) => !name.endsWith('_'))
        .map(([, name]) => `${relative(root, file)}: ${name}`),
    );
    expect(offenders).toEqual([]);
  });
});

describe('the packages’ sources', () => {
  it('import one another in one direction: no module reaches itself through its imports', () => {
    const cycles: string[] = [];
    for (const pkg of ['sdk', 'platform', 'testing']) {
      const files = walk(join(root, 'packages', pkg, 'src')).filter((f) => f.endsWith('.ts'));
      const graph = new Map<string, string[]>();
      for (const file of files) {
        const deps: string[] = [];
        for (const [, spec] of readFileSync(file, 'utf8').matchAll(
          /(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g,
        )) {
          const target = join(dirname(file), spec);
          const found = [`${target}.ts`, join(target, 'index.ts')].find((f) => existsSync(f));
          if (found) deps.push(found);
        }
        graph.set(file, deps);
      }
      // Depth-first, with the path so far: a dependency already on it closes a cycle.
      const done = new Set<string>();
      const visit = (file: string, path: string[]) => {
        if (path.includes(file)) {
          cycles.push(
            path
              .slice(path.indexOf(file))
              .concat(file)
              .map((f) => relative(root, f))
              .join(' → '),
          );
          return;
        }
        if (done.has(file)) return;
        for (const dep of graph.get(file) ?? []) visit(dep, [...path, file]);
        done.add(file);
      };
      for (const file of files) visit(file, []);
    }
    expect(cycles).toEqual([]);
  });
});

describe('the demo build', () => {
  const platformUrl = (value?: string) =>
    spawnSync(
      process.execPath,
      ['-e', "console.log(require('./scripts/build-plugin.js').demoPlatformUrl())"],
      {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, CARDPAY_DEMO_PLATFORM_URL: value ?? '' },
      },
    );

  it('points the demo at the local platform unless a review build names an HTTPS sandbox', () => {
    expect(readFileSync(join(root, 'dist/demo/app.js'), 'utf8')).toContain('http://127.0.0.1:8787');
    expect(platformUrl().stdout.trim()).toBe('http://127.0.0.1:8787');
    expect(platformUrl('https://sandbox.pay.example.com/').stdout.trim()).toBe(
      'https://sandbox.pay.example.com',
    );
  });

  it('refuses a review build pointed at plain http, saying why', () => {
    const run = platformUrl('http://sandbox.pay.example.com');
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/must be an https:\/\/ URL/);
  });

  it('lists the sandbox cards on the demo page, for reviewers to type', () => {
    const page = readFileSync(join(root, 'dist/demo/pages/cart/index.js'), 'utf8');
    for (const card of ['6222 0210 0000 0000 009', '4242 4242 4242 4242', '4000 0000 0000 0002'])
      expect(page).toContain(card);
  });
});
