import { setTimer } from './timers';

/** A minimal typed event emitter: listeners run in order; one that throws does not stop the others. */
export class Emitter<Events extends Record<string, unknown>> {
  private listeners_: { [K in keyof Events]?: ((payload: Events[K]) => void)[] } = {};

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    (this.listeners_[event] ??= []).push(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): void {
    const list = this.listeners_[event];
    if (list) this.listeners_[event] = list.filter((l) => l !== listener);
  }

  protected emit_<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of this.listeners_[event] ?? []) {
      try {
        listener(payload);
      } catch (error) {
        // A host's listener bug must not break the payment flow; surface it asynchronously.
        setTimer(() => {
          throw error;
        }, 0);
      }
    }
  }

  protected removeAllListeners_(): void {
    this.listeners_ = {};
  }
}
