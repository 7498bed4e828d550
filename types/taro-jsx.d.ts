// The `<cardpay-checkout>` JSX element for Taro pages inside this repository (demo-taro); merchants
// import the same from the package: `import type {} from 'cardpay/taro-jsx'`.
export * from '../packages/sdk/src/taro-jsx';
