import { toHex, utf8Encode } from './encoding';
import type { Host } from './host';
import { hmacSha256, sha256 } from './sha256';

// Nonces, idempotency keys and the enrolment salt must never repeat; none of them has to be
// secret (the challenge and the terminal secret come from the platform). A WeChat plugin has no
// secure random source of its own (wx.getRandomValues is not offered to plugins), so this
// generator makes values unique by construction, and mixes in what a host lends:
//
//   key   = SHA-256(stored seed ‖ launch number ‖ instance number ‖ time ‖ Math.random ‖ device facts)
//   value = HMAC-SHA256(key, draw number ‖ context ‖ 32 lent random bytes, if any)   (truncated)
//
// The stored seed is drawn once per install from everything available then; the launch number is
// kept beside it and raised (and stored) before any value of a launch is drawn; the instance
// number tells apart generators of one launch; the draw number never repeats within a generator.
// So two values share an HMAC input only if the seed, launch, instance and draw all match, which
// the counters rule out while storage holds; if storage is wiped the terminal's credentials go
// with it, and a new terminal (new secret, fresh nonce space) starts over. docs/randomness.md
// says this at length.

const STORE_KEY = 'cardpay.unique.v1';
let instances = 0;

interface Kept {
  seed: string;
  launches: number;
}

/** Draws unique bytes: the host's own random source where it lends one, else the generator above. */
export class UniqueValues {
  private readonly host_: Host;
  private key_?: Promise<Uint8Array>;
  private draws_ = 0;
  private readonly instance_ = ++instances;

  constructor(host: Host) {
    this.host_ = host;
  }

  /** Whether values come from a lent random source (`true`) or the keyed generator. */
  get strong(): boolean {
    return typeof this.host_.randomBytes === 'function';
  }

  /**
   * `length` bytes (at most 32) that no other call returns; `context` is mixed in when given. A
   * random source the host lends is mixed in too, never used as it is: a buggy or hostile host
   * whose values repeat cannot make these repeat, and a sound one makes them unpredictable.
   */
  async bytes(length: number, context = ''): Promise<Uint8Array> {
    const key = await (this.key_ ??= this.launch_());
    const draw = ++this.draws_;
    let lent = '';
    if (this.host_.randomBytes) {
      try {
        lent = toHex(await this.host_.randomBytes(32));
      } catch {
        lent = ''; // a source that fails is no worse than none
      }
    }
    return hmacSha256(key, utf8Encode(`${draw}\n${context}\n${lent}`)).subarray(0, length);
  }

  private async launch_(): Promise<Uint8Array> {
    const storage = this.host_.storage;
    let kept: Kept | undefined;
    try {
      const text = await storage.get(STORE_KEY);
      const parsed = text ? (JSON.parse(text) as Kept) : undefined;
      if (parsed && /^[0-9a-f]{64}$/.test(parsed.seed) && Number.isSafeInteger(parsed.launches))
        kept = parsed;
    } catch {
      kept = undefined;
    }
    const seed = kept?.seed ?? toHex(sha256(utf8Encode(`seed\n${this.observe_()}`)));
    const launches = (kept?.launches ?? 0) + 1;
    // Stored before any value of this launch is drawn: the next launch cannot reuse the number.
    await storage.set(STORE_KEY, JSON.stringify({ seed, launches })).catch(() => undefined);
    return sha256(
      utf8Encode(`cardpay-unique-v1\n${seed}\n${launches}\n${this.instance_}\n${this.observe_()}`),
    );
  }

  /** Everything the moment offers: time, Math.random and what the host can say about the device. */
  private observe_(): string {
    let facts = '';
    try {
      facts = this.host_.entropy?.() ?? '';
    } catch {
      facts = '';
    }
    const now = this.host_.now ? this.host_.now() : Date.now();
    return `${now}\n${Date.now()}\n${Math.random()}\n${Math.random()}\n${Math.random()}\n${facts}`;
  }
}
