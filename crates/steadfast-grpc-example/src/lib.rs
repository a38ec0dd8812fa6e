//! The code generated from `proto/*.proto` (protox + tonic-prost-build, see
//! `build.rs`), for the example and for steadfast-grpc's tests.

/// `steadfast.example.Greeter`: the README's example service.
#[allow(missing_docs, unreachable_pub, missing_debug_implementations)]
pub mod greeter {
    tonic::include_proto!("steadfast.example");
}

/// `steadfast.test.Echo`: the service the tests call, from Rust and Python.
#[allow(missing_docs, unreachable_pub, missing_debug_implementations)]
pub mod echo {
    tonic::include_proto!("steadfast.test");
}

/// The directory of the `.proto` files (for peers that compile them at test time).
pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// The encoded `FileDescriptorSet` of `proto/*.proto`, for gRPC reflection
/// (`tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
