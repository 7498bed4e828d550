// The JSX typings of `<cardpay-checkout>` as a Taro page sees them: right.tsx compiles, and each
// wrong-*.tsx fails to compile with the error it was written for.
const ts = require('typescript');
const path = require('node:path');
const fs = require('node:fs');

const dir = path.join(__dirname, 'types');
const expected = {
  'wrong-amount.tsx': /Type 'string' is not assignable to type 'number'/,
  'wrong-detail.tsx': /Property 'total' does not exist/,
  'wrong-locale.tsx': /'"fr_FR"' is not assignable/,
};

function diagnostics(file) {
  const program = ts.createProgram([path.join(dir, file)], {
    jsx: ts.JsxEmit.ReactJSX,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2017,
    types: ['react'],
    typeRoots: [path.join(__dirname, '../node_modules/@types')],
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

let failed = 0;
for (const file of fs.readdirSync(dir).sort()) {
  const found = diagnostics(file);
  const want = expected[file];
  const ok = want ? found.some((m) => want.test(m)) : found.length === 0;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${file}: ${want ? `fails as it should (${want})` : 'compiles'}`,
  );
  if (!ok) {
    failed++;
    for (const m of found) console.log(`     ${m}`);
  }
}
if (failed) process.exit(1);
