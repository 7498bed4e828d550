// The plugin is declared by the app, as in the native demo; the page that shows it names it in
// its own usingComponents (Taro's components have no config files of their own).
export default defineAppConfig({
  pages: ['pages/cart/index'],
  plugins: { cardpay: { version: 'dev', provider: 'touristappid' } },
  window: {
    navigationBarTitleText: 'CardPay Taro Shop',
    navigationBarBackgroundColor: '#ffffff',
    navigationBarTextStyle: 'black',
  },
  darkmode: true,
});
