// Calls the gateway from pages on other origins in headless Chromium, as a frontend on a dev
// server would: a page on http://localhost:PORT (allowed in dev mode) must get its answer
// through a real preflight; the same page on http://127.0.0.2:PORT (not allowed) must be
// blocked by the browser. The pages are served by this script.
//
//   node cors.mjs http://127.0.0.1:8080
//
// Exits 0 on success; prints the reason and exits 1 otherwise.
import http from 'node:http';
import { chromium } from 'playwright-core';

const gateway = process.argv[2];
if (!gateway) {
  console.error('usage: node cors.mjs <gateway base URL>');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// The page asks with an Authorization header and JSON, so the browser must preflight.
const page = `<!doctype html><html><body><script>
fetch(${JSON.stringify(`${gateway}/graphql`)}, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-token' },
  body: JSON.stringify({ query: '{ __typename }' }),
})
  .then((response) => response.json())
  .then((body) => { document.title = 'answered:' + body.data.__typename; })
  .catch((error) => { document.title = 'blocked:' + error.name; });
</script></body></html>`;

const server = http.createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'text/html' });
  response.end(page);
});
await new Promise((resolve) => server.listen(0, '0.0.0.0', resolve));
const { port } = server.address();

const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let failed = false;
try {
  for (const [origin, expected] of [
    [`http://localhost:${port}`, 'answered:Query'],
    [`http://127.0.0.2:${port}`, 'blocked:TypeError'],
  ]) {
    const tab = await browser.newPage();
    await tab.goto(`${origin}/`);
    await tab.waitForFunction(() => document.title !== '', null, { timeout: 20000 });
    const title = await tab.title();
    if (title !== expected) throw new Error(`${origin}: expected ${expected}, got ${title}`);
    console.log(`${origin}: ${title}`);
    await tab.close();
  }
} catch (error) {
  failed = true;
  console.error(`CORS test failed: ${error.message}`);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
