import type { PropsWithChildren } from 'react';
import Taro from '@tarojs/taro';
import type { CardPayPlugin } from '../../types/plugin';

// Configured once, as the native demo does: the local reference platform (`npm start` at the
// repository's root), and what WeChat lends the host but not the plugin.
const cardpay = requirePlugin('cardpay') as CardPayPlugin;
cardpay.configure({ platformUrl: 'http://127.0.0.1:8787', merchantId: 'mch_sandbox' });
cardpay.setHostBridge({
  getRandomValues: wx.getRandomValues,
  startSoterAuthentication: wx.startSoterAuthentication,
  checkIsSupportSoterAuthentication: wx.checkIsSupportSoterAuthentication,
  checkIsSoterEnrolledInDevice: wx.checkIsSoterEnrolledInDevice,
});

function App({ children }: PropsWithChildren) {
  Taro.useLaunch(() => undefined);
  return children;
}

export default App;
