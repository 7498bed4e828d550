import { toHex } from '../../packages/sdk/src/core/encoding';
import type { Host } from '../../packages/sdk/src/core/host';
import { UniqueValues } from '../../packages/sdk/src/core/unique';

/** A host like a WeChat plugin's: storage, but no random source. */
function pluginLikeHost(storage = new Map<string, string>()): Host {
  return {
    request: async () => {
      throw new Error('no network here');
    },
    scanCode: async () => ({ ok: false, reason: 'cancelled', message: '' }),
    storage: {
      get: async (k) => storage.get(k),
      set: async (k, v) => void storage.set(k, v),
      remove: async (k) => void storage.delete(k),
    },
    now: () => 1_800_000_000_000,
  };
}

describe('unique values without a random source', () => {
  const random = Math.random;
  const now = Date.now;
  beforeEach(() => {
    // The worst case: a frozen clock and a Math.random that always says the same.
    Math.random = () => 0.5;
    Date.now = () => 1_800_000_000_000;
  });
  afterEach(() => {
    Math.random = random;
    Date.now = now;
  });

  it('never repeats, within a generator, between generators of one launch, or across launches', async () => {
    const storage = new Map<string, string>();
    const seen = new Set<string>();
    const draw = async (u: UniqueValues, n: number) => {
      for (let i = 0; i < n; i++) seen.add(toHex(await u.bytes(16, 'nonce')));
    };
    const a = new UniqueValues(pluginLikeHost(storage));
    const b = new UniqueValues(pluginLikeHost(storage));
    await Promise.all([draw(a, 500), draw(b, 500)]);
    // The next launch of the plugin: a fresh module (its instance count starts over) that reads
    // the stored launch count; only that count tells its values apart from the last launch's.
    let Fresh!: typeof UniqueValues;
    jest.isolateModules(() => {
      Fresh = (
        require('../../packages/sdk/src/core/unique') as { UniqueValues: typeof UniqueValues }
      ).UniqueValues;
    });
    await draw(new Fresh(pluginLikeHost(storage)), 500);
    expect(seen.size).toBe(1500);
    // a and b were one launch (told apart by their instance numbers); Fresh was the second.
    expect(JSON.parse(storage.get('cardpay.unique.v1')!).launches).toBe(2);
    expect(a.strong).toBe(false);
  });

  it('gives the asked length, and mixes the host’s random source in rather than trusting it', async () => {
    const u = new UniqueValues(pluginLikeHost());
    expect((await u.bytes(16)).length).toBe(16);
    // A broken or hostile host whose "random" bytes never change.
    const stuck = new UniqueValues({
      ...pluginLikeHost(),
      randomBytes: async (n) => new Uint8Array(n).fill(9),
    });
    expect(stuck.strong).toBe(true);
    const values = new Set<string>();
    for (let i = 0; i < 200; i++) values.add(Buffer.from(await stuck.bytes(16)).toString('hex'));
    expect(values.size).toBe(200);
    expect([...values].some((v) => v === '09'.repeat(16))).toBe(false);
  });

  it('still draws when the lent source fails', async () => {
    const u = new UniqueValues({
      ...pluginLikeHost(),
      randomBytes: async () => {
        throw new Error('no entropy today');
      },
    });
    expect((await u.bytes(16)).length).toBe(16);
  });
});
