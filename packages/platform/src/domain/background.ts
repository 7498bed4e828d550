import type { Ctx, Worker } from './context';

/**
 * Work the platform does on a timer, outside any request (settling unknown outcomes, delivering
 * notifications). One pass runs at a time, and a pass never rejects: a
 * failure (a database locked by a backup, a payment platform down) is logged, and the next pass
 * tries again.
 */
export abstract class Background implements Worker {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private queued?: Promise<void>;

  constructor(protected readonly ctx: Ctx) {}

  protected abstract pass(): Promise<void>;

  start(everyMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), everyMs);
    this.timer.unref?.();
    void this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // A pass queued behind the running one finishes too.
    await (this.queued ?? this.running);
  }

  /**
   * Runs a pass that starts now or, when one is under way (it may have read the clock and the
   * database already), right after it: what the caller changed before calling is always seen.
   * Calls while one is under way share the one queued after it.
   */
  tick(): Promise<void> {
    if (this.running) {
      this.queued ??= this.running.then(() => {
        this.queued = undefined;
        return this.tick();
      });
      return this.queued;
    }
    this.running = this.pass()
      .catch((error: Error) => {
        this.ctx.log?.error(
          { event: 'background_failed', err: { type: error.name, message: error.message } },
          'background work failed; it runs again on the next pass',
        );
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}
