// npm run fuzz -- [--requests N] [--inputs N] [--seed N]
// Random and mutated requests at every endpoint (unsigned and correctly signed), then random and
// mutated payloads at the card reader. Exits 1 on any 5xx, throw, unhandled rejection, error not
// in PROTOCOL.md's shape, growing memory, or a correct checkout refused afterwards.
import { fuzzHttp, fuzzReader } from './fuzz/run';

async function main() {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    if (i < 0) return fallback;
    const n = Number(args[i + 1]);
    if (!Number.isInteger(n) || n < 0) {
      console.error(`fuzz: --${name} must be a whole number, got ${args[i + 1]}`);
      process.exit(2);
    }
    return n;
  };
  for (const a of args.filter((a) => a.startsWith('--')))
    if (!['--requests', '--inputs', '--seed'].includes(a)) {
      console.error(`fuzz: unknown flag ${a} (known: --requests, --inputs, --seed)`);
      process.exit(2);
    }
  const seed = flag('seed', Date.now() % 100000);
  const requests = flag('requests', 20000);
  const inputs = flag('inputs', 100000);
  console.log(`fuzz: ${requests} requests, ${inputs} reader inputs, seed ${seed}`);
  const http = await fuzzHttp({ requests, seed });
  const list = (o: Record<string, number>) =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  console.log(`requests by class: ${list(http.byClass)}`);
  console.log(`responses by status: ${list(http.byStatus)}`);
  console.log(
    `signed requests past authentication (answered other than 401): ${http.signedPastAuthentication}`,
  );
  console.log(
    `5xx or dropped: ${http.serverErrors.length}; errors not in the protocol's shape: ${http.badShapes.length}; unhandled rejections or exceptions: ${http.unhandled.length}`,
  );
  console.log(`resent after the server closed a kept-alive connection: ${http.resent}`);
  for (const e of [...http.serverErrors.slice(0, 5), ...http.badShapes.slice(0, 5)])
    console.log(`  ${e.status} ${e.request}: ${e.body}`);
  for (const u of http.unhandled.slice(0, 3)) console.log(`  ${u}`);
  const growth = http.heapMb.atEnd / Math.max(1, http.heapMb.afterWarmUp);
  console.log(
    `heap after GC: ${http.heapMb.afterWarmUp.toFixed(1)} MB after a fifth, ${http.heapMb.atEnd.toFixed(1)} MB at the end (${growth.toFixed(2)}x)`,
  );
  console.log(
    `correct checkouts afterwards: ${http.checkoutsAfter.succeeded} of ${http.checkoutsAfter.tried}`,
  );
  console.log(`http fuzz took ${http.seconds.toFixed(1)} s`);
  const reader = fuzzReader({ inputs, seed });
  console.log(
    `card reader: ${reader.inputs} inputs (each read twice: readCard, parseCard): ${list(reader.byResult)}`,
  );
  console.log(`card reader throws: ${reader.throws.length}`);
  for (const t of reader.throws.slice(0, 3))
    console.log(`  ${t.error} on ${JSON.stringify(t.input)}`);
  console.log(`reader fuzz took ${reader.seconds.toFixed(1)} s`);
  const failed =
    http.serverErrors.length +
      http.badShapes.length +
      http.unhandled.length +
      reader.throws.length >
      0 ||
    growth > 1.5 ||
    http.checkoutsAfter.succeeded < http.checkoutsAfter.tried;
  process.exit(failed ? 1 : 0);
}

main().catch((error) => {
  console.error(`fuzz: ${(error as Error).stack ?? error}`);
  process.exit(1);
});
