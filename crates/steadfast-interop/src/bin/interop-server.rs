//! `interop-server --port=N [--use_tls --tls_cert_file=PEM --tls_key_file=PEM]
//! [--host=ADDR]`: grpc.testing.TestService on steadfast-grpc. Port 0 picks a free
//! port; the first line of output is `listening on ADDR:PORT`.
//!
//! Not grpc's standard flags: `--host` defaults to `0.0.0.0`, as grpc's servers listen
//! on every address; `--tls_cert_file` and `--tls_key_file` (grpc-go's interop server's
//! names) give the certificate chain and key for `--use_tls`, as grpc's test
//! `server1.pem` is not bundled here.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use steadfast_grpc::Server;
use steadfast_interop::flags::Flags;

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("interop-server: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let flags = Flags::parse(
        std::env::args().skip(1),
        &["port", "use_tls", "host", "tls_cert_file", "tls_key_file"],
    )?;
    let mut server = Server::builder();
    if flags.boolean("use_tls")? {
        let (Some(cert), Some(key)) = (flags.get("tls_cert_file"), flags.get("tls_key_file"))
        else {
            return Err("--use_tls needs --tls_cert_file and --tls_key_file (PEM)".into());
        };
        server.config_mut().tls = Some(steadfast::tls::server_config_from_pem(
            Path::new(cert),
            Path::new(key),
        )?);
    }
    let host: std::net::IpAddr = flags.string("host", "0.0.0.0").parse()?;
    let addr = SocketAddr::new(host, flags.port("port", 0)?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    server
        .add_service(steadfast_interop::server::service())
        .serve_with_listener(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
