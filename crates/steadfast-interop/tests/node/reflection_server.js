// A grpc-js server with server reflection (@grpc/reflection), the peer of
// `steadfast call`'s tests (crates/steadfast-cli/tests/call_peers.rs):
//
//   node reflection_server.js PROTO_DIR
//       serves grpc.testing.TestService's EmptyCall and UnaryCall (the others answer
//       UNIMPLEMENTED) and reflection on 127.0.0.1, prints the port it bound, and
//       serves until killed
//
// Versions are pinned in package.json / package-lock.json (`npm ci`).
'use strict';

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');

const protoDir = process.argv[2];
const definition = protoLoader.loadSync('grpc/testing/test.proto', {
  includeDirs: [protoDir],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
});
const testing = grpc.loadPackageDefinition(definition).grpc.testing;

const server = new grpc.Server();
server.addService(testing.TestService.service, {
  emptyCall: (_call, done) => done(null, {}),
  unaryCall: (call, done) =>
    done(null, {
      payload: { type: 'COMPRESSABLE', body: Buffer.alloc(call.request.response_size || 0) },
    }),
});
new ReflectionService(definition).addToServer(server);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`cannot bind: ${err.message}`);
    process.exit(1);
  }
  console.log(port);
});
