import type { Ctx } from './context';

/**
 * Work the platform does on a timer, outside any request (settling unknown outcomes, delivering
 * notifications). Concurrent ticks share the pass in progress, and a pass never rejects: a
 * failure (a database locked by a backup, a payment platform down) is logged, and the next pass
 * tries again.
 */
export abstract class Background {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

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
    await this.running;
  }

  tick(): Promise<void> {
    this.running ??= this.pass()
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
