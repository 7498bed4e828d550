// `cardpay/plugin`: what `requirePlugin('cardpay')` returns, for TypeScript hosts:
//   const cardpay = requirePlugin('cardpay') as import('cardpay/plugin').CardPayPlugin
import type { Checkout, CheckoutOptions } from './core/checkout';
import type { HostBridge } from './hosts/shared';
import type { Suite } from './core/protocol';

export interface CardPayTheme {
  /** Brand colour of buttons and highlights, e.g. '#07c160'. */
  primary?: string;
  /** Colour of text on the primary colour. */
  onPrimary?: string;
  /** Corner radius in rpx (0 to 64). */
  radius?: number;
}

export interface CardPayPlugin {
  /** Defaults for every checkout: `platformUrl` must be https:// (http only on loopback, for development). */
  configure(options: {
    platformUrl: string;
    merchantId: string;
    locale?: 'zh_CN' | 'en_US';
    theme?: CardPayTheme;
    /** The suite new enrolments use (PROTOCOL.md §3.1): 'cardpay-v1' (default) or 'cardpay-sm-v1'. */
    suite?: Suite;
  }): void;
  /**
   * Lend the plugin the host's own functions that WeChat does not give plugins: `getRandomValues`
   * and the SOTER calls (biometrics are offered only with them). Anything else is refused.
   */
  setHostBridge(bridge: HostBridge | undefined): void;
  /** The checkout without UI: same states and events as the component. */
  createCheckout(
    options: Omit<CheckoutOptions, 'host' | 'platformUrl' | 'merchantId'> & {
      platformUrl?: string;
      merchantId?: string;
    },
  ): Checkout;
  /** The SDK version. */
  version: string;
}

/** The `<cardpay-checkout>` element's properties (INTERFACES.md §2.1), for JSX typings and docs. */
export interface CardPayCheckoutProps {
  orderRef?: string;
  amount?: number;
  currency?: string;
  description?: string;
  platformUrl?: string;
  merchantId?: string;
  locale?: 'zh_CN' | 'en_US';
  /** Who provides the payment service, shown under the button. Default 'CardPay'. */
  serviceProvider?: string;
}
