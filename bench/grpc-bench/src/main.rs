//! The gRPC benchmark's binary (driven by `bench/grpc.py`):
//!
//! - `grpc-bench server --impl steadfast|steadfast-mt|tonic-ct|tonic-mt --port N [--threads N]`:
//!   steadfast-interop's TestService (the same implementation and layer for every
//!   server) on `steadfast_grpc::Server` or on `tonic::transport::Server`, on a
//!   current-thread (`steadfast`, `tonic-ct`) or multi-thread runtime (`-mt`; workers:
//!   `--threads`, default tokio's, one per CPU the process may run on).
//! - `grpc-bench client --impl steadfast|tonic --target http://HOST:PORT --call empty|unary100
//!   [--concurrency 256] [--warmup 1s] [--duration 10s]`: one connection
//!   (`steadfast_grpc::Channel` with a pool of one, or `tonic::transport::Channel`), that
//!   many calls in flight at once on a current-thread runtime; prints one line,
//!   `calls=N seconds=S cpu_seconds=C errors=E`, for the measured window only.
//! - `grpc-bench body --call empty|unary100 --out FILE`: the request as h2load sends it
//!   (`-d FILE`): the 5-byte gRPC prefix and the protobuf message.

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use steadfast_interop::pb::test_service_client::TestServiceClient;
use steadfast_interop::pb::{Empty, Payload, SimpleRequest};
use tonic::codegen::{Body, Bytes, StdError};

type BoxError = Box<dyn Error + Send + Sync>;

/// The payload size of the `unary100` call, in the request and asked for in the response.
const PAYLOAD: usize = 100;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let result = parse_flags(args).and_then(|flags| match command.as_str() {
        "server" => server(&flags),
        "client" => client(&flags),
        "body" => body(&flags),
        _ => Err("usage: grpc-bench server|client|body [--flag value ...]".into()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grpc-bench {command}: {e}");
            ExitCode::from(2)
        }
    }
}

struct Flags(HashMap<String, String>);

fn parse_flags(mut args: impl Iterator<Item = String>) -> Result<Flags, BoxError> {
    let mut flags = HashMap::new();
    while let Some(arg) = args.next() {
        let name = arg
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --flag, got {arg:?}"))?;
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (
                name.to_string(),
                args.next()
                    .ok_or_else(|| format!("--{name} needs a value"))?,
            ),
        };
        flags.insert(name, value);
    }
    Ok(Flags(flags))
}

impl Flags {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str, BoxError> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required").into())
    }

    fn number(&self, name: &str, default: usize) -> Result<usize, BoxError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("--{name} {v:?}: {e}").into()),
        }
    }

    /// `10s`, `500ms` or a bare number of seconds.
    fn duration(&self, name: &str, default: Duration) -> Result<Duration, BoxError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let (number, scale) = if let Some(ms) = v.strip_suffix("ms") {
            (ms, 1e-3)
        } else {
            (v.strip_suffix('s').unwrap_or(v), 1.0)
        };
        let seconds: f64 = number.parse().map_err(|e| format!("--{name} {v:?}: {e}"))?;
        Ok(Duration::from_secs_f64(seconds * scale))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Empty,
    Unary100,
}

impl Call {
    fn parse(flags: &Flags) -> Result<Self, BoxError> {
        match flags.required("call")? {
            "empty" => Ok(Self::Empty),
            "unary100" => Ok(Self::Unary100),
            other => Err(format!("--call {other:?}: expected empty or unary100").into()),
        }
    }
}

fn unary100_request() -> SimpleRequest {
    SimpleRequest {
        response_size: PAYLOAD as i32,
        payload: Some(Payload {
            r#type: 0,
            body: vec![0; PAYLOAD],
        }),
        ..Default::default()
    }
}

fn body(flags: &Flags) -> Result<(), BoxError> {
    let message = match Call::parse(flags)? {
        Call::Empty => Empty {}.encode_to_vec(),
        Call::Unary100 => unary100_request().encode_to_vec(),
    };
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
    framed.extend_from_slice(&message);
    std::fs::write(flags.required("out")?, framed)?;
    Ok(())
}

fn runtime(multi_thread: bool, threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 0 {
            b.worker_threads(threads);
        }
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build()
}

fn server(flags: &Flags) -> Result<(), BoxError> {
    let port = u16::try_from(flags.number("port", 0)?)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let threads = flags.number("threads", 0)?;
    let service = steadfast_interop::server::service();
    match flags.required("impl")? {
        imp @ ("steadfast" | "steadfast-mt") => {
            runtime(imp == "steadfast-mt", threads)?.block_on(async {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                eprintln!("{imp} listening on {}", listener.local_addr()?);
                steadfast_grpc::Server::builder()
                    .add_service(service)
                    .serve_with_listener(listener, shutdown_signal())
                    .await
            })?;
        }
        imp @ ("tonic-ct" | "tonic-mt") => {
            runtime(imp == "tonic-mt", threads)?.block_on(async {
                eprintln!("{imp} listening on {addr}");
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_shutdown(addr, shutdown_signal())
                    .await
            })?;
        }
        other => {
            return Err(format!(
                "--impl {other:?}: expected steadfast, steadfast-mt, tonic-ct or tonic-mt"
            )
            .into())
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => std::future::pending().await,
    }
}

/// What the callers of one client run count.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    /// Failed calls, warm-up included: any makes the run invalid.
    errors: AtomicU64,
    stop: AtomicBool,
}

fn client(flags: &Flags) -> Result<(), BoxError> {
    let target = flags.required("target")?.to_string();
    let call = Call::parse(flags)?;
    let concurrency = flags.number("concurrency", 256)?;
    let warmup = flags.duration("warmup", Duration::from_secs(1))?;
    let duration = flags.duration("duration", Duration::from_secs(10))?;
    let imp = flags.required("impl")?.to_string();
    runtime(false, 0)?.block_on(async move {
        let counters = Arc::new(Counters::default());
        match imp.as_str() {
            "steadfast" => {
                let mut pool = steadfast::PoolConfig::default();
                pool.max_connections = 1;
                let channel = steadfast_grpc::Channel::builder(&target)?
                    .pool_config(pool)
                    .build();
                let client = TestServiceClient::new(channel.clone());
                spawn_callers(client, call, concurrency, &counters);
                let measured = measure(&counters, warmup, duration).await;
                let connects = channel.client().stats().connects;
                if connects != 1 {
                    return Err(format!("{connects} connections were made, not one").into());
                }
                report(measured);
            }
            "tonic" => {
                let channel = tonic::transport::Endpoint::from_shared(target.clone())?
                    .connect()
                    .await?;
                let client = TestServiceClient::new(channel);
                spawn_callers(client, call, concurrency, &counters);
                report(measure(&counters, warmup, duration).await);
            }
            other => return Err(format!("--impl {other:?}: expected steadfast or tonic").into()),
        }
        Ok::<(), BoxError>(())
    })
}

struct Measured {
    calls: u64,
    errors: u64,
    seconds: f64,
    cpu_seconds: f64,
}

fn report(m: Measured) {
    println!(
        "calls={} seconds={:.3} cpu_seconds={:.3} errors={}",
        m.calls, m.seconds, m.cpu_seconds, m.errors
    );
}

async fn measure(counters: &Counters, warmup: Duration, duration: Duration) -> Measured {
    tokio::time::sleep(warmup).await;
    let (calls0, cpu0, t0) = (
        counters.calls.load(Ordering::Relaxed),
        cpu_seconds(),
        Instant::now(),
    );
    tokio::time::sleep(duration).await;
    let (calls1, cpu1, t1) = (
        counters.calls.load(Ordering::Relaxed),
        cpu_seconds(),
        Instant::now(),
    );
    counters.stop.store(true, Ordering::Relaxed);
    Measured {
        calls: calls1 - calls0,
        errors: counters.errors.load(Ordering::Relaxed),
        seconds: (t1 - t0).as_secs_f64(),
        cpu_seconds: cpu1 - cpu0,
    }
}

/// utime + stime of this process (all threads), from `/proc/self/stat`, whose clock
/// ticks are USER_HZ (100 on Linux).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// `concurrency` tasks, each making one call after another until told to stop.
fn spawn_callers<T>(
    client: TestServiceClient<T>,
    call: Call,
    concurrency: usize,
    counters: &Arc<Counters>,
) where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    for _ in 0..concurrency {
        let mut client = client.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            while !counters.stop.load(Ordering::Relaxed) {
                let ok = match call {
                    Call::Empty => client.empty_call(Empty {}).await.is_ok(),
                    Call::Unary100 => client
                        .unary_call(unary100_request())
                        .await
                        .map(|r| {
                            r.into_inner()
                                .payload
                                .is_some_and(|p| p.body.len() == PAYLOAD)
                        })
                        .unwrap_or(false),
                };
                if ok {
                    counters.calls.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}
