import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ScriptedScanner } from 'cardpay/node';
import { offeredToPlugins } from './plugin-apis';
import { pluginRoot } from './root';
import type { WeChatStandIn } from './wechat';

// The merchant test kit for miniprogram-simulate (run under jest's jsdom environment): load our
// component under its plugin:// name, give it a wx whose requests really cross the network to a
// sandbox platform, script the scanner, and drive it through its stable element ids.

/**
 * The built plugin (`npm run build` writes it): the kit loads what ships, minified and bundled,
 * as miniprogram-simulate loads any component.
 */
export const PLUGIN_ROOT = pluginRoot();
export const CHECKOUT_PATH = join(PLUGIN_ROOT, 'components/checkout/index');

type Simulate = {
  load(path: string, tagOrOptions?: unknown, options?: unknown): string;
  render(id: string, props?: Record<string, unknown>): SimComponent;
};

/** The wrapper miniprogram-simulate returns for a rendered component or element. */
export interface SimComponent {
  dom: { textContent: string | null; innerHTML: string; outerHTML: string };
  instance: { data: Record<string, any>; setData(data: Record<string, unknown>): void };
  /** Changes the component's properties, as the host page's next render would. */
  setData(data: Record<string, unknown>): void;
  attach(parent: unknown): void;
  detach(): void;
  querySelector(selector: string): SimComponent | null;
  dispatchEvent(name: string, options?: Record<string, unknown>): void;
  addEventListener(name: string, listener: (event: { detail: any }) => void): void;
}

// Required lazily: miniprogram-simulate touches the DOM when loaded, and the kit's other helpers
// (and its types) are also used from plain Node.
function simulate(): Simulate {
  if (!existsSync(join(PLUGIN_ROOT, 'plugin.json'))) {
    throw new Error(
      `the built plugin is missing at ${PLUGIN_ROOT}: run \`npm run build\` before these tests`,
    );
  }
  return require('miniprogram-simulate') as Simulate;
}

export interface WxStandIn {
  scanner: ScriptedScanner;
  storage: Map<string, unknown>;
  /** Every wx.request made, in order. */
  requests: { method: string; url: string }[];
  /** Alters the next response's body bytes in flight, once (for tamper tests). */
  tamperNextResponse(change: (body: Buffer) => Buffer): void;
  /** What the host page showed with showToast, showModal or showLoading, in order. */
  shown: { api: string; title: string }[];
  /**
   * Makes this the phone of `shopper` in the host app `appId`, as known to a WeChat stand-in
   * ({@link startWeChatStandIn}): `wx.getAccountInfoSync` names the app, the host's `wx.login`
   * and the plugin's `wx.pluginLogin` give that stand-in's codes, and the host's SOTER signs with
   * the shopper's key there.
   */
  signInAs(wechat: WeChatStandIn, appId: string, shopper: string): void;
}

/**
 * Gives the simulated `wx` what the checkout uses: `request` over real HTTP (raw bytes, so the
 * SDK checks response signatures for real), a scripted `scanCode`, storage in memory, and
 * `getRandomValues` from node:crypto. Call once per test file; `reset()` between tests.
 *
 * Code of the plugin (files under `pluginRoot`, the built plugin by default) sees `wx` as a
 * plugin does in WeChat: only the APIs WeChat offers plugins, read from miniprogram-api-typings
 * ({@link pluginSupport}); the rest (`getRandomValues`, SOTER, `requestPayment`…) is absent. The
 * host's own pages keep the whole `wx`.
 */
export function installWx(options: { pluginRoot?: string } = {}): WxStandIn & { reset(): void } {
  const g = globalThis as { wx?: Record<string, unknown> };
  const existing = g.wx as { [FULL]?: Record<string, unknown> } | undefined;
  const wx: Record<string, unknown> = existing?.[FULL] ?? existing ?? {};
  g.wx = pluginScoped(wx, resolve(options.pluginRoot ?? PLUGIN_ROOT));
  const state = {
    scanner: new ScriptedScanner(),
    storage: new Map<string, unknown>(),
    requests: [] as { method: string; url: string }[],
    tamper: undefined as ((body: Buffer) => Buffer) | undefined,
    shown: [] as { api: string; title: string }[],
    shopper: undefined as { wechat: WeChatStandIn; appId: string; name: string } | undefined,
  };
  // A host page's feedback (a toast after paying, say): recorded, and answered as a shopper who
  // reads it (a modal's confirm button).
  for (const api of ['showToast', 'showLoading', 'showModal']) {
    wx[api] = (o: any = {}) => {
      state.shown.push({ api, title: String(o.title ?? o.content ?? '') });
      const result = api === 'showModal' ? { confirm: true, cancel: false } : {};
      o.success?.({ errMsg: `${api}:ok`, ...result });
      o.complete?.({ errMsg: `${api}:ok`, ...result });
    };
  }
  for (const api of ['hideToast', 'hideLoading'])
    wx[api] = (o: any = {}) => {
      o.success?.({ errMsg: `${api}:ok` });
      o.complete?.({ errMsg: `${api}:ok` });
    };
  wx.request = (o: any) => {
    state.requests.push({ method: o.method, url: o.url });
    const url = new URL(o.url);
    const req = httpRequest(
      {
        hostname: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: o.method,
        headers: o.header,
        timeout: o.timeout,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body: Buffer = Buffer.concat(chunks);
          if (state.tamper) {
            body = state.tamper(body);
            state.tamper = undefined;
          }
          const data = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
          o.success?.({ statusCode: res.statusCode, header: res.headers, data });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => o.fail?.({ errMsg: `request:fail ${e.message}` }));
    if (o.data !== undefined) req.write(o.data);
    req.end();
  };
  wx.scanCode = (o: any) => {
    void state.scanner.scanCode({ scanType: o.scanType }).then((r) =>
      r.ok
        ? o.success?.({
            result: r.result,
            scanType: r.scanType === 'qrCode' ? 'QR_CODE' : 'EAN_13',
          })
        : o.fail?.({
            errMsg: `scanCode:fail ${r.reason === 'cancelled' ? 'cancel' : 'auth deny'}`,
          }),
    );
  };
  wx.getStorage = (o: any) =>
    state.storage.has(o.key)
      ? o.success?.({ data: state.storage.get(o.key) })
      : o.fail?.({ errMsg: 'getStorage:fail data not found' });
  wx.setStorage = (o: any) => {
    state.storage.set(o.key, o.data);
    o.success?.({});
  };
  wx.removeStorage = (o: any) => {
    state.storage.delete(o.key);
    o.success?.({});
  };
  // Who the shopper is (PROTOCOL.md §2.1): a host app's account and its login codes, from a
  // WeChat stand-in once `signInAs` names them; refused before, as WeChat would with no session.
  wx.getAccountInfoSync = () => ({
    miniProgram: {
      appId: state.shopper?.appId ?? 'wx0000000000000000',
      envVersion: 'develop',
      version: '',
    },
    plugin: { appId: 'wx000000000000c0de', version: 'dev' },
  });
  for (const api of ['login', 'pluginLogin'] as const)
    wx[api] = (o: any = {}) => {
      const who = state.shopper;
      if (!who) return o.fail?.({ errMsg: `${api}:fail not signed in` });
      const code =
        api === 'login'
          ? who.wechat.loginCode(who.appId, who.name)
          : who.wechat.pluginCode(who.appId, who.name);
      o.success?.({ code, errMsg: `${api}:ok` });
    };
  // The host's SOTER, as a signed-in shopper's phone has it: signatures made with that shopper's
  // key in the app, which the WeChat stand-in verifies. Plugins do not see these (a host lends
  // them through setHostBridge).
  wx.checkIsSupportSoterAuthentication = (o: any = {}) =>
    o.success?.({ supportMode: state.shopper ? ['fingerPrint'] : [] });
  wx.checkIsSoterEnrolledInDevice = (o: any = {}) =>
    o.success?.({ isEnrolled: !!state.shopper && o.checkAuthMode === 'fingerPrint' });
  wx.startSoterAuthentication = (o: any = {}) => {
    const who = state.shopper;
    if (!who)
      return o.fail?.({ errCode: 90001, errMsg: 'startSoterAuthentication:fail not supported' });
    const resultJSON = JSON.stringify({
      raw: o.challenge,
      fid: '1',
      counter: 1,
      tee_n: 'TEE',
      tee_v: '1',
      uid: '0',
    });
    o.success?.({
      authMode: 'fingerPrint',
      resultJSON,
      resultJSONSignature: who.wechat.soterSign(who.appId, who.name, resultJSON),
    });
  };
  wx.getRandomValues = (o: any) => {
    const b = randomBytes(o.length);
    o.success?.({ randomValues: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
  };
  return {
    get scanner() {
      return state.scanner;
    },
    get storage() {
      return state.storage;
    },
    get requests() {
      return state.requests;
    },
    get shown() {
      return state.shown;
    },
    tamperNextResponse(change) {
      state.tamper = change;
    },
    signInAs(wechat, appId, name) {
      state.shopper = { wechat, appId, name };
    },
    reset() {
      state.scanner = new ScriptedScanner();
      state.storage.clear();
      state.requests.length = 0;
      state.shown.length = 0;
      state.tamper = undefined;
      state.shopper = undefined;
    },
  };
}

const FULL = Symbol('the whole wx');

/**
 * `wx` as each caller may see it: the function that reads a member is looked up on the stack;
 * when it lives in the plugin, members WeChat does not offer plugins read as absent.
 */
function pluginScoped(full: Record<string, unknown>, pluginRoot: string): Record<string, unknown> {
  const inPlugin = (skip: (...args: never[]) => unknown): boolean => {
    const previous = Error.prepareStackTrace;
    Error.prepareStackTrace = (_e, frames) => frames;
    const holder: { stack?: NodeJS.CallSite[] } = {};
    Error.captureStackTrace(holder, skip);
    const frames = holder.stack;
    Error.prepareStackTrace = previous;
    const file = frames?.[0]?.getFileName() ?? '';
    return file.startsWith(pluginRoot + sep);
  };
  const handler: ProxyHandler<Record<string, unknown>> = {
    get(target, name) {
      if (name === FULL) return target;
      if (typeof name === 'string' && !offeredToPlugins(name) && inPlugin(handler.get!))
        return undefined;
      return target[name as string];
    },
    has(target, name) {
      if (typeof name === 'string' && !offeredToPlugins(name) && inPlugin(handler.has!))
        return false;
      return name in target;
    },
  };
  return new Proxy(full, handler);
}

/**
 * Shims what miniprogram-simulate lacks for plugins: `requirePlugin('cardpay')` (our main
 * module), `getApp` and `Page` for host pages written with `Component`.
 */
export function shimPluginGlobals(app: Record<string, unknown> = {}): void {
  const g = globalThis as Record<string, unknown>;
  g.requirePlugin = (name: string) => {
    if (name !== 'cardpay') throw new Error(`requirePlugin: no plugin "${name}" in this test`);
    return require(join(PLUGIN_ROOT, 'index'));
  };
  // App() and Page() as WeChat runs them, for hosts built by frameworks (Taro) that register
  // an app and pages rather than components: a page becomes a component whose lifetimes call
  // the page's onLoad, onShow, onReady and onUnload.
  let registered: Record<string, unknown> = app;
  const pages: Record<string, unknown>[] = [];
  g.App = (options: Record<string, unknown>) => {
    registered = options;
    (options.onLaunch as ((o: unknown) => void) | undefined)?.call(options, { query: {} });
    (options.onShow as ((o: unknown) => void) | undefined)?.call(options, { query: {} });
  };
  g.getApp = () => registered;
  g.getCurrentPages = () => [...pages];
  g.Page = (options: Record<string, unknown>) => {
    const methods: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options)) if (typeof v === 'function') methods[k] = v;
    type PageThis = Record<string, unknown> & { [k: string]: any };
    return (g.Component as (o: unknown) => unknown)({
      data: options.data ?? {},
      methods,
      lifetimes: {
        attached(this: PageThis) {
          pages.push(this);
          this.route ??= String(this.is ?? '').replace(/^\//, '');
          this.onLoad?.({});
          this.onShow?.();
        },
        ready(this: PageThis) {
          this.onReady?.();
        },
        detached(this: PageThis) {
          this.onUnload?.();
          pages.splice(pages.indexOf(this), 1);
        },
      },
    });
  };
}

/**
 * Loads the checkout component under its plugin name. Load once per test file (jest caches the
 * module, and a second load of the same path renders nothing).
 */
export function loadCheckout(): string {
  return simulate().load(CHECKOUT_PATH, 'cardpay-checkout');
}

/** Loads a host page or component whose JSON uses `plugin://cardpay/checkout` (under `tag`), with our component mapped in. */
export function loadWithPlugin(path: string, tag = 'cardpay-checkout'): string {
  // Relative to the page: simulate joins absolute paths onto its root and would miss the file,
  // and an unmapped tag renders empty without an error.
  // The WXML compiler sees only files under rootPath: use the folder that holds both.
  return simulate().load(path, {
    rootPath: commonFolder(path, PLUGIN_ROOT),
    usingComponents: { [tag]: relative(dirname(path), CHECKOUT_PATH) },
    // WeChat's own WXML compiler skips node_modules, where an installed package keeps the
    // plugin: there the pure-JavaScript compiler reads each file itself.
    ...(PLUGIN_ROOT.split(sep).includes('node_modules') ? { compiler: 'simulate' } : {}),
  });
}

function commonFolder(a: string, b: string): string {
  const pa = resolve(a).split(sep);
  const pb = resolve(b).split(sep);
  let i = 0;
  while (i < pa.length && i < pb.length && pa[i] === pb[i]) i++;
  return pa.slice(0, i).join(sep) || sep;
}

/** Renders and attaches a loaded component, as a page would. */
export function mount(id: string, props: Record<string, unknown> = {}): SimComponent {
  const comp = simulate().render(id, props);
  const doc = (globalThis as { document?: { createElement(tag: string): unknown } }).document;
  if (!doc) throw new Error('mount needs a DOM: run this test file with @jest-environment jsdom');
  comp.attach(doc.createElement('parent-wrapper'));
  return comp;
}

const CONTAINERS = [
  'cardpay-checkout',
  'cardpay-confirm-sheet',
  'cardpay-auth-sheet',
  'cardpay-cvv-keypad',
  'cardpay-keypad',
];

/** Finds an element by its stable id anywhere in the checkout, inside its sheets and keypad too. */
export function find(root: SimComponent, id: string): SimComponent | null {
  const here = root.querySelector(`#${id}`);
  if (here) return here;
  for (const container of CONTAINERS) {
    const child = root.querySelector(`#${container}`);
    if (child && child !== root) {
      const found = find(child, id);
      if (found) return found;
    }
  }
  return null;
}

/** The text of an element found by id ('' when absent). */
export function text(root: SimComponent, id: string): string {
  return find(root, id)?.dom.textContent?.trim() ?? '';
}

/** Taps the element with this stable id; throws, naming it, when it is not on screen. */
export function tap(root: SimComponent, id: string): void {
  const el = find(root, id);
  if (!el) throw new Error(`#${id} is not on screen (screen: ${JSON.stringify(screenOf(root))})`);
  el.dispatchEvent('tap');
}

/**
 * A shopper's first payment on a fresh phone, through the whole checkout on `root`: tap the
 * button, set the payment password twice, confirm, give the card's CVV with the password. Queue
 * the card on the scanner first. Resolves with the amount the confirmation sheet showed, once the
 * password is typed (wait for your page's own reaction after it).
 *
 * @example
 * wx.scanner.push('4242424242424242')
 * const { confirmedAmount } = await payAsNewShopper(page)
 */
export async function payAsNewShopper(
  root: SimComponent,
  { password = '204816', cvv = '123' }: { password?: string; cvv?: string } = {},
): Promise<{ confirmedAmount: string }> {
  await waitForScreen(root, 'entry');
  tap(root, 'cardpay-start');
  await waitForScreen(root, 'enrol');
  typeDigits(root, password);
  typeDigits(root, password);
  await waitForScreen(root, 'confirm');
  const confirmedAmount = text(root, 'cardpay-amount');
  tap(root, 'cardpay-confirm');
  await waitForScreen(root, 'auth');
  await typeCvv(root, cvv);
  typeDigits(root, password);
  return { confirmedAmount };
}

/** Types digits on the password keypad, one tap a key, as fast as a user can. */
export function typeDigits(root: SimComponent, digits: string): void {
  for (const d of digits) tap(root, `cardpay-key-${d}`);
}

/**
 * Types the card's security code on the sheet's CVV step (its own keypad), then goes on to the
 * password as a shopper does: the last digit of a 3-digit code moves on by itself, a shorter
 * entry of a 4-digit one is confirmed with 下一步 (`cardpay-cvv-submit`). Resolves once the
 * password step is on screen.
 */
export async function typeCvv(root: SimComponent, cvv: string): Promise<void> {
  const step = find(root, 'cardpay-cvv');
  if (!step) throw new Error('#cardpay-cvv (the CVV step) is not on screen');
  const boxes = (step.dom.innerHTML.match(/cardpay-keypad__box\b/g) ?? []).length;
  typeDigits(root, cvv);
  // The keypad's events reach the sheet after the taps.
  await new Promise((r) => setTimeout(r, 0));
  if (cvv.length < boxes && find(root, 'cardpay-cvv')) tap(root, 'cardpay-cvv-submit');
  await waitFor(() => !find(root, 'cardpay-cvv'), 'the password step after the CVV');
}

/**
 * Types into an input by id (the manual card number). Since the CVV has its own keypad, use
 * {@link typeCvv} for it: `input(root, 'cardpay-cvv', …)` throws and says so.
 */
export function input(root: SimComponent, id: string, value: string): void {
  const el = find(root, id);
  if (!el) throw new Error(`#${id} is not on screen`);
  if (id === 'cardpay-cvv')
    throw new Error('the CVV is typed on its own keypad: use `await typeCvv(root, cvv)`');
  el.dispatchEvent('input', { detail: { value } });
}

/**
 * The checkout's current screen, for assertions and messages. On a host page the kit finds the
 * checkout by its id: give the element `id="cardpay-checkout"`.
 */
export function screenOf(root: SimComponent): string | undefined {
  const checkout = root.querySelector('#cardpay-checkout') ?? root;
  return (checkout.instance?.data?.view as { screen?: string } | undefined)?.screen;
}

/** Waits (in real time: the platform is real) until the predicate holds. */
export async function waitFor(
  predicate: () => boolean,
  what = 'condition',
  timeoutMs = 10000,
): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits for the checkout to show a screen (entry, enrol, confirm, auth, processing, result…). */
export function waitForScreen(
  root: SimComponent,
  screen: string,
  timeoutMs?: number,
): Promise<void> {
  return waitFor(
    () => screenOf(root) === screen,
    `screen "${screen}" (now "${screenOf(root)}")`,
    timeoutMs,
  );
}

/** Records the component's events: statechange, success, fail, cancel. */
export function recordEvents(comp: SimComponent): { name: string; detail: any }[] {
  const events: { name: string; detail: any }[] = [];
  for (const name of ['statechange', 'success', 'fail', 'cancel', 'done'])
    comp.addEventListener(name, (e) => events.push({ name, detail: e.detail }));
  return events;
}
