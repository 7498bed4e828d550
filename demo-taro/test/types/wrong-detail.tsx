// Must not compile: a payment's amount is `charged`, there is no `total`.
import type {} from '../../../types/taro-jsx';

export const Wrong = () => <cardpay-checkout onSuccess={(e) => e.detail.payment.total} />;
