// Everything the plugin's pages and API share, bundled once (dist/plugin/lib/sdk.js) and required
// by each component and the main module, so the SDK is not copied into every file.
import {
  assertId,
  assertSuite,
  Checkout,
  type CheckoutOptions,
} from '../../packages/sdk/src/core/checkout';
import { normaliseBaseUrl } from '../../packages/sdk/src/core/client';
import { passwordWeakness } from '../../packages/sdk/src/core/enrolment';
import { CardPayError } from '../../packages/sdk/src/core/errors';
import { VERSION } from '../../packages/sdk/src/core/version';
import { createWxHost } from '../../packages/sdk/src/hosts/wx';
import type { HostBridge } from '../../packages/sdk/src/hosts/shared';
import type { Suite } from '../../packages/sdk/src/core/protocol';
import { pickLocale, stringsFor, errorText, type Locale } from './i18n';
import { checkoutView } from './view';

export interface Theme {
  /** Brand colour of buttons and highlights, e.g. `#07c160`. */
  primary?: string;
  /** Colour of text on the primary colour. */
  onPrimary?: string;
  /** Corner radius in rpx. */
  radius?: number;
}

export interface PluginConfig {
  platformUrl: string;
  merchantId: string;
  locale?: Locale;
  theme?: Theme;
  /** The suite new enrolments register with: `cardpay-v1` (default) or `cardpay-sm-v1` (SM3). */
  suite?: Suite;
}

let config: PluginConfig | undefined;
let bridge: HostBridge | undefined;

/**
 * Defaults for every checkout of this host. `platformUrl` must be `https://` (plain http only
 * on loopback addresses, for development).
 *
 * @example requirePlugin('cardpay').configure({ platformUrl: 'https://pay.example.com', merchantId: 'mch_shop' })
 */
export function configure(options: PluginConfig): void {
  if (!options || typeof options !== 'object') {
    throw new CardPayError(
      'config_invalid',
      'configure expects { platformUrl, merchantId, locale?, theme?, suite? }',
    );
  }
  const platformUrl = normaliseBaseUrl(options.platformUrl);
  assertId('merchantId', 'mch', options.merchantId);
  assertSuite(options.suite);
  config = { ...options, platformUrl, locale: pickLocale(options.locale) };
}

/**
 * What the host lends the plugin, which WeChat does not give plugins: its own `wx.getRandomValues`
 * (used for nonces and salts; without it the SDK makes them unique with a keyed generator) and
 * the SOTER functions (biometric payment is offered only with them). Refuses anything else.
 *
 * @example requirePlugin('cardpay').setHostBridge({ getRandomValues: wx.getRandomValues, startSoterAuthentication: wx.startSoterAuthentication, checkIsSupportSoterAuthentication: wx.checkIsSupportSoterAuthentication, checkIsSoterEnrolledInDevice: wx.checkIsSoterEnrolledInDevice })
 */
export function setHostBridge(value: HostBridge | undefined): void {
  if (value !== undefined && (value === null || typeof value !== 'object'))
    throw new CardPayError('config_invalid', 'setHostBridge expects an object of functions');
  const lent: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(value ?? {})) {
    const known = BRIDGE_MEMBERS.includes(name);
    // A wx function the host's WeChat lacks (an older base library, WeChat on PC) arrives as
    // undefined: nothing is lent, and the plugin does without it.
    if (known && fn === undefined) continue;
    // A known member that is not a function, or a function under an unknown (mistyped) name,
    // would silently lend nothing: say so now rather than at the first payment.
    if (known !== (typeof fn === 'function'))
      throw new CardPayError(
        'config_invalid',
        known
          ? `setHostBridge: ${name} must be the host's own wx.${name} function, got ${typeof fn}`
          : `setHostBridge: ${name} is not a member it takes (${BRIDGE_MEMBERS.join(', ')}, each the host's own wx function)`,
      );
    if (known) lent[name] = fn;
  }
  bridge = value ? (lent as HostBridge) : undefined;
}

const BRIDGE_MEMBERS = [
  'login',
  'getRandomValues',
  'startSoterAuthentication',
  'checkIsSoterEnrolledInDevice',
  'checkIsSupportSoterAuthentication',
];

export function currentConfig(): PluginConfig | undefined {
  return config;
}

/** The plugin's wx host, with whatever the host lent. */
export function pluginHost() {
  return createWxHost(wx, { bridge });
}

export type CreateCheckoutOptions = Omit<CheckoutOptions, 'host' | 'platformUrl' | 'merchantId'> & {
  platformUrl?: string;
  merchantId?: string;
};

/**
 * A checkout without UI, on the plugin's own wx: the same flow, states and events as the
 * component, for merchants who draw their own screens.
 */
export function createCheckout(options: CreateCheckoutOptions): Checkout {
  const platformUrl = options.platformUrl ?? config?.platformUrl;
  const merchantId = options.merchantId ?? config?.merchantId;
  if (!platformUrl || !merchantId) {
    throw new CardPayError(
      'config_invalid',
      'call configure({ platformUrl, merchantId }) first, or pass both to createCheckout',
    );
  }
  const suite = options.suite ?? config?.suite;
  return new Checkout({ ...options, host: pluginHost(), platformUrl, merchantId, suite });
}

/**
 * What the view takes from the base library (`wx.getAppBaseInfo`, given to plugins from 2.21.3):
 * the shopper's font size in WeChat as a factor of the standard one (the sheets' text follows
 * it), and whether `root-portal` exists (2.25.2), so that the sheets leave the host page's layout.
 * `wx.canIUse` is not offered to plugins: the version says it.
 */
export function viewEnvironment(): { scale: number; portal: boolean } {
  let info: { fontSizeScaleFactor?: number; SDKVersion?: string } | undefined;
  try {
    info = wx.getAppBaseInfo?.();
  } catch {
    info = undefined;
  }
  const f = info?.fontSizeScaleFactor;
  // Versions compared as text with every number padded: 2.25.2 is 0002.0025.0002.
  const pad = (v: string) => v.replace(/\d+/g, (n) => n.padStart(4, '0'));
  return {
    scale: typeof f === 'number' && f >= 0.8 && f <= 2 ? f : 1,
    portal: pad(String(info?.SDKVersion ?? '')) >= pad('2.25.2'),
  };
}

/** CSS custom properties for a theme and the shopper's font scale, as an inline style. */
export function themeStyle(theme: Theme | undefined, scale = 1): string {
  const parts: string[] = [];
  if (scale !== 1) parts.push(`--cardpay-scale:${Math.round(scale * 100) / 100}`);
  if (!theme) return parts.join(';');
  if (theme.primary && /^#[0-9a-fA-F]{3,8}$/.test(theme.primary))
    parts.push(`--cardpay-primary:${theme.primary}`);
  if (theme.onPrimary && /^#[0-9a-fA-F]{3,8}$/.test(theme.onPrimary))
    parts.push(`--cardpay-on-primary:${theme.onPrimary}`);
  if (typeof theme.radius === 'number' && theme.radius >= 0 && theme.radius <= 64)
    parts.push(`--cardpay-radius:${theme.radius}rpx`);
  return parts.join(';');
}

export const version = VERSION;
export {
  Checkout,
  checkoutView,
  pickLocale,
  stringsFor,
  errorText,
  passwordWeakness,
  CardPayError,
};
export type { HostBridge, Locale };
