// WeChat, browsers and Node all provide setTimeout, but the core compiles without any host's
// typings. It is looked up at call time so that test fake timers take effect.
type SetTimeout = (callback: () => void, ms: number) => unknown;

export function setTimer(callback: () => void, ms: number): void {
  (globalThis as unknown as { setTimeout: SetTimeout }).setTimeout(callback, ms);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimer(resolve, ms));
}
