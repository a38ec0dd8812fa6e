//! `steadfast demo --grpc`: the same chaos, in gRPC. A tonic-generated client
//! (grpc's `TestService`) calls three `steadfast_grpc::Server` backends through one
//! `steadfast_grpc::Channel` with a service config; backends restart (two-phase and
//! single GOAWAY), age out (gRFC A9 `max_connection_age`), shed overload with
//! REFUSED_STREAM, crash, and answer UNAVAILABLE for a while. Every failed call is
//! counted by status and by fate.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use serde::Serialize;
use steadfast::body::{self, BoxBody};
use steadfast::client::{BackoffConfig, SplitMix64};
use steadfast::{Fate, PoolConfig, RecvBody, RetryPolicy, ServerConfig};
use steadfast_grpc::{Channel, GrpcService, ServiceConfig, StatusExt};
use steadfast_interop::pb::test_service_client::TestServiceClient;
use steadfast_interop::pb::{Payload, SimpleRequest};

use super::{backend, Args};

/// The service config the demo's client uses (printed with the results).
pub(crate) const SERVICE_CONFIG: &str = r#"{
  "methodConfig": [{
    "name": [{"service": "grpc.testing.TestService"}],
    "timeout": "5s",
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.02s",
      "maxBackoff": "0.2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }],
  "loadBalancingConfig": [{"round_robin": {}}]
}"#;

/// Without the mechanism: the deadline only.
const NO_RETRY_CONFIG: &str = r#"{
  "methodConfig": [{"name": [{"service": "grpc.testing.TestService"}], "timeout": "5s"}]
}"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chaos {
    DrainRestart,
    Burst,
    Crash,
    Unavailable,
    GracefulRestart,
}

const SCHEDULE: [Chaos; 5] = [
    Chaos::DrainRestart,
    Chaos::Unavailable,
    Chaos::Burst,
    Chaos::Crash,
    Chaos::GracefulRestart,
];

/// One backend instance: a gRPC server whose calls answer UNAVAILABLE while
/// `unavailable` is set (a dependency of it is down, say).
struct Instance {
    shutdown: steadfast::ShutdownHandle,
    stats: steadfast::StatsHandle,
    task: tokio::task::JoinHandle<()>,
}

struct Slot {
    addr: SocketAddr,
    current: Option<Instance>,
    retired: Vec<steadfast::StatsHandle>,
    unavailable: Arc<AtomicBool>,
    /// Calls its application answered (not shed, not UNAVAILABLE).
    processed: Arc<AtomicU64>,
}

/// The backends' gRPC service, answering UNAVAILABLE (Trailers-Only) while told to.
#[derive(Clone)]
struct Flaky {
    inner: GrpcService,
    unavailable: Arc<AtomicBool>,
    processed: Arc<AtomicU64>,
}

impl tower_service::Service<Request<RecvBody>> for Flaky {
    type Response = Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RecvBody>) -> Self::Future {
        if self.unavailable.load(Ordering::Acquire) {
            let status = tonic::Status::unavailable("backend warming up: its cache is cold");
            let response = status.into_http::<()>().map(|()| body::empty());
            return Box::pin(std::future::ready(Ok(response)));
        }
        self.processed.fetch_add(1, Ordering::Relaxed);
        let call = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = call.await;
            Ok(response.map(body::boxed))
        })
    }
}

fn start(slot: &Slot) -> std::io::Result<Instance> {
    let listener = steadfast::bind_reuseport(slot.addr)?;
    let mut config = ServerConfig::default();
    config.proto.max_concurrent_streams = 32;
    // gRFC A9: connections are drained every few seconds, as in production.
    config.proto.max_connection_age = Some(Duration::from_secs(3));
    config.proto.max_connection_age_grace = Some(Duration::from_secs(1));
    config.shutdown_grace = Duration::from_secs(2);
    config.max_in_flight_per_connection = Some(backend::IN_FLIGHT_LIMIT);
    let server = steadfast::Server::new(config);
    let shutdown = server.shutdown_handle();
    let stats = server.stats_handle();
    let service = Flaky {
        inner: steadfast_grpc::Server::builder()
            .add_service(steadfast_interop::server::service())
            .into_service(),
        unavailable: slot.unavailable.clone(),
        processed: slot.processed.clone(),
    };
    let task = tokio::spawn(async move {
        let _ = server.serve(listener, service).await;
    });
    Ok(Instance {
        shutdown,
        stats,
        task,
    })
}

/// How the gRPC calls ended.
#[derive(Debug, Serialize)]
pub(crate) struct GrpcSummary {
    pub(crate) client: Client,
    pub(crate) retry: bool,
    pub(crate) seconds: f64,
    pub(crate) backends: usize,
    pub(crate) calls: u64,
    pub(crate) succeeded: u64,
    /// Failed calls by status code name.
    pub(crate) failed_by_status: BTreeMap<String, u64>,
    /// Failed calls by fate ("none": an answer of the server's application).
    pub(crate) failed_by_fate: BTreeMap<String, u64>,
    pub(crate) wrong_answers: u64,
    /// gRFC A6 retries of the service config.
    pub(crate) a6_retries: u64,
    pub(crate) a6_throttled: u64,
    /// Transparent retries underneath, by cause.
    pub(crate) transparent_not_sent: u64,
    pub(crate) transparent_refused_goaway: u64,
    pub(crate) transparent_refused_stream: u64,
    pub(crate) servers_refused: u64,
    pub(crate) servers_processed: u64,
    pub(crate) chaos: Vec<(f64, &'static str)>,
    pub(crate) service_config: &'static str,
    /// No call failed whose fate proves it was never processed.
    pub(crate) guarantee_held: bool,
}

#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    succeeded: AtomicU64,
    wrong: AtomicU64,
    by_status: Mutex<BTreeMap<String, u64>>,
    by_fate: Mutex<BTreeMap<String, u64>>,
}

/// Which client the workload runs through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Client {
    /// `steadfast_grpc::Channel` with the service config.
    Steadfast,
    /// tonic's own `tonic::transport::Channel` (`balance_list` over the same
    /// backends, a 5 s timeout per call; tonic has no service config or retries).
    Tonic,
}

pub(crate) async fn run(args: &Args, client: Client) -> std::io::Result<GrpcSummary> {
    let delay = Duration::from_micros(args.network_delay_us);
    let mut slots = Vec::new();
    let mut public = Vec::new();
    for _ in 0..args.backends.max(1) {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        public.push(relay.local_addr()?);
        tokio::spawn(backend::relay(relay, addr, delay));
        let mut slot = Slot {
            addr,
            current: None,
            retired: Vec::new(),
            unavailable: Arc::default(),
            processed: Arc::default(),
        };
        slot.current = Some(start(&slot)?);
        slots.push(slot);
    }
    let config_text = if args.no_retry {
        NO_RETRY_CONFIG
    } else {
        SERVICE_CONFIG
    };
    let config = ServiceConfig::from_json(config_text).map_err(std::io::Error::other)?;
    let mut pool = PoolConfig::default();
    pool.min_connections = slots.len();
    pool.max_connections = slots.len();
    pool.retry = if args.no_retry {
        RetryPolicy::disabled()
    } else {
        let mut retry = RetryPolicy::default();
        retry.refused_retries = 30;
        retry.buffer_per_request = 1 << 20;
        retry
    };
    pool.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
        min_connect_timeout: Duration::from_secs(2),
        ..BackoffConfig::default()
    };
    // One connection per backend, calls to the least loaded (what
    // `Channel::balance_list` does), with the demo's pool settings.
    let channel = Channel::builder("http://demo.backends:50051")
        .map_err(std::io::Error::other)?
        .pool_config(pool)
        .resolver(steadfast::client::StaticResolver::new(public.clone()))
        .service_config(config)
        .build();

    let tally = Arc::new(Tally::default());
    let start_at = Instant::now();
    let end = start_at + Duration::from_secs_f64(args.duration);
    let burst = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    #[cfg(feature = "against-tonic")]
    let tonic_channel = (client == Client::Tonic).then(|| tonic_channel(&public));
    #[cfg(not(feature = "against-tonic"))]
    if client == Client::Tonic {
        return Err(std::io::Error::other(
            "this steadfast was built without tonic's transport: build it with \
             `--features against-tonic` for `--against tonic`",
        ));
    }
    for w in 0..args.concurrency * 4 {
        let bursty = w >= args.concurrency;
        let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(w as u64);
        let work = Work {
            tally: tally.clone(),
            burst: burst.clone(),
            bursty,
            end,
            seed,
        };
        #[cfg(feature = "against-tonic")]
        if let Some(tonic_channel) = &tonic_channel {
            workers.spawn(worker(TestServiceClient::new(tonic_channel.clone()), work));
            continue;
        }
        workers.spawn(worker(TestServiceClient::new(channel.clone()), work));
    }
    let mut rng = SplitMix64::new(args.seed ^ 0x6770_6331);
    let every = Duration::from_millis(args.chaos_every.max(50));
    let mut next = start_at + every;
    let mut chaos_log = Vec::new();
    let mut tick = 0usize;
    while next + every / 2 < end {
        tokio::time::sleep_until(next.into()).await;
        next += every;
        let action = SCHEDULE[tick % SCHEDULE.len()];
        tick += 1;
        let victim = (rng.next_u64() as usize) % slots.len();
        chaos_log.push((start_at.elapsed().as_secs_f64(), label(action)));
        strike(action, &mut slots[victim], &burst).await?;
    }
    while workers.join_next().await.is_some() {}

    let mut summary = GrpcSummary {
        client,
        retry: !args.no_retry && client == Client::Steadfast,
        seconds: start_at.elapsed().as_secs_f64(),
        backends: slots.len(),
        chaos: chaos_log,
        service_config: if client == Client::Steadfast {
            config_text
        } else {
            "(tonic: none; a 5 s timeout per call)"
        },
        calls: 0,
        succeeded: 0,
        failed_by_status: BTreeMap::new(),
        failed_by_fate: BTreeMap::new(),
        wrong_answers: 0,
        a6_retries: 0,
        a6_throttled: 0,
        transparent_not_sent: 0,
        transparent_refused_goaway: 0,
        transparent_refused_stream: 0,
        servers_refused: 0,
        servers_processed: 0,
        guarantee_held: false,
    };
    for slot in &mut slots {
        if let Some(instance) = slot.current.take() {
            slot.retired.push(instance.stats.clone());
            instance.shutdown.graceful();
            let _ = tokio::time::timeout(Duration::from_secs(5), instance.task).await;
        }
        summary.servers_refused += slot.retired.iter().map(|s| s.get().refused).sum::<u64>();
        summary.servers_processed += slot.processed.load(Ordering::Relaxed);
    }
    summary.calls = tally.calls.load(Ordering::Relaxed);
    summary.succeeded = tally.succeeded.load(Ordering::Relaxed);
    summary.wrong_answers = tally.wrong.load(Ordering::Relaxed);
    summary.failed_by_status = tally
        .by_status
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    summary.failed_by_fate = tally.by_fate.lock().map(|m| m.clone()).unwrap_or_default();
    let a6 = channel.retry_stats();
    summary.a6_retries = a6.retries;
    summary.a6_throttled = a6.throttled;
    let stats = channel.client().stats();
    summary.transparent_not_sent = stats.retries_not_sent;
    summary.transparent_refused_goaway = stats.retries_refused_goaway;
    summary.transparent_refused_stream = stats.retries_refused_stream;
    summary.guarantee_held = ["NotSent", "Refused"]
        .iter()
        .all(|f| summary.failed_by_fate.get(*f).copied().unwrap_or(0) == 0);
    Ok(summary)
}

fn label(action: Chaos) -> &'static str {
    match action {
        Chaos::DrainRestart => "drain restart under load (one GOAWAY)",
        Chaos::Burst => "overload burst (REFUSED_STREAM)",
        Chaos::Crash => "crash under load (no GOAWAY)",
        Chaos::Unavailable => "backend answers UNAVAILABLE for 0.4 s",
        Chaos::GracefulRestart => "graceful restart (two-phase GOAWAY)",
    }
}

async fn strike(action: Chaos, slot: &mut Slot, burst: &AtomicBool) -> std::io::Result<()> {
    let under_load = matches!(action, Chaos::DrainRestart | Chaos::Crash);
    if under_load {
        burst.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match action {
        Chaos::GracefulRestart | Chaos::DrainRestart => {
            let fresh = start(slot)?;
            if let Some(old) = slot.current.replace(fresh) {
                slot.retired.push(old.stats.clone());
                if action == Chaos::GracefulRestart {
                    old.shutdown.graceful_with(Bytes::from_static(b"restart"));
                } else {
                    old.shutdown.graceful_now(Bytes::from_static(b"restart"));
                }
            }
        }
        Chaos::Burst => {
            burst.store(true, Ordering::Release);
            tokio::time::sleep(Duration::from_millis(400)).await;
            burst.store(false, Ordering::Release);
        }
        Chaos::Crash => {
            if let Some(old) = slot.current.take() {
                slot.retired.push(old.stats.clone());
                old.shutdown.abort();
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            slot.current = Some(start(slot)?);
        }
        Chaos::Unavailable => {
            slot.unavailable.store(true, Ordering::Release);
            tokio::time::sleep(Duration::from_millis(400)).await;
            slot.unavailable.store(false, Ordering::Release);
        }
    }
    if under_load {
        tokio::time::sleep(Duration::from_millis(100)).await;
        burst.store(false, Ordering::Release);
    }
    Ok(())
}

/// What one worker of the workload needs.
struct Work {
    tally: Arc<Tally>,
    burst: Arc<AtomicBool>,
    bursty: bool,
    end: Instant,
    seed: u64,
}

#[cfg(feature = "against-tonic")]
fn tonic_channel(public: &[SocketAddr]) -> tonic::transport::Channel {
    let endpoints = public.iter().filter_map(|addr| {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .ok()
            .map(|e| e.timeout(Duration::from_secs(5)))
    });
    tonic::transport::Channel::balance_list(endpoints)
}

async fn worker<T>(mut client: TestServiceClient<T>, work: Work)
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let Work {
        tally,
        burst,
        bursty,
        end,
        seed,
    } = work;
    let mut rng = SplitMix64::new(seed);
    while Instant::now() < end {
        if bursty && !burst.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let len = 1024 + (rng.next_u64() % (15 * 1024)) as usize;
        let want = 16 + (rng.next_u64() % 240) as i32;
        let request = SimpleRequest {
            response_size: want,
            payload: Some(Payload {
                body: vec![b'x'; len],
                ..Payload::default()
            }),
            ..SimpleRequest::default()
        };
        tally.calls.fetch_add(1, Ordering::Relaxed);
        match client.unary_call(request).await {
            Ok(reply) => {
                let got = reply
                    .into_inner()
                    .payload
                    .map_or(0, |p| p.body.len() as i32);
                if got != want {
                    tally.wrong.fetch_add(1, Ordering::Relaxed);
                }
                tally.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            Err(status) => {
                let fate = match status.fate() {
                    Some(Fate::NotSent) => "NotSent",
                    Some(Fate::Refused) => "Refused",
                    Some(Fate::MaybeProcessed) => "MaybeProcessed",
                    Some(Fate::Processed) => "Processed",
                    None => "none",
                };
                if let Ok(mut m) = tally.by_status.lock() {
                    *m.entry(format!("{:?}", status.code())).or_default() += 1;
                }
                if let Ok(mut m) = tally.by_fate.lock() {
                    *m.entry(fate.to_owned()).or_default() += 1;
                }
                tracing::debug!(%status, fate, "call failed");
            }
        }
    }
}

impl GrpcSummary {
    pub(crate) fn print_table(&self) {
        println!(
            "steadfast demo --grpc: {} calls in {:.1} s ({}), {} backends under chaos",
            self.calls,
            self.seconds,
            if self.retry {
                "A6 retry policy + transparent retry"
            } else {
                "no retry"
            },
            self.backends
        );
        println!();
        println!("service config:\n{}", self.service_config);
        println!();
        println!("chaos:");
        for (at, what) in &self.chaos {
            println!("  {at:6.2} s  {what}");
        }
        println!();
        println!("| outcome | calls |");
        println!("|---|---:|");
        println!("| succeeded | {} |", self.succeeded);
        for (code, n) in &self.failed_by_status {
            println!("| failed with {code} | {n} |");
        }
        for (fate, n) in &self.failed_by_fate {
            println!("| failed, fate {fate} | {n} |");
        }
        println!("| wrong answers | {} |", self.wrong_answers);
        println!();
        println!(
            "retries: {} by the service config (A6), {} throttled; transparent: {} never sent, {} refused by GOAWAY, {} refused by REFUSED_STREAM",
            self.a6_retries,
            self.a6_throttled,
            self.transparent_not_sent,
            self.transparent_refused_goaway,
            self.transparent_refused_stream
        );
        println!(
            "servers: {} calls processed, {} refused before processing",
            self.servers_processed, self.servers_refused
        );
        println!(
            "guarantee: {}",
            if self.guarantee_held {
                "held: no call failed that the servers provably never processed"
            } else {
                "BROKEN: calls the servers never processed failed"
            }
        );
    }
}

/// The two runs of `--against`, as one table.
pub(crate) fn print_side_by_side(ours: &GrpcSummary, theirs: &GrpcSummary) {
    println!(
        "steadfast demo --grpc --against tonic: the same workload and chaos ({} backends, {:.0} s each), two clients",
        ours.backends, ours.seconds
    );
    println!();
    println!("steadfast's service config:\n{}", ours.service_config);
    println!();
    let mut codes: Vec<&String> = ours
        .failed_by_status
        .keys()
        .chain(theirs.failed_by_status.keys())
        .collect();
    codes.sort();
    codes.dedup();
    let mut fates: Vec<&String> = ours
        .failed_by_fate
        .keys()
        .chain(theirs.failed_by_fate.keys())
        .collect();
    fates.sort();
    fates.dedup();
    let get = |m: &BTreeMap<String, u64>, k: &String| m.get(k).copied().unwrap_or(0);
    println!("| calls | steadfast_grpc::Channel | tonic::transport::Channel |");
    println!("|---|---:|---:|");
    println!("| made | {} | {} |", ours.calls, theirs.calls);
    println!("| succeeded | {} | {} |", ours.succeeded, theirs.succeeded);
    for code in codes {
        println!(
            "| failed with {code} | {} | {} |",
            get(&ours.failed_by_status, code),
            get(&theirs.failed_by_status, code)
        );
    }
    for fate in fates {
        let label = if fate == "none" {
            "failed, fate unknown (tonic) / an answer of the server (steadfast)".to_owned()
        } else {
            format!("failed, fate {fate}")
        };
        println!(
            "| {label} | {} | {} |",
            get(&ours.failed_by_fate, fate),
            get(&theirs.failed_by_fate, fate)
        );
    }
    println!(
        "| processed by the servers | {} | {} |",
        ours.servers_processed, theirs.servers_processed
    );
    println!(
        "| refused by the servers before processing | {} | {} |",
        ours.servers_refused, theirs.servers_refused
    );
    println!();
    println!(
        "steadfast: {} A6 retries; transparent: {} never sent, {} refused by GOAWAY, {} by REFUSED_STREAM. tonic cannot tell which of its failures were never processed: every one is just a status.",
        ours.a6_retries,
        ours.transparent_not_sent,
        ours.transparent_refused_goaway,
        ours.transparent_refused_stream
    );
}
