// Composes the peer's supergraph from the same protos our services serve. The endpoints and
// the certificate folder come from the environment because the bench picks free ports at run
// time; composing needs no network (the protos are read from disk, not by reflection).
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadGrpcSubgraph } from '@omnigraph/grpc';

const certs = process.env.BENCH_CERTS_DIR ?? '../../.certs';
// The services trust `x-user-id` only from the gateway's certificate, so the peer presents the
// same client certificate and forwards the caller's id, taken from the verified JWT.
const credentialsSsl = {
  rootCA: `${certs}/ca.pem`,
  certChain: `${certs}/gateway.pem`,
  privateKey: `${certs}/gateway.key`,
};
// A path into the request context: the `sub` of the payload the JWT plugin verified.
const metaData = { 'x-user-id': ['jwt', 'payload', 'sub'] };

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadGrpcSubgraph('hangout', {
        endpoint: process.env.BENCH_HANGOUT_CORE ?? '127.0.0.1:50051',
        source: '../../proto/proto/hangout/v1/hangout.proto',
        credentialsSsl,
        metaData,
      }),
    },
    {
      sourceHandler: loadGrpcSubgraph('file', {
        endpoint: process.env.BENCH_FILE_CORE ?? '127.0.0.1:50052',
        source: '../../proto/proto/file/v1/file.proto',
        credentialsSsl,
        metaData,
      }),
    },
  ],
});
