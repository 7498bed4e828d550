import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyConfig, defaultConfig } from '../../packages/platform/src/infra/config';

// The configuration files the README and the operator guide show are accepted by the platform
// as shown, once their placeholders (a merchant key's SHA-256, a webhook secret) hold real values.

const root = join(__dirname, '../..');

function samples(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)]
    .map((m) => m[1])
    .filter((json) => json.includes('"merchants"'));
}

describe.each(['README.md', 'docs/operator-guide.md'])('the configuration shown in %s', (file) => {
  it('is read by the platform as shown', () => {
    const found = samples(file);
    expect(found.length).toBeGreaterThan(0);
    for (const json of found) {
      const real = json
        .replace(
          /"<sha256 hex of the merchant's API key>"/g,
          JSON.stringify(createHash('sha256').update('sk_live_example').digest('hex')),
        )
        .replace(/"whsec_<random>"/g, '"whsec_0123456789abcdef0123456789abcdef"');
      const config = applyConfig(JSON.parse(real), defaultConfig());
      expect(config.merchants.map((m) => m.id)).toContain('mch_shop');
      expect(config.discounts.CNY[0]).toEqual({ from: 0, rateBps: 0 });
    }
  });
});
