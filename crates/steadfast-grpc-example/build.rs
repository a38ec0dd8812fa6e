//! Generated code with no system `protoc`: protox parses the `.proto` files, and
//! tonic-prost-build writes the messages (prost) and the client and server (tonic).
//! The encoded descriptors are kept too (`descriptors.bin`), for gRPC reflection.
use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/greeter.proto", "proto/echo.proto"];
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("descriptors.bin"), descriptors.encode_to_vec())?;
    tonic_prost_build::configure()
        // Generated code must not need tonic's own transport.
        .build_transport(false)
        .compile_fds(descriptors)?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
