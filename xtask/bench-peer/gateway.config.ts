// Hive Gateway serving the composed supergraph, with a JWT check equal in work to ours.
//
// Hive Gateway's own JWT plugin (`@graphql-yoga/plugin-jwt`) verifies with `jsonwebtoken`,
// which has no EdDSA, so it rejects our Ed25519 tokens. This small plugin does what ours does
// instead: fetch our gateway's JWKS once, verify each token's Ed25519 signature with Node's
// crypto, check `exp`, and put the payload in the context, where mesh.config.ts takes `sub`
// from for `x-user-id`.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { defineConfig, type GatewayPlugin } from '@graphql-hive/gateway';
import { GraphQLError } from 'graphql';

let keys: Promise<Map<string, KeyObject>> | undefined;

function jwks(): Promise<Map<string, KeyObject>> {
  keys ??= fetch(process.env.BENCH_JWKS_URL ?? '')
    .then((response) => response.json())
    .then((set: { keys: Array<{ kid?: string } & Record<string, unknown>> }) => {
      const map = new Map<string, KeyObject>();
      for (const jwk of set.keys) {
        map.set(jwk.kid ?? '', createPublicKey({ key: jwk as never, format: 'jwk' }));
      }
      return map;
    });
  return keys;
}

function unauthenticated(): never {
  throw new GraphQLError('Unauthenticated', { extensions: { http: { status: 401 } } });
}

async function verifiedPayload(header: string | null): Promise<Record<string, unknown>> {
  const token = header?.startsWith('Bearer ') ? header.slice(7) : unauthenticated();
  const [head, body, signature] = token.split('.');
  if (!head || !body || !signature) unauthenticated();
  const protectedHeader = JSON.parse(Buffer.from(head, 'base64url').toString());
  if (protectedHeader.alg !== 'EdDSA') unauthenticated();
  const key = (await jwks()).get(protectedHeader.kid ?? '') ?? unauthenticated();
  const valid = verify(
    null,
    Buffer.from(`${head}.${body}`),
    key,
    Buffer.from(signature, 'base64url'),
  );
  if (!valid) unauthenticated();
  const payload = JSON.parse(Buffer.from(body, 'base64url').toString());
  if (typeof payload.exp !== 'number' || payload.exp * 1000 < Date.now()) unauthenticated();
  return payload;
}

const jwtCheck: GatewayPlugin = {
  async onContextBuilding({ context, extendContext }) {
    const request = (context as { request: Request }).request;
    const payload = await verifiedPayload(request.headers.get('authorization'));
    extendContext({ jwt: { payload } } as never);
  },
};

export const gatewayConfig = defineConfig({
  plugins: () => [jwtCheck],
  // The services' certificates name `hangout-core` and `file-core`, but the bench reaches them
  // on 127.0.0.1: verify the certificate against the service's name, as our gateway does.
  transportEntries: {
    hangout: { options: { channelOptions: { 'grpc.ssl_target_name_override': 'hangout-core' } } },
    file: { options: { channelOptions: { 'grpc.ssl_target_name_override': 'file-core' } } },
  },
  // Logging every request would cost the peer throughput our gateway does not pay.
  logging: 'error',
});
