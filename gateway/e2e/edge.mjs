// Drives a GraphQL flow through nginx over HTTPS and HTTP/2, as a browser would reach the
// system in production, and checks what the edge adds: security headers on every response,
// request ids, gzip, the HTTP to HTTPS redirect, TLS 1.2+ only; and subscriptions with the
// `graphql-ws` client (what Apollo Client and urql use) over the edge's WebSocket upgrade.
//
//   NODE_EXTRA_CA_CERTS is not needed: the CA is passed explicitly.
//   node edge.mjs <https base URL> <http base URL> <CA PEM path>
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import zlib from 'node:zlib';

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [httpsBase, httpBase, caPath] = process.argv.slice(2);
if (!caPath) {
  console.error('usage: node edge.mjs <https base> <http base> <ca.pem>');
  process.exit(2);
}
const ca = fs.readFileSync(caPath);
let failures = 0;
let passes = 0;
function check(name, condition, detail = '') {
  if (condition) {
    passes += 1;
    console.log(`ok   ${name}`);
  } else {
    failures += 1;
    console.log(`FAIL ${name} ${detail}`);
  }
}

const session = http2.connect(httpsBase, { ca });
session.on('error', (error) => {
  console.error(`HTTP/2 session failed: ${error.message}`);
  process.exit(1);
});

function request(method, path, headers = {}, body = undefined) {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ...headers });
    const chunks = [];
    let responseHeaders = {};
    stream.on('response', (h) => { responseHeaders = h; });
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => resolve({ headers: responseHeaders, status: responseHeaders[':status'], body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body); else stream.end();
  });
}

async function graphql(query, variables = {}, token = undefined, extra = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...extra };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await request('POST', '/graphql', headers, JSON.stringify({ query, variables }));
  let json = {};
  try { json = JSON.parse(response.body.toString('utf8')); } catch { /* checked below */ }
  return { ...response, json };
}

function securityHeaders(name, headers) {
  check(`${name}: HSTS`, String(headers['strict-transport-security'] || '').includes('max-age='));
  check(`${name}: nosniff`, headers['x-content-type-options'] === 'nosniff');
  check(`${name}: frame policy`, headers['x-frame-options'] === 'DENY');
  check(`${name}: referrer policy`, Boolean(headers['referrer-policy']));
}

try {
  const email = `edge-${Date.now()}@example.com`;
  const signUp = await graphql(
    'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id name } } }',
    { input: { name: 'Edge User', email, password: 'edge password 1' } },
    undefined,
    { 'x-request-id': 'edge-test-request-1' },
  );
  check('signUp through the edge', signUp.status === 200 && signUp.json?.data?.signUp?.user?.name === 'Edge User', `${signUp.status} ${signUp.body}`);
  check('request id kept end to end', signUp.headers['x-request-id'] === 'edge-test-request-1', signUp.headers['x-request-id']);
  securityHeaders('GraphQL response', signUp.headers);
  check('negotiated HTTP/2 over TLS', session.alpnProtocol === 'h2', session.alpnProtocol);
  const token = signUp.json?.data?.signUp?.accessToken;

  const me = await graphql('{ me { name email } }', {}, token);
  check('me with the access token', me.json?.data?.me?.email === email, me.body.toString());
  check('a request id is minted when absent', Boolean(me.headers['x-request-id']));

  const created = await graphql(
    'mutation($input: CreateHangoutInput!) { createHangout(input: $input) { hangout { id title } } }',
    { input: { title: 'Through the edge', date: '2026-12-01T18:30:00Z' } },
    token,
  );
  check('createHangout', created.json?.data?.createHangout?.hangout?.title === 'Through the edge', created.body.toString());
  const listed = await graphql('{ hangouts(first: 5) { totalCount nodes { title } } }', {}, token);
  check('hangouts page', listed.json?.data?.hangouts?.totalCount === 1, listed.body.toString());

  // Live updates: subscribe with the graphql-ws client over wss through nginx, then change
  // the hangout over HTTP and receive the event.
  const hangoutId = created.json?.data?.createHangout?.hangout?.id;
  const wsUrl = `${httpsBase.replace('https://', 'wss://')}/graphql`;
  const client = createClient({
    url: wsUrl,
    webSocketImpl: class extends WebSocket {
      constructor(address, protocols) { super(address, protocols, { ca }); }
    },
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: false,
    retryAttempts: 0,
  });
  const received = [];
  const subscribed = new Promise((resolve, reject) => {
    const unsubscribe = client.subscribe(
      {
        query: 'subscription($id: ID!) { hangoutEvents(hangoutId: $id) { __typename ... on HangoutUpdated { hangout { title } } } }',
        variables: { id: hangoutId },
      },
      {
        next: (value) => { received.push(value); unsubscribe(); resolve(value); },
        error: reject,
        complete: () => resolve(undefined),
      },
    );
  });
  // The subscription is registered shortly after the socket is acknowledged: the hangout is
  // renamed until an event arrives (polled, at most 20 times).
  await new Promise((resolve) => client.on('connected', resolve));
  let event;
  for (let attempt = 0; attempt < 20 && event === undefined; attempt += 1) {
    const renamed = await graphql(
      'mutation($input: UpdateHangoutInput!) { updateHangout(input: $input) { hangout { title } } }',
      { input: { id: hangoutId, title: 'Renamed live' } },
      token,
    );
    if (attempt === 0) {
      check('updateHangout', renamed.json?.data?.updateHangout?.hangout?.title === 'Renamed live', renamed.body.toString());
    }
    event = await Promise.race([subscribed, new Promise((resolve) => { setTimeout(resolve, 500); })]);
  }
  check('graphql-ws subscription through the edge gets the event', event?.data?.hangoutEvents?.hangout?.title === 'Renamed live', JSON.stringify(event));
  const refused = await new Promise((resolve) => {
    const outsider = createClient({
      url: wsUrl,
      webSocketImpl: class extends WebSocket {
        constructor(address, protocols) { super(address, protocols, { ca }); }
      },
      connectionParams: { authorization: 'Bearer not-a-token' },
      retryAttempts: 0,
      on: { closed: (closeEvent) => resolve(closeEvent?.code) },
    });
    outsider.subscribe({ query: 'subscription { viewerEvents { __typename } }' }, { next() {}, error() {}, complete() {} });
  });
  check('a bad token is refused with 4403', refused === 4403, String(refused));
  await client.dispose();

  const anonymous = await graphql('{ me { name } }');
  check('no token: UNAUTHENTICATED', anonymous.json?.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED', anonymous.body.toString());

  const asset = await request('GET', '/graphiql/assets/graphiql.js', { 'accept-encoding': 'gzip' });
  check('GraphiQL asset served', asset.status === 200, String(asset.status));
  check('GraphiQL asset gzipped', asset.headers['content-encoding'] === 'gzip', asset.headers['content-encoding']);
  if (asset.headers['content-encoding'] === 'gzip') {
    check('gzip body inflates', zlib.gunzipSync(asset.body).length > asset.body.length);
  }
  securityHeaders('asset response', asset.headers);

  const health = await request('GET', '/healthz');
  check('health route', health.status === 200, String(health.status));
  const ready = await request('GET', '/readyz');
  check('readiness route', ready.status === 200, String(ready.status));

  const grpc = await request('POST', '/hangout.v1.AuthService/SignIn', { 'content-type': 'application/grpc' }, Buffer.alloc(5));
  check('gRPC services are not reachable through the edge', grpc.status !== 200 || !String(grpc.headers['content-type'] || '').startsWith('application/grpc'), String(grpc.status));

  const redirect = await new Promise((resolve, reject) => {
    http.get(`${httpBase}/graphql`, (response) => { response.resume(); resolve(response); }).on('error', reject);
  });
  check('plain HTTP redirects to HTTPS', redirect.statusCode === 301 && String(redirect.headers.location || '').startsWith('https://'), `${redirect.statusCode} ${redirect.headers.location}`);
  check('redirect carries security headers', redirect.headers['x-content-type-options'] === 'nosniff');

  const url = new URL(httpsBase);
  const oldTls = await new Promise((resolve) => {
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => { socket.end(); resolve('connected'); });
    socket.on('error', () => resolve('refused'));
  });
  check('TLS 1.1 refused', oldTls === 'refused', oldTls);
} catch (error) {
  failures += 1;
  console.log(`FAIL unexpected error: ${error.stack}`);
} finally {
  session.close();
}
console.log(`edge: ${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
