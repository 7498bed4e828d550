// Must not compile: the plugin speaks zh_CN and en_US only.
import type {} from '../../../types/taro-jsx';

export const Wrong = () => <cardpay-checkout locale="fr_FR" />;
