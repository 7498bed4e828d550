// What `requirePlugin('cardpay')` returns, for TypeScript hosts inside this repository; merchants
// import the same from the package: `import type { CardPayPlugin } from 'cardpay/plugin'`.
export * from '../packages/sdk/src/plugin';
