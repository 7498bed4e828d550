// The demo shop: points the plugin at the local reference platform and lends it what WeChat does
// not give plugins: its own random source and SOTER.
// `npm start` prints the platform URL; DevTools must allow non-HTTPS loopback requests
// ("do not verify request domains") for this development set-up.
const cardpay = requirePlugin('cardpay');

cardpay.configure({ platformUrl: 'http://127.0.0.1:8787', merchantId: 'mch_sandbox' });
cardpay.setHostBridge({
  getRandomValues: wx.getRandomValues,
  startSoterAuthentication: wx.startSoterAuthentication,
  checkIsSupportSoterAuthentication: wx.checkIsSupportSoterAuthentication,
  checkIsSoterEnrolledInDevice: wx.checkIsSoterEnrolledInDevice,
});

App({});

export {};
