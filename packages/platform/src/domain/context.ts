import type { FastifyBaseLogger } from 'fastify';
import type { PlatformConfig } from '../infra/config';
import type { PaymentConnector } from '../connectors/payments';
import type { Sealer } from '../infra/secrets';
import type { SoterVerifier } from '../connectors/soter';
import type { WeChatApi } from '../connectors/wechat';
import type { Metrics } from '../infra/metrics';
import type {
  AuthLease,
  MerchantOrderRow,
  SessionRead,
  SessionWith,
  Store,
  Write,
} from '../store/types';

/** What the payment domain works with: storage, configuration, keys, the payment platform. */
export interface Ctx {
  store: Store;
  config: PlatformConfig;
  sealer: Sealer;
  payments: PaymentConnector;
  soter?: SoterVerifier;
  /** WeChat's server APIs, where the config names WeChat credentials (PROTOCOL.md §2.1). */
  wechat?: WeChatApi;
  now: () => number;
  /** Settles charges and refunds whose answer never came (see `reconciler.ts`). */
  reconciler: Worker;
  /** Delivers the notification outbox (see `notifications.ts`). */
  notifier: Worker;
  /** The platform's logger, for work outside a request; it counts the business events it logs. */
  log: Pick<FastifyBaseLogger, 'error' | 'warn' | 'info'>;
  metrics: Metrics;
}

/** Work the platform does in the background, on a timer; `tick` runs one pass now (tests). */
export interface Worker {
  start(everyMs: number): void;
  stop(): Promise<void>;
  tick(): Promise<void>;
}

/**
 * The writes that record a request's answer (PROTOCOL.md §4) in the commit that makes the change
 * it reports, so that a retry finds the answer exactly when it finds the change: lent by the
 * route to the step it calls. None for a request without an idempotency key.
 */
export type Answer = (status: number, body: object) => Write[];

/** For a caller that has no request to answer. */
export const NO_ANSWER: Answer = () => [];

/**
 * A step's session read ahead, with its request's begin (PROTOCOL.md §4): what the step would read
 * first, in the begin's round trip. `at` is the request's moment, the step's now; `lease`, the
 * terminal's authentication lease when the read asked for it.
 */
export interface Ahead {
  read: SessionRead;
  at: number;
  found: SessionWith;
  lease?: AuthLease;
}

/** The merchant order a session opens for, read with its request's begin (undefined: none). */
export interface OrderAhead {
  orderRef: string;
  found: MerchantOrderRow | undefined;
}
