import { fuzzHttp, fuzzReader, type HttpFuzzReport } from '../../scripts/fuzz/run';

// The short form of `npm run fuzz`.
describe('fuzz: every endpoint, signed and unsigned, with random and mutated requests', () => {
  let report: HttpFuzzReport;
  beforeAll(async () => {
    report = await fuzzHttp({ requests: 2500, seed: 20261204 });
  }, 60000);

  it('never answers 5xx, never drops the connection, never leaves a rejection unhandled', () => {
    expect(report.serverErrors).toEqual([]);
    expect(report.unhandled).toEqual([]);
  });

  it('answers every refusal in the protocol’s error shape', () => {
    expect(report.badShapes).toEqual([]);
  });

  it('reached the handlers past authentication, not only the front door', () => {
    const signed = Object.entries(report.byClass)
      .filter(([k]) => k.startsWith('signed/'))
      .reduce((n, [, v]) => n + v, 0);
    expect(signed).toBeGreaterThan(500);
    expect(report.signedPastAuthentication).toBeGreaterThan(signed / 2);
    expect(report.byStatus['400']).toBeGreaterThan(100);
  });

  it('still serves correct checkouts afterwards, with its memory flat', () => {
    expect(report.checkoutsAfter.succeeded).toBe(report.checkoutsAfter.tried);
    expect(report.heapMb.atEnd).toBeLessThan(report.heapMb.afterWarmUp * 1.5 + 5);
  });
});

describe('fuzz: the card reader', () => {
  it('returns a typed result for every random, truncated, corrupted or huge payload', () => {
    const report = fuzzReader({ inputs: 5000, seed: 20261204 });
    expect(report.throws).toEqual([]);
    expect(report.byResult.card).toBeGreaterThan(0);
    expect(report.byResult['refused:corrupt']).toBeGreaterThan(0);
  });
});
