//! `interop-client --server_host=H --server_port=P --test_case=CASE[,CASE...|all]`:
//! runs grpc's interop test cases against a TestService server, one line per case
//! (`PASS case` or `FAIL case: why`); the exit status is 1 when any case failed.
//! `--use_tls`, `--use_test_ca` and `--server_host_override` are accepted; TLS is not
//! implemented yet.

use std::process::ExitCode;
use std::time::Duration;

use steadfast_grpc::Channel;
use steadfast_interop::cases::{self, CASES};
use steadfast_interop::flags::Flags;

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
            "server_host_override",
        ],
    )?;
    if flags.boolean("use_tls")? || flags.boolean("use_test_ca")? {
        return Err("--use_tls / --use_test_ca are not implemented yet (h2c only)".into());
    }
    let host = flags.string("server_host", "localhost");
    let port = flags.port("server_port", 8080)?;
    let test_case = flags.string("test_case", "large_unary");
    let names: Vec<&str> = if test_case == "all" {
        CASES.to_vec()
    } else {
        test_case.split(',').collect()
    };
    let channel = Channel::builder(&format!("http://{host}:{port}"))?
        .connect_timeout(Duration::from_secs(5))
        .user_agent("steadfast-interop-client")
        .build();
    let mut all_passed = true;
    for name in names {
        let result =
            match tokio::time::timeout(CASE_TIMEOUT, cases::run(name, channel.clone())).await {
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
