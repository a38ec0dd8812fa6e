//! Generated code with no system `protoc`, as in steadfast-grpc-example: protox parses
//! grpc's testing protos (copied from Debian's `grpc-proto`, see `proto/README.md`),
//! tonic-prost-build writes the messages and TestService's client and server. The
//! encoded descriptors are kept too (`descriptors.bin`), for gRPC reflection.
use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/grpc/testing/test.proto",
        "proto/grpc/testing/messages.proto",
        "proto/grpc/testing/empty.proto",
    ];
    let descriptors = protox::compile(["proto/grpc/testing/test.proto"], ["proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("descriptors.bin"), descriptors.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(descriptors)?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
