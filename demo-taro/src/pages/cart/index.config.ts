export default definePageConfig({
  navigationBarTitleText: '购物车',
  usingComponents: { 'cardpay-checkout': 'plugin://cardpay/checkout' },
});
