// The official GraphQL-over-HTTP audit (graphql-http's auditServer) against a running gateway.
// Prints every result; exits 1 on any MUST failure ("error") or SHOULD warning ("warn").
//
//   node audit.mjs http://127.0.0.1:8080/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <GraphQL endpoint URL>');
  process.exit(2);
}
const results = await auditServer({ url });
let errors = 0;
let warnings = 0;
for (const result of results) {
  if (result.status === 'error') errors += 1;
  if (result.status === 'warn') warnings += 1;
  const mark = { ok: 'ok  ', notice: 'note', warn: 'WARN', error: 'FAIL' }[result.status] ?? result.status;
  const reason = result.status === 'ok' ? '' : ` -- ${result.reason ?? ''}`;
  console.log(`${mark} ${result.name}${reason}`);
}
console.log(`audit: ${results.length - errors - warnings} passed, ${errors + warnings} failed (${errors} MUST, ${warnings} SHOULD)`);
process.exit(errors + warnings === 0 ? 0 : 1);
