// Compiles: the element with its attributes and typed event details.
import type {} from '../../../types/taro-jsx';

export function Right() {
  return (
    <cardpay-checkout
      amount={1999}
      order-ref="mor_abc"
      locale="en_US"
      onSuccess={(e) => console.log(e.detail.payment.charged.toFixed(0))}
      onFail={(e) => console.log(e.detail.error.code)}
      onStatechange={(e) => console.log(e.detail.state === 'processing')}
      onCancel={() => undefined}
    />
  );
}
