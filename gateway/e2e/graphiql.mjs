// Opens GraphiQL on a running gateway in headless Chromium, runs a mutation through the
// editor and checks its result on the page. The browser may reach nothing but the gateway:
// every other request is refused, so a CDN dependency would fail the test.
//
//   node graphiql.mjs http://127.0.0.1:8080
//
// Exits 0 on success; prints the reason and exits 1 otherwise.
import { chromium } from 'playwright-core';

const base = process.argv[2];
if (!base) {
  console.error('usage: node graphiql.mjs <gateway base URL>');
  process.exit(2);
}
const origin = new URL(base).origin;
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let failed = false;
try {
  const page = await browser.newPage();
  const foreign = [];
  await page.route('**/*', (route) => {
    if (new URL(route.request().url()).origin === origin) return route.continue();
    foreign.push(route.request().url());
    return route.abort();
  });
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));

  await page.goto(`${origin}/graphiql`, { waitUntil: 'networkidle' });
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 20000 });

  const name = `Browser ${Date.now()}`;
  const query = `mutation {
  signUp(input: { name: "${name}", email: "browser-${Date.now()}@example.com", password: "browser password" }) {
    user { name email }
  }
}`;
  await page.evaluate((text) => {
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(text);
  }, query);
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    (expected) => {
      const result = document.querySelector('.graphiql-response .CodeMirror');
      return result && result.CodeMirror.getValue().includes(expected);
    },
    name,
    { timeout: 20000 },
  );
  const shown = await page.evaluate(
    () => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue(),
  );
  if (foreign.length > 0) throw new Error(`GraphiQL asked for foreign URLs: ${foreign.join(', ')}`);
  if (errors.length > 0) throw new Error(`page errors: ${errors.join('; ')}`);
  console.log(`GraphiQL ran the mutation; result shown:\n${shown}`);
} catch (error) {
  failed = true;
  console.error(`GraphiQL test failed: ${error.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
