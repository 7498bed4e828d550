#!/usr/bin/env node
// `npm start`: the reference platform is not built yet; say so plainly.
console.log('CardPay: the SDK core is in place (npm test runs it).');
console.log('The reference trading platform (src/server) is not built yet, so there is nothing to start.');
