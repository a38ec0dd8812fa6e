//! `steadfast demo`: the request reliability mechanism under chaos, in one process on
//! loopback.
//!
//! A few backend servers sit behind one pooled [`steadfast::Client`]; a workload of
//! concurrent POSTs runs while a chaos schedule restarts backends (two-phase GOAWAY,
//! and single-GOAWAY drains as nginx does), bursts load past their limits (shed with
//! REFUSED_STREAM) and crashes them (connections dropped without GOAWAY). At the end it
//! shows how every request ended: with the mechanism on, none whose fate was
//! `NotSent` or `Refused` fails.

mod backend;
mod grpc;
mod report;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use steadfast::client::{BackoffConfig, ClientStats, SplitMix64, StaticResolver};
use steadfast::{Client, Deadline, Fate, PoolConfig, RetryPolicy};

pub(crate) use self::report::Summary;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub(crate) duration: f64,
    /// Backend servers behind the client.
    #[arg(long, default_value_t = 3)]
    pub(crate) backends: usize,
    /// Concurrent requests of the steady workload (bursts add three times as many).
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Seed of the chaos schedule and the request sizes.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Milliseconds between chaos events.
    #[arg(long, default_value_t = 1000)]
    pub(crate) chaos_every: u64,
    /// One-way delay of the simulated network, in microseconds.
    #[arg(long, default_value_t = 1000)]
    pub(crate) network_delay_us: u64,
    /// Run the same chaos with the transparent retry turned off.
    #[arg(long)]
    pub(crate) no_retry: bool,
    /// Print the figures as one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// The same chaos in gRPC: a tonic-generated client, a service config with a
    /// retry policy, backends that also answer UNAVAILABLE for a while.
    #[arg(long)]
    pub(crate) grpc: bool,
}

/// What the chaos schedule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chaos {
    /// A new instance takes the port; the old one drains with the two-phase GOAWAY.
    GracefulRestart,
    /// A new instance takes the port; the old one sends one GOAWAY with the real
    /// last-stream-id at once: requests crossing it are refused.
    DrainRestart,
    /// Three times the load for a moment: backends shed it with REFUSED_STREAM.
    Burst,
    /// The instance dies without GOAWAY; a new one starts a moment later.
    Crash,
}

const SCHEDULE: [Chaos; 4] = [
    Chaos::DrainRestart,
    Chaos::Burst,
    Chaos::Crash,
    Chaos::GracefulRestart,
];

/// Outcomes of the workload, by how each request ended.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    pub(crate) latencies_us: Mutex<Vec<u64>>,
    pub(crate) chaos: Mutex<Vec<(f64, &'static str)>>,
    pub(crate) wrong_answers: AtomicU64,
    /// A few distinct messages of failures, for the report.
    pub(crate) samples: Mutex<Vec<String>>,
}

pub(crate) async fn run(args: Args) -> u8 {
    if args.grpc {
        return match grpc::run(&args).await {
            Ok(summary) => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&summary).unwrap_or_default()
                    );
                } else {
                    summary.print_table();
                }
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        };
    }
    match run_demo(args.clone()).await {
        Ok(summary) => {
            if args.json {
                println!("{}", summary.to_json());
            } else {
                summary.print_table();
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Runs the whole demo and returns its figures.
pub(crate) async fn run_demo(args: Args) -> std::io::Result<Summary> {
    let backends = args.backends.max(1);
    let delay = Duration::from_micros(args.network_delay_us);
    let mut slots = Vec::new();
    for _ in 0..backends {
        // Reserve a port for the backend, and one for the relay in front of it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let public = relay.local_addr()?;
        tokio::spawn(backend::relay(relay, addr, delay));
        let current = backend::start(addr, 0)?;
        slots.push(backend::Slot {
            addr,
            public,
            current: Some(current),
            generation: 0,
            retired: Vec::new(),
        });
    }
    let public: Vec<SocketAddr> = slots.iter().map(|s| s.public).collect();
    let mut retry = RetryPolicy::default();
    if args.no_retry {
        retry = RetryPolicy::disabled();
    } else {
        // Refused requests were provably never processed: beyond the immediate
        // transparent retry, keep resending them (with backoff) within the deadline.
        retry.refused_retries = 30;
    }
    let mut pool = PoolConfig::default();
    pool.min_connections = backends;
    pool.max_connections = backends;
    pool.retry = retry;
    // Restarts take milliseconds here: back off in milliseconds too.
    pool.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
        min_connect_timeout: Duration::from_secs(2),
        ..BackoffConfig::default()
    };
    let client = Client::with_resolver(pool, StaticResolver::new(public));

    let outcomes = Arc::new(Outcomes::default());
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.duration);
    let burst = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.concurrency * 4 {
        let bursty = w >= args.concurrency;
        let client = client.clone();
        let outcomes = outcomes.clone();
        let burst = burst.clone();
        let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(w as u64);
        workers.spawn(worker(client, outcomes, burst, bursty, end, seed));
    }
    let progress = tokio::spawn(report::progress(client.clone(), start, end, args.json));

    // The chaos schedule.
    let mut rng = SplitMix64::new(args.seed ^ 0x5eed);
    let mut tick = 0usize;
    let every = Duration::from_millis(args.chaos_every.max(50));
    let mut next = start + every;
    // Each incident is meant to cause one kind of transparent retry (or, with the
    // mechanism off, one kind of failure). Whether a given strike does depends on
    // timing, so an incident whose effect has never been seen yet is repeated at the
    // next slot until it has: every cause occurs by construction, not by luck.
    let mut seen = [false; SCHEDULE.len()];
    while next + every / 2 < end {
        tokio::time::sleep_until(next.into()).await;
        next += every;
        let slot = tick % SCHEDULE.len();
        let action = SCHEDULE[slot];
        let before = evidence(action, &client.stats());
        let victim = (rng.next_u64() as usize) % slots.len();
        let at = start.elapsed().as_secs_f64();
        let label = chaos(action, &mut slots[victim], &burst).await?;
        if let Ok(mut c) = outcomes.chaos.lock() {
            c.push((at, label));
        }
        let until = (next - every / 4).min(end);
        loop {
            seen[slot] |= before.is_none() || evidence(action, &client.stats()) > before;
            if seen[slot] || Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if seen[slot] || seen.iter().all(|s| *s) {
            tick += 1;
        }
    }
    while workers.join_next().await.is_some() {}
    let _ = progress.await;

    let mut refused_by_servers = 0;
    let mut accepted_by_servers = 0;
    for slot in &mut slots {
        if let Some(instance) = slot.current.take() {
            slot.retired.push(Arc::new(instance.stats.clone()));
            instance.shutdown.graceful();
            let _ = tokio::time::timeout(Duration::from_secs(5), instance.task).await;
        }
        for s in &slot.retired {
            let s = s.get();
            refused_by_servers += s.refused;
            accepted_by_servers += s.accepted;
        }
    }
    Ok(Summary::new(
        &args,
        &client.stats(),
        &outcomes,
        start.elapsed(),
        refused_by_servers,
        accepted_by_servers,
    ))
}

/// The client's count of what `action` is meant to cause, retried or failed:
/// a drain refuses streams by GOAWAY, a burst is shed with REFUSED_STREAM, a crash
/// leaves requests queued behind the stream limit never sent (and those in flight
/// maybe processed). A graceful restart is meant to cause nothing.
fn evidence(action: Chaos, stats: &ClientStats) -> Option<u64> {
    match action {
        Chaos::DrainRestart => Some(stats.retries_refused_goaway + stats.failed_refused),
        Chaos::Burst => Some(stats.retries_refused_stream + stats.failed_refused),
        Chaos::Crash => Some(stats.retries_not_sent + stats.failed_not_sent),
        Chaos::GracefulRestart => None,
    }
}

async fn chaos(
    action: Chaos,
    slot: &mut backend::Slot,
    burst: &AtomicBool,
) -> std::io::Result<&'static str> {
    // Incidents come under load: drains and crashes strike during a burst, while the
    // client has requests queued beyond the servers' stream limits.
    if matches!(action, Chaos::DrainRestart | Chaos::Crash) {
        burst.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let label = chaos_action(action, slot, burst).await;
    if matches!(action, Chaos::DrainRestart | Chaos::Crash) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        burst.store(false, Ordering::Release);
    }
    label
}

async fn chaos_action(
    action: Chaos,
    slot: &mut backend::Slot,
    burst: &AtomicBool,
) -> std::io::Result<&'static str> {
    match action {
        Chaos::GracefulRestart | Chaos::DrainRestart => {
            slot.generation += 1;
            let fresh = backend::start(slot.addr, slot.generation)?;
            if let Some(old) = slot.current.replace(fresh) {
                slot.retired.push(Arc::new(old.stats.clone()));
                if action == Chaos::GracefulRestart {
                    old.shutdown.graceful_with(Bytes::from_static(b"restart"));
                } else {
                    old.shutdown.graceful_now(Bytes::from_static(b"restart"));
                }
            }
            Ok(if action == Chaos::GracefulRestart {
                "graceful restart (two-phase GOAWAY)"
            } else {
                "drain restart under load (one GOAWAY)"
            })
        }
        Chaos::Burst => {
            burst.store(true, Ordering::Release);
            tokio::time::sleep(Duration::from_millis(400)).await;
            burst.store(false, Ordering::Release);
            Ok("overload burst")
        }
        Chaos::Crash => {
            if let Some(old) = slot.current.take() {
                slot.retired.push(Arc::new(old.stats.clone()));
                old.shutdown.abort();
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            slot.generation += 1;
            slot.current = Some(backend::start(slot.addr, slot.generation)?);
            Ok("crash under load (connections dropped, no GOAWAY)")
        }
    }
}

async fn worker(
    client: Client,
    outcomes: Arc<Outcomes>,
    burst: Arc<AtomicBool>,
    bursty: bool,
    end: Instant,
    seed: u64,
) {
    let mut rng = SplitMix64::new(seed);
    while Instant::now() < end {
        if bursty && !burst.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let len = 1024 + (rng.next_u64() % (15 * 1024)) as usize;
        let body = Bytes::from(vec![b'x'; len]);
        let mut request = Request::post("http://demo.backends/work")
            .body(Full::new(body))
            .unwrap_or_default();
        request
            .extensions_mut()
            .insert(Deadline(Instant::now() + Duration::from_secs(5)));
        let started = Instant::now();
        let result = async {
            let response = client.send(request).await?;
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, steadfast::Error>(bytes)
        }
        .await;
        match result {
            Ok(answer) => {
                if answer != len.to_string().as_bytes() {
                    outcomes.wrong_answers.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut l) = outcomes.latencies_us.lock() {
                    l.push(started.elapsed().as_micros() as u64);
                }
            }
            Err(e) => {
                // Failures are counted by the client's stats, by fate; keep a few
                // distinct messages so the report can say what they were.
                if e.fate().is_some_and(Fate::is_retry_safe) {
                    tracing::debug!(error = %e, "retry-safe request failed");
                }
                let message = format!(
                    "[{}] {e}",
                    e.fate().map_or("no fate".to_owned(), |f| format!("{f:?}"))
                );
                if let Ok(mut samples) = outcomes.samples.lock() {
                    // One sample per kind of failure (ignoring stream ids and counts).
                    let kind = |m: &str| {
                        m.chars()
                            .filter(|c| !c.is_ascii_digit())
                            .collect::<String>()
                    };
                    let this = kind(&message);
                    if samples.len() < 6 && !samples.iter().any(|s| kind(s) == this) {
                        samples.push(message);
                    }
                }
            }
        }
    }
}
