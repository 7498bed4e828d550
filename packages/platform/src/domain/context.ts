import type { FastifyBaseLogger } from 'fastify';
import type { PlatformConfig } from '../infra/config';
import type { PaymentConnector } from '../connectors/payments';
import type { Sealer } from '../infra/secrets';
import type { SoterVerifier } from '../connectors/soter';
import type { Metrics } from '../infra/metrics';
import type { Store } from '../store/types';
import type { Notifier } from './notifications';
import type { Reconciler } from './reconciler';

/** What the payment domain works with: storage, configuration, keys, the payment platform. */
export interface Ctx {
  store: Store;
  config: PlatformConfig;
  sealer: Sealer;
  payments: PaymentConnector;
  soter?: SoterVerifier;
  now: () => number;
  reconciler: Reconciler;
  notifier: Notifier;
  /** The platform's logger, for work outside a request; it counts the business events it logs. */
  log: Pick<FastifyBaseLogger, 'error' | 'warn' | 'info'>;
  metrics: Metrics;
}
