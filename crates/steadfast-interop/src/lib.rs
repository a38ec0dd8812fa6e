//! grpc's interop tests (`doc/interop-test-descriptions.md`) over steadfast-grpc:
//! [`server::TestServiceImpl`] is `grpc.testing.TestService` as the descriptions specify
//! it, and [`cases`] are the client's test cases; [`negative`] are the client's cases
//! of `doc/negative-http2-interop-test-descriptions.md`. The `interop-server` and
//! `interop-client` binaries take grpc's standard flags ([`flags`]).
//!
//! The tests run both against Python grpcio and Node grpc-js peers, written in this
//! crate's `tests/` from the same `.proto` files.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cases;
pub mod flags;
pub mod framing;
pub mod negative;
pub mod server;

/// The code generated from `proto/grpc/testing/*.proto` (see `build.rs`).
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
pub mod pb {
    tonic::include_proto!("grpc.testing");
}

/// The directory of the `.proto` files (the peers compile them at test time).
pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// The encoded `FileDescriptorSet` of the testing protos, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
