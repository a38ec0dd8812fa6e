// The Node @grpc/grpc-js peer of steadfast-interop's tests (tests/interop.rs): a
// grpc.testing.TestService interop server and client per grpc's
// doc/interop-test-descriptions.md, written here from those descriptions.
//
//   node interop.js server PROTO_DIR [--tls_dir=DIR]
//       serves TestService on 127.0.0.1, prints a "SKIP case: why" line for each
//       case it cannot serve as described, then "listening on 127.0.0.1:PORT";
//       stops at EOF on stdin
//   node interop.js client PROTO_DIR PORT [--tls_dir=DIR --server_host_override=NAME]
//       runs every case against 127.0.0.1:PORT, prints one line per case:
//       "PASS case" or "FAIL case: why"
//
// With --tls_dir, TLS: the server uses DIR/server.pem and DIR/server.key, the client
// trusts DIR/ca.pem and expects the server to be NAME.
//
// @grpc/proto-loader loads the same .proto files as the Rust side at run time.
// Versions are pinned in package.json / package-lock.json (`npm ci`).
//
// The compression cases need what grpc-js's API does not show: the compressed flag
// of each message received. `wireTap` reads it off the HTTP/2 streams under grpc-js
// (Node's http2 module), without changing what grpc-js sends or receives. grpc-js's
// server never compresses a response (server-interceptors.js: "the compressed bit is
// always 0"), so it cannot serve the server_compressed cases.
'use strict';

const fs = require('fs');
const http2 = require('http2');
const path = require('path');

// The metadata key by which a handler finds the tap of its own request stream.
const TAP_KEY = 'x-interop-wire-tap';

// Records the compressed flag of each length-prefixed gRPC message (1 flag byte,
// 4 length bytes, the message) of `stream`'s data into `flags`, in order.
function tapFlags(stream, flags) {
  let pending = Buffer.alloc(0);
  stream.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.length < 5 + length) break;
      flags.push(pending[0] !== 0);
      pending = pending.subarray(5 + length);
    }
  });
}

// Taps every HTTP/2 stream that grpc-js opens or accepts, from here on (installed
// before grpc-js is loaded; grpc-js looks up http2.connect and http2.createServer
// when it uses them). A client's taps are `wireTap.client`, one flag list per call
// in the order the calls began; a server handler finds its request's flags with
// `wireTap.server(call)`.
const wireTap = (() => {
  const client = [];
  const server = new Map();
  let next = 0;
  const connect = http2.connect;
  http2.connect = function (...args) {
    const session = connect.apply(this, args);
    const request = session.request;
    session.request = function (...requestArgs) {
      const stream = request.apply(this, requestArgs);
      const flags = [];
      client.push(flags);
      tapFlags(stream, flags);
      return stream;
    };
    return session;
  };
  for (const name of ['createServer', 'createSecureServer']) {
    const create = http2[name];
    http2[name] = function (...args) {
      const http2Server = create.apply(this, args);
      // Registered before grpc-js's own listener, so it runs first: the key it adds
      // to the headers reaches the handler as metadata, and its data listener sees
      // each chunk before grpc-js decodes it.
      http2Server.on('stream', (stream, headers) => {
        const key = String(next++);
        const flags = [];
        server.set(key, flags);
        stream.on('close', () => server.delete(key));
        headers[TAP_KEY] = key;
        tapFlags(stream, flags);
      });
      return http2Server;
    };
  }
  return {
    client,
    server(call) {
      const key = call.metadata.get(TAP_KEY)[0];
      return server.get(key);
    },
  };
})();

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// grpc-js's write flag that sends one message of a compressed call uncompressed
// (WriteFlags.NoCompress in compression-filter.js).
const NO_COMPRESS = 2;
// grpc-js's channel option value for gzip (compression-algorithms.js).
const GZIP = 2;

const CASES = [
  'empty_unary',
  'large_unary',
  'client_streaming',
  'server_streaming',
  'ping_pong',
  'empty_stream',
  'timeout_on_sleeping_server',
  'cancel_after_begin',
  'cancel_after_first_response',
  'status_code_and_message',
  'special_status_message',
  'unimplemented_method',
  'unimplemented_service',
  'custom_metadata',
  'client_compressed_unary',
  'server_compressed_unary',
  'client_compressed_streaming',
  'server_compressed_streaming',
];

// What this server cannot do as the descriptions say (printed before it listens).
const SERVER_SKIPS = {
  server_compressed_unary: "grpc-js's server never compresses a response message",
  server_compressed_streaming: "grpc-js's server never compresses a response message",
};
const ECHO_INITIAL = 'x-grpc-test-echo-initial';
const ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin';

function load(protoDir) {
  const definition = protoLoader.loadSync('grpc/testing/test.proto', {
    includeDirs: [protoDir],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  return grpc.loadPackageDefinition(definition).grpc.testing;
}

function payload(size) {
  return { type: 'COMPRESSABLE', body: Buffer.alloc(size) };
}

function requestedStatus(request) {
  const status = request.response_status;
  return status && status.code ? { code: status.code, details: status.message } : null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// CompressedRequest: a request with expect_compressed set must have come with the
// compressed flag it says, or INVALID_ARGUMENT.
function compressionError(request, flags, index) {
  const expect = request.expect_compressed;
  if (!expect) return null;
  const compressed = flags ? flags[index] : undefined;
  if (compressed === undefined) {
    return { code: grpc.status.INTERNAL, details: `no wire tap saw request message ${index}` };
  }
  if (compressed === expect.value) return null;
  return {
    code: grpc.status.INVALID_ARGUMENT,
    details: `request message ${index} has expect_compressed=${expect.value} but came ${
      compressed ? 'compressed' : 'uncompressed'}`,
  };
}

function serve(testing, tlsDir) {
  function echoInitial(call) {
    const value = call.metadata.get(ECHO_INITIAL);
    if (value.length) {
      const metadata = new grpc.Metadata();
      metadata.set(ECHO_INITIAL, value[0]);
      call.sendMetadata(metadata);
    }
  }
  function echoTrailing(call) {
    const metadata = new grpc.Metadata();
    const value = call.metadata.get(ECHO_TRAILING);
    if (value.length) metadata.set(ECHO_TRAILING, value[0]);
    return metadata;
  }
  async function respond(call, parameters) {
    for (const p of parameters) {
      if (p.interval_us) await sleep(p.interval_us / 1000);
      call.write({ payload: payload(p.size) });
    }
  }
  const service = {
    EmptyCall(call, callback) {
      callback(null, {});
    },
    UnaryCall(call, callback) {
      echoInitial(call);
      const trailing = echoTrailing(call);
      const wrong = compressionError(call.request, wireTap.server(call), 0);
      if (wrong) return callback(wrong);
      const status = requestedStatus(call.request);
      if (status) return callback({ ...status, metadata: trailing });
      callback(null, { payload: payload(call.request.response_size) }, trailing);
    },
    CacheableUnaryCall(call, callback) {
      callback(null, { payload: payload(call.request.response_size) });
    },
    async StreamingOutputCall(call) {
      await respond(call, call.request.response_parameters);
      const status = requestedStatus(call.request);
      if (status) return call.emit('error', status);
      call.end();
    },
    StreamingInputCall(call, callback) {
      const flags = wireTap.server(call);
      let size = 0;
      let index = 0;
      let failed = false;
      call.on('data', (request) => {
        const wrong = compressionError(request, flags, index++);
        if (wrong && !failed) {
          failed = true;
          callback(wrong);
        }
        size += request.payload ? request.payload.body.length : 0;
      });
      call.on('end', () => { if (!failed) callback(null, { aggregated_payload_size: size }); });
      call.on('error', () => {});
    },
    FullDuplexCall(call) {
      echoInitial(call);
      const trailing = echoTrailing(call);
      let chain = Promise.resolve();
      let failed = false;
      call.on('data', (request) => {
        chain = chain.then(async () => {
          if (failed) return;
          const status = requestedStatus(request);
          if (status) {
            failed = true;
            return call.emit('error', { ...status, metadata: trailing });
          }
          await respond(call, request.response_parameters);
        });
      });
      call.on('end', () => chain.then(() => { if (!failed) call.end(trailing); }));
      call.on('error', () => {});
    },
    HalfDuplexCall(call) {
      const requests = [];
      call.on('data', (request) => requests.push(request));
      call.on('end', async () => {
        for (const request of requests) await respond(call, request.response_parameters);
        call.end();
      });
    },
    // UnimplementedCall: not given, so grpc-js answers UNIMPLEMENTED.
  };
  const server = new grpc.Server();
  server.addService(testing.TestService.service, service);
  const credentials = tlsDir
    ? grpc.ServerCredentials.createSsl(null, [{
      private_key: fs.readFileSync(path.join(tlsDir, 'server.key')),
      cert_chain: fs.readFileSync(path.join(tlsDir, 'server.pem')),
    }])
    : grpc.ServerCredentials.createInsecure();
  server.bindAsync('127.0.0.1:0', credentials, (err, port) => {
    if (err) throw err;
    for (const [name, why] of Object.entries(SERVER_SKIPS)) console.log(`SKIP ${name}: ${why}`);
    console.log(`listening on 127.0.0.1:${port}`);
  });
  process.stdin.resume();
  process.stdin.on('end', () => server.forceShutdown());
}

class Failed extends Error {}

function check(condition, message) {
  if (!condition) throw new Failed(message);
}

function checkPayload(p, size) {
  const body = p ? p.body : Buffer.alloc(0);
  check(body.length === size && body.every((b) => b === 0),
    `expected ${size} zero bytes, got ${body.length}`);
}

const deadline = (ms = 10000) => ({ deadline: Date.now() + ms });

function unary(client, method, request, metadata = new grpc.Metadata(), options = deadline()) {
  return new Promise((resolve) => {
    const result = {};
    const call = client[method](request, metadata, options, (error, response) => {
      result.error = error;
      result.response = response;
    });
    call.on('metadata', (m) => { result.initial = m; });
    call.on('status', (s) => { result.trailing = s.metadata; resolve(result); });
  });
}

// Reads a streaming call to its end: { responses, error, initial, trailing }.
function drain(call, onData = () => {}) {
  return new Promise((resolve) => {
    const result = { responses: [] };
    call.on('metadata', (m) => { result.initial = m; });
    call.on('data', (response) => { result.responses.push(response); onData(response, result); });
    call.on('error', (error) => { result.error = error; });
    call.on('status', (s) => { result.trailing = s.metadata; resolve(result); });
  });
}

function expectCode(error, code, message) {
  check(error, `succeeded, expected code ${code}`);
  check(error.code === code, `expected code ${code}, got ${error.code} ${JSON.stringify(error.details)}`);
  if (message !== undefined) {
    check(error.details === message, `details ${JSON.stringify(error.details)}`);
  }
}

const largeRequest = () => ({ response_size: 314159, payload: payload(271828) });
const streamingRequest = (responseSize, payloadSize) => ({
  response_parameters: [{ size: responseSize }],
  payload: payload(payloadSize),
});

const cases = {
  async empty_unary(client) {
    const { error, response } = await unary(client, 'EmptyCall', {});
    check(!error, `EmptyCall: ${error && error.message}`);
    check(response && Object.keys(response).length === 0, 'non-empty response');
  },
  async large_unary(client) {
    const { error, response } = await unary(client, 'UnaryCall', largeRequest());
    check(!error, `UnaryCall: ${error && error.message}`);
    checkPayload(response.payload, 314159);
  },
  async client_streaming(client) {
    const result = await new Promise((resolve) => {
      const call = client.StreamingInputCall(deadline(), (error, response) => resolve({ error, response }));
      for (const size of [27182, 8, 1828, 45904]) call.write({ payload: payload(size) });
      call.end();
    });
    check(!result.error, `StreamingInputCall: ${result.error && result.error.message}`);
    check(result.response.aggregated_payload_size === 74922,
      `aggregated_payload_size ${result.response.aggregated_payload_size}`);
  },
  async server_streaming(client) {
    const sizes = [31415, 9, 2653, 58979];
    const call = client.StreamingOutputCall(
      { response_parameters: sizes.map((size) => ({ size })) }, deadline());
    const { responses, error } = await drain(call);
    check(!error, `StreamingOutputCall: ${error && error.message}`);
    check(responses.length === sizes.length, `${responses.length} responses`);
    responses.forEach((r, i) => checkPayload(r.payload, sizes[i]));
  },
  async ping_pong(client) {
    const pairs = [[31415, 27182], [9, 8], [2653, 1828], [58979, 45904]];
    const call = client.FullDuplexCall(deadline());
    let next = 0;
    const done = drain(call, (response, result) => {
      checkPayload(response.payload, pairs[next][0]);
      next += 1;
      if (next < pairs.length) call.write(streamingRequest(...pairs[next]));
      else call.end();
    });
    call.write(streamingRequest(...pairs[0]));
    const { responses, error } = await done;
    check(!error, `FullDuplexCall: ${error && error.message}`);
    check(responses.length === pairs.length, `${responses.length} responses`);
  },
  async empty_stream(client) {
    const call = client.FullDuplexCall(deadline());
    call.end();
    const { responses, error } = await drain(call);
    check(!error, `FullDuplexCall: ${error && error.message}`);
    check(responses.length === 0, `${responses.length} responses`);
  },
  async timeout_on_sleeping_server(client) {
    const call = client.FullDuplexCall(deadline(1));
    call.write({ payload: payload(27182) });
    const { error } = await drain(call);
    expectCode(error, grpc.status.DEADLINE_EXCEEDED);
  },
  async cancel_after_begin(client) {
    const result = await new Promise((resolve) => {
      const call = client.StreamingInputCall(deadline(), (error) => resolve({ error }));
      setTimeout(() => call.cancel(), 100);
    });
    expectCode(result.error, grpc.status.CANCELLED);
  },
  async cancel_after_first_response(client) {
    const call = client.FullDuplexCall(deadline());
    const done = drain(call, (response) => {
      checkPayload(response.payload, 31415);
      call.cancel();
    });
    call.write(streamingRequest(31415, 27182));
    const { responses, error } = await done;
    check(responses.length === 1, `${responses.length} responses`);
    expectCode(error, grpc.status.CANCELLED);
  },
  async status_code_and_message(client) {
    const message = 'test status message';
    const status = { code: 2, message };
    const { error } = await unary(client, 'UnaryCall', { response_status: status });
    expectCode(error, grpc.status.UNKNOWN, message);
    const call = client.FullDuplexCall(deadline());
    call.write({ response_status: status });
    call.end();
    const result = await drain(call);
    expectCode(result.error, grpc.status.UNKNOWN, message);
  },
  async special_status_message(client) {
    const message = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n';
    const { error } = await unary(client, 'UnaryCall', { response_status: { code: 2, message } });
    expectCode(error, grpc.status.UNKNOWN, message);
  },
  async unimplemented_method(client) {
    const { error } = await unary(client, 'UnimplementedCall', {});
    expectCode(error, grpc.status.UNIMPLEMENTED);
  },
  async unimplemented_service(client, context) {
    const other = context.newClient(context.testing.UnimplementedService);
    const { error } = await unary(other, 'UnimplementedCall', {});
    other.close();
    expectCode(error, grpc.status.UNIMPLEMENTED);
  },
  async custom_metadata(client) {
    const initialValue = 'test_initial_metadata_value';
    const trailingValue = Buffer.from([0xab, 0xab, 0xab]);
    const metadata = () => {
      const m = new grpc.Metadata();
      m.set(ECHO_INITIAL, initialValue);
      m.set(ECHO_TRAILING, trailingValue);
      return m;
    };
    const checkMetadata = (what, initial, trailing) => {
      const i = initial ? initial.get(ECHO_INITIAL) : [];
      check(i.length === 1 && i[0] === initialValue, `${what}: initial metadata ${i}`);
      const t = trailing ? trailing.get(ECHO_TRAILING) : [];
      check(t.length === 1 && Buffer.compare(t[0], trailingValue) === 0,
        `${what}: trailing metadata ${t}`);
    };
    const u = await unary(client, 'UnaryCall', largeRequest(), metadata());
    check(!u.error, `UnaryCall: ${u.error && u.error.message}`);
    checkPayload(u.response.payload, 314159);
    checkMetadata('UnaryCall', u.initial, u.trailing);
    const call = client.FullDuplexCall(metadata(), deadline());
    call.write(streamingRequest(314159, 271828));
    call.end();
    const d = await drain(call);
    check(!d.error, `FullDuplexCall: ${d.error && d.error.message}`);
    check(d.responses.length === 1, `${d.responses.length} responses`);
    checkPayload(d.responses[0].payload, 314159);
    checkMetadata('FullDuplexCall', d.initial, d.trailing);
  },
  async client_compressed_unary(client, context) {
    const request = (expect) => ({ expect_compressed: { value: expect }, ...largeRequest() });
    const probe = await unary(client, 'UnaryCall', request(true));
    expectCode(probe.error, grpc.status.INVALID_ARGUMENT);
    const compressing = context.newClient(context.testing.TestService, {
      'grpc.default_compression_algorithm': GZIP,
    });
    const compressed = await unary(compressing, 'UnaryCall', request(true));
    compressing.close();
    check(!compressed.error, `compressed UnaryCall: ${compressed.error && compressed.error.message}`);
    checkPayload(compressed.response.payload, 314159);
    const plain = await unary(client, 'UnaryCall', request(false));
    check(!plain.error, `uncompressed UnaryCall: ${plain.error && plain.error.message}`);
    checkPayload(plain.response.payload, 314159);
  },
  async server_compressed_unary(client) {
    for (const compressed of [true, false]) {
      const what = `UnaryCall with response_compressed=${compressed}`;
      const request = { response_compressed: { value: compressed }, ...largeRequest() };
      const { error, response } = await unary(client, 'UnaryCall', request);
      const flags = wireTap.client[wireTap.client.length - 1];
      check(!error, `${what}: ${error && error.message}`);
      checkPayload(response.payload, 314159);
      check(flags.length === 1 && flags[0] === compressed,
        `${what}: the response's compressed flags were ${JSON.stringify(flags)}`);
    }
  },
  async client_compressed_streaming(client, context) {
    const probe = await new Promise((resolve) => {
      const call = client.StreamingInputCall(deadline(), (error) => resolve({ error }));
      call.write({ expect_compressed: { value: true }, payload: payload(27182) });
      call.end();
    });
    expectCode(probe.error, grpc.status.INVALID_ARGUMENT);
    const compressing = context.newClient(context.testing.TestService, {
      'grpc.default_compression_algorithm': GZIP,
    });
    const result = await new Promise((resolve) => {
      const call = compressing.StreamingInputCall(deadline(), (error, response) => resolve({ error, response }));
      call.write({ expect_compressed: { value: true }, payload: payload(27182) });
      call.write({ expect_compressed: { value: false }, payload: payload(45904) }, NO_COMPRESS);
      call.end();
    });
    compressing.close();
    check(!result.error, `StreamingInputCall: ${result.error && result.error.message}`);
    check(result.response.aggregated_payload_size === 73086,
      `aggregated_payload_size ${result.response.aggregated_payload_size}`);
  },
  async server_compressed_streaming(client) {
    const parameters = [[true, 31415], [false, 92653]];
    const call = client.StreamingOutputCall({
      response_parameters: parameters.map(([compressed, size]) => ({ compressed: { value: compressed }, size })),
    }, deadline());
    const { responses, error } = await drain(call);
    const flags = wireTap.client[wireTap.client.length - 1];
    check(!error, `StreamingOutputCall: ${error && error.message}`);
    check(responses.length === parameters.length, `${responses.length} responses`);
    responses.forEach((r, i) => checkPayload(r.payload, parameters[i][1]));
    const expected = parameters.map(([compressed]) => compressed);
    check(JSON.stringify(flags) === JSON.stringify(expected),
      `the responses' compressed flags were ${JSON.stringify(flags)}, expected ${JSON.stringify(expected)}`);
  },
};

async function runClient(testing, port, tlsDir, hostOverride) {
  const address = `127.0.0.1:${port}`;
  const context = {
    testing,
    // A client of `Service` on its own channel, with these channel options.
    newClient(Service, options = {}) {
      if (!tlsDir) return new Service(address, grpc.credentials.createInsecure(), options);
      const ca = fs.readFileSync(path.join(tlsDir, 'ca.pem'));
      return new Service(address, grpc.credentials.createSsl(ca), {
        'grpc.ssl_target_name_override': hostOverride,
        'grpc.default_authority': hostOverride,
        ...options,
      });
    },
  };
  const client = context.newClient(testing.TestService);
  for (const name of CASES) {
    try {
      await cases[name](client, context);
      console.log(`PASS ${name}`);
    } catch (error) {
      console.log(`FAIL ${name}: ${String(error.message || error).replace(/\n/g, ' ')}`);
    }
  }
  client.close();
}

function main() {
  const args = process.argv.slice(2);
  const [mode, protoDir, port] = args.filter((a) => !a.startsWith('--'));
  const flags = Object.fromEntries(args.filter((a) => a.startsWith('--'))
    .map((a) => a.slice(2).split(/=(.*)/s).slice(0, 2)));
  const testing = load(protoDir);
  if (mode === 'server') serve(testing, flags.tls_dir);
  else if (mode === 'client') {
    runClient(testing, port, flags.tls_dir, flags.server_host_override)
      .then(() => process.exit(0));
  }
  else throw new Error(`unknown mode ${mode}`);
}

main();
