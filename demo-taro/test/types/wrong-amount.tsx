// Must not compile: the amount is a number of minor units, not a string.
import type {} from '../../../types/taro-jsx';

export const Wrong = () => <cardpay-checkout amount="19.99" />;
