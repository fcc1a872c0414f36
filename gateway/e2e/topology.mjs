// Drives the production topology as its users do, through nginx over HTTPS: sign up, plan a
// hangout, upload a photo straight to the external S3 server with the presigned PUT, confirm
// it, download it, wait for the photo worker's rendition, delete the hangout and see the
// photo's URLs stop working (file deletions relayed from hangout-core to file-core).
//
//   node topology.mjs <https base URL> <CA PEM path> <JPEG path>
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

const [httpsBase, caPath, jpegPath] = process.argv.slice(2);
if (!jpegPath) {
  console.error('usage: node topology.mjs <https base> <ca.pem> <photo.jpg>');
  process.exit(2);
}
const ca = fs.readFileSync(caPath);
const photo = fs.readFileSync(jpegPath);
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

function post(path, body, headers) {
  return new Promise((resolve, reject) => {
    const request = https.request(`${httpsBase}${path}`, { method: 'POST', ca, headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

async function graphql(query, variables = {}, token = undefined) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await post('/graphql', JSON.stringify({ query, variables }), headers);
  let json = {};
  try { json = JSON.parse(response.body); } catch { /* checked by the caller */ }
  return { ...response, json };
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/// Polls `probe` every 250 ms for up to `seconds`; returns its last value.
async function eventually(seconds, probe) {
  const deadline = Date.now() + seconds * 1000;
  let value = await probe();
  while (!value && Date.now() < deadline) {
    await sleep(250);
    value = await probe();
  }
  return value;
}

try {
  const email = `topology-${Date.now()}@example.com`;
  const signUp = await graphql(
    'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id name } } }',
    { input: { name: 'Topology User', email, password: 'topology password 1' } },
  );
  check('signUp through nginx', signUp.json?.data?.signUp?.user?.name === 'Topology User', `${signUp.status} ${signUp.body}`);
  const token = signUp.json?.data?.signUp?.accessToken;

  const anonymous = await graphql('{ me { name } }');
  check('no token: UNAUTHENTICATED', anonymous.json?.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED', anonymous.body);
  const graphiql = await new Promise((resolve, reject) => {
    https.get(`${httpsBase}/graphiql`, { ca }, (response) => { response.resume(); resolve(response.statusCode); }).on('error', reject);
  });
  check('production mode serves no GraphiQL', graphiql === 404, String(graphiql));

  const created = await graphql(
    'mutation($input: CreateHangoutInput!) { createHangout(input: $input) { hangout { id title } } }',
    { input: { title: 'Production run', date: '2026-12-24T18:00:00Z' } },
    token,
  );
  const hangoutId = created.json?.data?.createHangout?.hangout?.id;
  check('createHangout', Boolean(hangoutId), created.body);

  const md5 = crypto.createHash('md5').update(photo).digest('base64');
  const uploads = await graphql(
    `mutation($input: CreateMemoryUploadsInput!) {
       createMemoryUploads(input: $input) { uploads { url method headers { name value } memory { id status } } }
     }`,
    { input: { hangoutId, files: [{ fileName: 'beach.jpg', contentType: 'image/jpeg', size: photo.length, md5 }] } },
    token,
  );
  const upload = uploads.json?.data?.createMemoryUploads?.uploads?.[0];
  check('createMemoryUploads', upload?.method === 'PUT' && upload?.memory?.status === 'PENDING', uploads.body);
  const memoryId = upload?.memory?.id;

  // Straight to S3, as a browser does: exactly the signed headers (fetch sets the length).
  const headers = Object.fromEntries((upload?.headers ?? [])
    .filter(({ name }) => name.toLowerCase() !== 'content-length')
    .map(({ name, value }) => [name, value]));
  const put = await fetch(upload.url, { method: 'PUT', headers, body: photo });
  check('presigned PUT to the external S3', put.ok, `${put.status} ${await put.text()}`);

  const confirmed = await graphql(
    'mutation($input: ConfirmMemoryUploadsInput!) { confirmMemoryUploads(input: $input) { memories { id status } failures { reason message } } }',
    { input: { memoryIds: [memoryId] } },
    token,
  );
  check('confirmMemoryUploads', confirmed.json?.data?.confirmMemoryUploads?.memories?.[0]?.status === 'UPLOADED', confirmed.body);

  const memory = await graphql(
    'query($id: ID!) { memory(id: $id) { downloadUrl } }',
    { id: memoryId },
    token,
  );
  const downloadUrl = memory.json?.data?.memory?.downloadUrl;
  const downloaded = downloadUrl ? await fetch(downloadUrl) : undefined;
  const bytes = downloaded?.ok ? Buffer.from(await downloaded.arrayBuffer()) : Buffer.alloc(0);
  check('presigned download returns the exact bytes', bytes.equals(photo), `${downloaded?.status} ${bytes.length} bytes`);

  // The photo worker (file-core in the worker role) renders it.
  const imageUrl = await eventually(60, async () => {
    const processed = await graphql(
      'query($id: ID!) { memory(id: $id) { processing imageUrl(size: PREVIEW) } }',
      { id: memoryId },
      token,
    );
    return processed.json?.data?.memory?.imageUrl;
  });
  check('the photo worker made the preview', Boolean(imageUrl));
  if (imageUrl) {
    const preview = await fetch(imageUrl);
    check('the preview downloads as a JPEG', preview.ok && preview.headers.get('content-type') === 'image/jpeg', `${preview.status} ${preview.headers.get('content-type')}`);
  }

  const page = await graphql(
    '{ hangouts(first: 5) { totalCount nodes { title memories(first: 5) { nodes { fileName downloadUrl } } } } }',
    {},
    token,
  );
  check('a page with its memories', page.json?.data?.hangouts?.nodes?.[0]?.memories?.nodes?.[0]?.fileName === 'beach.jpg', page.body);

  const deleted = await graphql(
    'mutation($input: DeleteHangoutInput!) { deleteHangout(input: $input) { deletedId } }',
    { input: { id: hangoutId } },
    token,
  );
  check('deleteHangout', deleted.json?.data?.deleteHangout?.deletedId === hangoutId, deleted.body);
  // hangout-core owes file-core the deletion (its outbox); once file-core has carried it
  // out, the URLs issued before stop working, well within their 15-minute window.
  const gone = await eventually(60, async () => {
    const [original, rendition] = await Promise.all([fetch(downloadUrl), imageUrl ? fetch(imageUrl) : { status: 404 }]);
    return original.status === 404 && rendition.status === 404;
  });
  check("a deleted hangout's photo URLs stop working", gone);

  const ready = await new Promise((resolve, reject) => {
    https.get(`${httpsBase}/readyz`, { ca }, (response) => { response.resume(); resolve(response.statusCode); }).on('error', reject);
  });
  check('readiness through nginx', ready === 200, String(ready));
} catch (error) {
  failures += 1;
  console.log(`FAIL unexpected error: ${error.stack}`);
}
console.log(`topology: ${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
