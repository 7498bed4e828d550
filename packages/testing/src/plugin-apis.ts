import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Whether WeChat gives an API to plugins: not at all, always, or from a base library version. */
export type PluginSupport = { supported: false } | { supported: true; since?: string };

let cached: Map<string, PluginSupport> | undefined;

/**
 * What WeChat offers plugins, read from the installed `miniprogram-api-typings`: each member of
 * `interface Wx` documents "在插件中使用：支持 / 不支持 / 需要基础库 `x`". Read from the typings
 * rather than written down here, so the list follows WeChat's as the typings are updated.
 * An API whose documentation says nothing is taken as not offered.
 */
export function pluginSupport(): Map<string, PluginSupport> {
  if (cached) return cached;
  const file = createRequire(__filename).resolve(
    'miniprogram-api-typings/types/wx/lib.wx.api.d.ts',
  );
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf('{', text.indexOf('interface Wx {'));
  let depth = 0;
  let end = start;
  for (; end < text.length; end++) {
    if (text[end] === '{') depth++;
    else if (text[end] === '}' && --depth === 0) break;
  }
  const body = text.slice(start + 1, end);
  const out = new Map<string, PluginSupport>();
  const member = /\/\*\*([\s\S]*?)\*\/\s*([A-Za-z0-9_]+)\s*[<(]/g;
  for (let m = member.exec(body); m; m = member.exec(body)) {
    const said = /在插件中使用：(不支持|支持|需要基础库 `([\d.]+)`)/.exec(m[1]);
    const support: PluginSupport | undefined = !said
      ? undefined
      : said[1] === '不支持'
        ? { supported: false }
        : { supported: true, ...(said[2] ? { since: said[2] } : {}) };
    // Overloads repeat a name: the first documented one decides.
    if (support && !out.has(m[2])) out.set(m[2], support);
  }
  if (out.size < 100)
    throw new Error(`could not read plugin support from ${file} (found ${out.size} APIs)`);
  cached = out;
  return out;
}

/** Whether a plugin's `wx` has this member in WeChat. */
export function offeredToPlugins(name: string): boolean {
  return pluginSupport().get(name)?.supported === true;
}
