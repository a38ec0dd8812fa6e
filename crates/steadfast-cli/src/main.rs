//! `steadfast`: an HTTP/2 server and client for testing, benchmarking and diagnosing
//! HTTP/2 failures.
//!
//! Exit codes (stable, for scripts):
//! - 0: success (for `probe`: a response arrived, whatever its status)
//! - 1: an unexpected local failure (e.g. cannot bind)
//! - 2: invalid arguments: an unknown option, a URL that is not http:// or https://,
//!   a `-d @FILE` that cannot be read, a bad header
//! - 3: the connection could not be established (name resolution, TCP, TLS, or the
//!   HTTP/2 handshake); nothing was sent
//! - 4: the request failed on HTTP/2 after the connection was up (GOAWAY, RST_STREAM,
//!   connection lost)
//! - 5: (`probe`) no complete response within `--timeout`
//! - 130: (`probe`) interrupted by Ctrl-C, after printing what was known
//! - 10 + code: (`call`) the server answered with that gRPC status (or the deadline
//!   passed here: 14); a non-gRPC HTTP answer (a proxy's 502) is 4

mod call;
mod demo;
mod logs;
mod probe;
mod proxy;
mod serve;
mod tap;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// steadfast: HTTP/2 that knows whether a failed request was processed.
#[derive(Debug, Parser)]
#[command(name = "steadfast", version, about, long_about = None)]
struct Cli {
    /// Runtime worker threads (default: one per core). 1 runs everything on the
    /// calling thread, which is what the benchmarks pin to one core.
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The request reliability mechanism under chaos (about 15 s, on loopback).
    ///
    /// Backends behind one client; a steady workload of POSTs; rolling restarts
    /// (two-phase and single GOAWAY), overload bursts shed with REFUSED_STREAM, and
    /// crashes. Ends with how every request ended, by fate, and the transparent retries
    /// by cause. `--no-retry` runs the same chaos with the mechanism off.
    Demo(demo::Args),
    /// Run an HTTP/2 server for testing and benchmarking.
    ///
    /// `GET /` answers a small fixed body; `POST /echo` streams the request body back
    /// with a trailer `x-echo-length`; `POST /discard` reads the body and answers its
    /// length; with `--root`, other paths serve files from a directory. SIGINT or SIGTERM shuts down gracefully (two-phase GOAWAY).
    Serve(serve::Args),
    /// Send one request and say exactly what happened.
    ///
    /// Prints the response (status, headers, body size, trailers). On failure, prints
    /// which layer failed, who caused it, whether the server could have processed the
    /// request, and whether a retry is safe. With `-v`, every frame sent and received.
    Probe(probe::Args),
    /// Call a gRPC method (grpcurl's habits) and, when it fails, say which layer
    /// failed, who caused it, whether the server could have processed it, and what to
    /// do.
    ///
    /// `steadfast call [--plaintext] [--proto F… -I DIR…] ADDR list [SERVICE] |
    /// describe SYMBOL | SERVICE/METHOD [-d JSON]`, through the server's reflection
    /// service, or `.proto` files compiled here. `-v` prints every HTTP/2 frame with
    /// timestamps, and the headers and trailers; `--json` the result or the diagnosis
    /// as one object. Exit codes: 0 the call succeeded; 2 usage; 3 could not connect
    /// (name resolution, TCP, TLS or the HTTP/2 handshake failed: nothing sent); 4 the
    /// transport, HTTP/2 or HTTP failed after connecting (GOAWAY, RST_STREAM, a
    /// connection lost, a proxy's non-gRPC answer); 10 + the status code for a gRPC
    /// status from the server (e.g. 12 UNIMPLEMENTED is 22, 14 UNAVAILABLE is 24) or
    /// a deadline that passed here (14).
    Call(call::Args),
    /// A gRPC-aware reverse proxy: per-call balancing over health-checked backends,
    /// and every call the backends provably did not process retried on another one.
    ///
    /// `steadfast proxy --listen 127.0.0.1:8443 --backend 127.0.0.1:50051 --backend
    /// 127.0.0.1:50052`, or `steadfast proxy --config proxy.toml` (listeners, routes,
    /// clusters, limits; SIGHUP reloads it). SIGINT or SIGTERM drains with the
    /// two-phase GOAWAY. Exit codes: 0 stopped; 1 cannot listen; 2 bad configuration
    /// (the message names the key).
    Proxy(proxy::Args),
}

/// Threads for blocking work (file reads, name lookups).
const BLOCKING_THREADS: usize = 4;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo draws its own output; servers log their lifecycle at info.
    let default_level = match &cli.command {
        Command::Demo(_) => "warn",
        // `call -v`: each attempt of a retry or hedging policy, with its status and
        // the delay before the next.
        Command::Call(args) if args.verbose() => "info,steadfast_grpc::retry=debug",
        _ => "info",
    };
    let quiet_access_log = match &cli.command {
        Command::Proxy(args) => args.access_log_directive(),
        _ => None,
    };
    let filter = || {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
        match quiet_access_log.and_then(|d| d.parse().ok()) {
            Some(directive) => filter.add_directive(directive),
            None => filter,
        }
    };
    let json = match &cli.command {
        Command::Serve(args) => args.json_logs(),
        Command::Proxy(args) => args.json_logs(),
        _ => false,
    };
    if json {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(filter())
            .with(logs::JsonLines)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(filter())
            .init();
    }
    let mut builder = match cli.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    // File reads (`serve --root`) and name lookups are the only blocking work: a few
    // threads keep up with them, where tokio's default (up to 512) would start one per
    // concurrent download, each with its stack and malloc arena.
    builder.max_blocking_threads(BLOCKING_THREADS);
    let runtime = builder.enable_all().build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Probe(args) => probe::run(args).await,
            Command::Call(args) => call::run(args).await,
            Command::Proxy(args) => proxy::run(args).await,
        }
    });
    ExitCode::from(code)
}
