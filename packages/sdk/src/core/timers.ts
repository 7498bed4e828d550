// WeChat, browsers and Node all provide setTimeout, but the core compiles without any host's
// typings. It is named at call time (not captured) so that test fake timers take effect, and
// reached as a plain global: old WeChat engines have no \`globalThis\`.
declare const setTimeout: (callback: () => void, ms: number) => unknown;

export function setTimer(callback: () => void, ms: number): void {
  setTimeout(callback, ms);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimer(resolve, ms));
}
