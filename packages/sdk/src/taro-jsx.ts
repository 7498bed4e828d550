// `cardpay/taro-jsx`: the `<cardpay-checkout>` element typed for Taro (React) pages.
//   import type {} from 'cardpay/taro-jsx'   // once, anywhere in the app
// Taro passes a native component's attributes as written in WXML (`order-ref`, not `orderRef`)
// and binds its events through `on` + the event's name (`onSuccess` → `success`,
// `onStatechange` → `statechange`). The augmentation is of the global JSX namespace, which
// @types/react 18 (Taro 4's React) reads for intrinsic elements.
import type { CheckoutError, CheckoutState } from './core/checkout';
import type { Payment } from './core/protocol';

/** `detail` of the `statechange` event. */
export interface CardPayStateChangeDetail {
  state: CheckoutState;
}
/** `detail` of the `success` event: the payment as PROTOCOL.md §5.4 gives it. */
export interface CardPaySuccessDetail {
  payment: Payment;
}
/** `detail` of the `fail` event. */
export interface CardPayFailDetail {
  error: Pick<CheckoutError, 'code' | 'message'>;
}

/** What a native component's event handler receives in Taro. */
export interface CardPayEvent<Detail> {
  type: string;
  detail: Detail;
}

/** The element's attributes (INTERFACES.md §2.1) and events, as a Taro page writes them. */
export interface CardPayCheckoutAttributes {
  id?: string;
  className?: string;
  style?: string;
  'order-ref'?: string;
  /** Minor units (fen for CNY), for merchants that allow open amounts. */
  amount?: number;
  currency?: string;
  description?: string;
  'platform-url'?: string;
  'merchant-id'?: string;
  locale?: 'zh_CN' | 'en_US';
  /** Who provides the payment service, shown under the button. Default 'CardPay'. */
  'service-provider'?: string;
  onStatechange?: (event: CardPayEvent<CardPayStateChangeDetail>) => void;
  onSuccess?: (event: CardPayEvent<CardPaySuccessDetail>) => void;
  onFail?: (event: CardPayEvent<CardPayFailDetail>) => void;
  onCancel?: (event: CardPayEvent<Record<string, never>>) => void;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace JSX {
    interface IntrinsicElements {
      'cardpay-checkout': CardPayCheckoutAttributes;
    }
  }
}
