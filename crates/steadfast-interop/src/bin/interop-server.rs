//! `interop-server --port=N [--use_tls=false] [--host=ADDR]`: grpc.testing.TestService
//! on steadfast-grpc. Port 0 picks a free port; the first line of output is
//! `listening on ADDR:PORT`. `--host` (not a grpc flag) defaults to `0.0.0.0`, as grpc's
//! servers listen on every address.

use std::net::SocketAddr;
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
    let flags = Flags::parse(std::env::args().skip(1), &["port", "use_tls", "host"])?;
    if flags.boolean("use_tls")? {
        return Err("--use_tls=true is not implemented yet (h2c only)".into());
    }
    let host: std::net::IpAddr = flags.string("host", "0.0.0.0").parse()?;
    let addr = SocketAddr::new(host, flags.port("port", 0)?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    Server::builder()
        .add_service(steadfast_interop::server::service())
        .serve_with_listener(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
