// The plugin's main module: what `requirePlugin('cardpay')` returns (INTERFACES.md §2.2).
import { configure, createCheckout, setHostBridge, version } from './lib/sdk';

export { configure, createCheckout, setHostBridge, version };
