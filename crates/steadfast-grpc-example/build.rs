//! Generated code with no system `protoc`: protox parses the `.proto` files, and
//! tonic-prost-build writes the messages (prost) and the client and server (tonic).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/greeter.proto", "proto/echo.proto"];
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        // Generated code must not need tonic's own transport.
        .build_transport(false)
        .compile_fds(descriptors)?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
