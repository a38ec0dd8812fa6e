//! `interop-client --server_host=H --server_port=P --test_case=CASE[,CASE...|all]`:
//! runs grpc's interop test cases against a TestService server, one line per case
//! (`PASS case` or `FAIL case: why`); the exit status is 1 when any case failed.
//! `all` is every case of `interop-test-descriptions.md`; the cases of
//! `negative-http2-interop-test-descriptions.md` (goaway, rst_after_header, …) are
//! run by name, each against the misbehaving server of its name.
//!
//! `--use_tls` connects with TLS (ALPN h2), trusting the Web PKI roots, or with
//! `--use_test_ca` the CA in `--ca_file` (grpc-go's interop client's name: grpc's test
//! `ca.pem` is not bundled here). `--server_host_override=NAME` connects to
//! `--server_host` but names the server NAME in TLS (SNI, certificate check) and in
//! `:authority`.
//!
//! The channel keeps up to 1 MiB of each request for transparent retry (grpc-java's
//! default; steadfast's is 64 KiB). `--max_connections=N` (not a grpc flag) caps the channel's connections (default:
//! steadfast's pool default, 8): with 1, calls beyond a server's
//! SETTINGS_MAX_CONCURRENT_STREAMS queue on one connection as in grpc's clients.

use std::process::ExitCode;
use std::time::Duration;

use steadfast::client::StaticResolver;
use steadfast::tls::Roots;
use steadfast::PoolConfig;
use steadfast_grpc::Channel;
use steadfast_interop::cases::{self, CASES};
use steadfast_interop::flags::Flags;
use steadfast_interop::negative::{self, NEGATIVE_CASES};

/// No case takes more than a few hundred milliseconds against a working server.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("interop-client: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let flags = Flags::parse(
        std::env::args().skip(1),
        &[
            "server_host",
            "server_port",
            "test_case",
            "use_tls",
            "use_test_ca",
            "ca_file",
            "server_host_override",
            "max_connections",
        ],
    )?;
    let host = flags.string("server_host", "localhost");
    let port = flags.port("server_port", 8080)?;
    let test_case = flags.string("test_case", "large_unary");
    let names: Vec<&str> = if test_case == "all" {
        CASES.to_vec()
    } else {
        test_case.split(',').collect()
    };
    let channel = channel(&flags, &host, port).await?;
    let mut all_passed = true;
    for name in names {
        let run = async {
            if NEGATIVE_CASES.contains(&name) {
                negative::run(name, channel.clone()).await
            } else {
                cases::run(name, channel.clone()).await
            }
        };
        let result = match tokio::time::timeout(CASE_TIMEOUT, run).await {
            Ok(result) => result,
            Err(_) => Err(format!("did not finish in {CASE_TIMEOUT:?}")),
        };
        match result {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                all_passed = false;
                println!("FAIL {name}: {why}");
            }
        }
    }
    Ok(all_passed)
}

/// `host` as the host part of an authority (IPv6 addresses in brackets).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn channel(
    flags: &Flags,
    host: &str,
    port: u16,
) -> Result<Channel, Box<dyn std::error::Error>> {
    let use_tls = flags.boolean("use_tls")?;
    let name = flags.get("server_host_override").unwrap_or(host);
    let scheme = if use_tls { "https" } else { "http" };
    let mut pool = PoolConfig::default();
    // large_unary's request is 271828 bytes, over steadfast's default retry buffer of
    // 64 KiB: a call refused by a GOAWAY (the negative goaway case, when the second
    // call leaves before the GOAWAY arrives) could not be replayed. 1 MiB per call is
    // grpc-java's default retry buffer.
    pool.retry.buffer_per_request = 1 << 20;
    if let Some(max) = flags.get("max_connections") {
        pool.max_connections = max
            .parse()
            .map_err(|e| format!("--max_connections={max}: {e}"))?;
    }
    let mut builder = Channel::builder(&format!("{scheme}://{}", authority(name, port)))?
        .pool_config(pool)
        .connect_timeout(Duration::from_secs(5))
        .user_agent("steadfast-interop-client");
    if name != host {
        let addrs: Vec<_> = tokio::net::lookup_host(authority(host, port))
            .await?
            .collect();
        builder = builder.resolver(StaticResolver::new(addrs));
    }
    if use_tls {
        let roots = if flags.boolean("use_test_ca")? {
            let ca = flags
                .get("ca_file")
                .ok_or("--use_test_ca needs --ca_file (PEM): grpc's ca.pem is not bundled")?;
            Roots::PemFile(ca.into())
        } else {
            Roots::WebPki
        };
        builder = builder.tls_config(steadfast::tls::client_config(roots)?);
    }
    Ok(builder.build())
}
