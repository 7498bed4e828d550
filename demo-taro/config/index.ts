import { defineConfig } from '@tarojs/cli';

// The Taro demo shop, built for WeChat only: it embeds the CardPay plugin, a WeChat-native part.
export default defineConfig<'webpack5'>({
  projectName: 'cardpay-demo-taro',
  designWidth: 750,
  deviceRatio: { 640: 2.34 / 2, 750: 1, 375: 2, 828: 1.81 / 2 },
  sourceRoot: 'src',
  outputRoot: 'dist',
  framework: 'react',
  compiler: 'webpack5',
  cache: { enable: false },
  // The build is reproducible and quiet: no browser-list or update checks reach the network.
  mini: {
    postcss: { pxtransform: { enable: true, config: {} } },
    optimizeMainPackage: { enable: false },
  },
});
