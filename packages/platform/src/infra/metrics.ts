import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store/types';

// Prometheus metrics of one platform instance, in a registry of its own (several platforms may
// share a process, in tests). The business events the domain logs are counted by the same call
// that logs them (`eventLogger`): one mechanism, so a counted event is always a logged one.

export type EventLogger = Pick<FastifyBaseLogger, 'error' | 'warn' | 'info'>;

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'cardpay_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'cardpay_http_request_duration_seconds',
    help: 'Time to answer a request, by route pattern (each checkout step is a route)',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly payments = new Counter({
    name: 'cardpay_payments_total',
    help: 'Payments decided, by outcome (succeeded, or the decline or failure code)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'cardpay_events_total',
    help: 'Business events logged, by event (payment_succeeded, terminal_locked, …)',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  readonly databaseErrors = new Counter({
    name: 'cardpay_database_errors_total',
    help: 'Requests or background passes that found the database unavailable',
    registers: [this.registry],
  });
  readonly databaseRecoveries = new Counter({
    name: 'cardpay_database_recoveries_total',
    help: 'Times the database answered again after it had stopped answering',
    registers: [this.registry],
  });
  readonly databaseUp = new Gauge({
    name: 'cardpay_database_up',
    help: '1 while the database answers this instance, 0 from its first failure until it answers again',
    registers: [this.registry],
  });

  readonly databaseWait = new Histogram({
    name: 'cardpay_database_wait_seconds',
    help: "Waits for the database, by kind: read, write (its commit waits for the disk), write_unflushed (a request's begin, which does not)",
    labelNames: ['kind'] as const,
    buckets: [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });
  readonly commitWrites = new Histogram({
    name: 'cardpay_database_commit_writes',
    help: "Requests' writes each commit to the database carried: 1 when requests come one at a time, more when the writes of requests that arrive together commit as one transaction (group commit)",
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });
  readonly paymentPlatform = new Histogram({
    name: 'cardpay_payment_platform_request_duration_seconds',
    help: 'Requests to the payment platform, by call (charge, verification, refund, charge_lookup, refund_lookup, readiness) and result (answered with any status, or unanswered: a time-out or a lost connection)',
    labelNames: ['call', 'result'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly perRequest = new Map<string, { done(seconds: number): void }>();
  private readonly waits = new Map<string, { observe(seconds: number): void }>();
  private readonly calls = new Map<string, { observe(seconds: number): void }>();

  /** Counts a wait for the database (the store tells each one: `Store.onWait`). */
  readonly waited = (kind: string, seconds: number): void => {
    let series = this.waits.get(kind);
    if (!series) this.waits.set(kind, (series = this.databaseWait.labels({ kind })));
    series.observe(seconds);
  };

  /** Counts a commit and the writes it carried (the store tells each one: `Store.onCommit`). */
  readonly committed = (writes: number): void => this.commitWrites.observe(writes);

  /** Counts a request to the payment platform (`PaymentConnector.onRequest`). */
  readonly called = (call: string, answered: boolean, seconds: number): void => {
    const key = `${call} ${answered}`;
    let series = this.calls.get(key);
    if (!series)
      this.calls.set(
        key,
        (series = this.paymentPlatform.labels({
          call,
          result: answered ? 'answered' : 'unanswered',
        })),
      );
    series.observe(seconds);
  };

  /**
   * The series one answer counts in, found once per route, method and status (a few dozen):
   * prom-client would otherwise hash the label set at every request.
   */
  forRequest(route: string, method: string, status: number): { done(seconds: number): void } {
    const key = `${route} ${method} ${status}`;
    let series = this.perRequest.get(key);
    if (!series) {
      const count = this.requests.labels({ route, method, status: String(status) });
      const time = this.latency.labels({ route, method });
      series = {
        done(seconds) {
          count.inc();
          time.observe(seconds);
        },
      };
      this.perRequest.set(key, series);
    }
    return series;
  }

  constructor(store: Store, now: () => number) {
    collectDefaultMetrics({ register: this.registry, prefix: 'cardpay_' });
    this.databaseUp.set(1);
    // Read from the database at each scrape: every instance on a shared database reports the
    // same backlog (alert on max, not sum).
    let backlog: ReturnType<Store['backlog']> | undefined;
    const read = () => (backlog ??= store.backlog(now()).finally(() => (backlog = undefined)));
    const registry = this.registry;
    new Gauge({
      name: 'cardpay_reconciler_backlog',
      help: 'Payments and refunds whose outcome the payment platform has not yet given',
      labelNames: ['kind'] as const,
      registers: [registry],
      async collect() {
        const b = await read().catch(() => undefined);
        if (!b) return;
        this.set({ kind: 'payment' }, b.payments);
        this.set({ kind: 'refund' }, b.refunds);
      },
    });
    new Gauge({
      name: 'cardpay_notifications_pending',
      help: 'Merchant notifications not yet delivered',
      registers: [registry],
      async collect() {
        const b = await read().catch(() => undefined);
        if (b) this.set(b.events);
      },
    });
    new Gauge({
      name: 'cardpay_notifications_oldest_pending_seconds',
      help: 'Age of the oldest notification not yet delivered (0 when none)',
      registers: [registry],
      async collect() {
        const b = await read().catch(() => undefined);
        if (b) this.set(b.oldestEventAgeMs / 1000);
      },
    });
  }

  /** Counts a business event (and a payment's outcome) from the fields it is logged with. */
  count(fields: unknown): void {
    const event = (fields as { event?: unknown } | undefined)?.event;
    if (typeof event !== 'string') return;
    this.events.inc({ event });
    if (event === 'payment_succeeded') this.payments.inc({ outcome: 'succeeded' });
    if (event === 'payment_failed') {
      const code = (fields as { declineCode?: unknown }).declineCode;
      // Codes come from the payment platform: kept only when shaped like one, so that a label
      // can never carry arbitrary text.
      this.payments.inc({
        outcome: typeof code === 'string' && /^[a-z_]{1,40}$/.test(code) ? code : 'failed',
      });
    }
    if (event === 'database_lost') this.databaseUp.set(0);
    if (event === 'database_recovered') {
      this.databaseUp.set(1);
      this.databaseRecoveries.inc();
    }
    const errType = (fields as { err?: { type?: unknown } }).err?.type;
    if (
      event === 'database_unavailable' ||
      (event === 'background_failed' &&
        (errType === 'StoreUnavailable' || errType === 'StoreError'))
    )
      this.databaseErrors.inc();
  }

  /** A logger that counts each business event it logs; `log` may be absent (logging off). */
  eventLogger(log: EventLogger | undefined): EventLogger {
    const counting =
      (level: keyof EventLogger) =>
      (...args: unknown[]): void => {
        this.count(args[0]);
        (log?.[level] as ((...a: unknown[]) => void) | undefined)?.apply(log, args);
      };
    return {
      info: counting('info'),
      warn: counting('warn'),
      error: counting('error'),
    } as EventLogger;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
