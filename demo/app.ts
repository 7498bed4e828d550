// The demo shop: points the plugin at the platform chosen at build time and lends it what WeChat
// does not give plugins: its own random source and SOTER.
// By default that is the local reference platform `npm start` runs; DevTools must then allow
// non-HTTPS loopback requests ("do not verify request domains"). A build for WeChat's review sets
// CARDPAY_DEMO_PLATFORM_URL to an HTTPS sandbox (README, "A build for WeChat's review").
declare const CARDPAY_DEMO_PLATFORM_URL: string;
const cardpay = requirePlugin('cardpay');

cardpay.configure({ platformUrl: CARDPAY_DEMO_PLATFORM_URL, merchantId: 'mch_sandbox' });
cardpay.setHostBridge({
  login: wx.login,
  getRandomValues: wx.getRandomValues,
  startSoterAuthentication: wx.startSoterAuthentication,
  checkIsSupportSoterAuthentication: wx.checkIsSupportSoterAuthentication,
  checkIsSoterEnrolledInDevice: wx.checkIsSoterEnrolledInDevice,
});

App({});

export {};
