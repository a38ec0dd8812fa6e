//! The cost of the request reliability mechanism when nothing fails: the same load
//! through `steadfast::Client` with transparent retry on and off, side by side.
//!
//! `cargo run --release -p steadfast-cli --example retry_overhead [requests] [concurrency] [rounds]`
//!
//! An in-process `steadfast` server answers POSTs of 1 KiB (so every request's body
//! goes through the retry buffer when retry is on). Rounds alternate on/off; the
//! median requests/s and p99 latency of each mode are printed with their ratio.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use steadfast::body::{self, BoxBody};
use steadfast::client::StaticResolver;
use steadfast::{service_fn, Client, PoolConfig, RecvBody, RetryPolicy, Server, ServerConfig};

async fn answer(req: Request<RecvBody>) -> Result<Response<BoxBody>, Infallible> {
    let len = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    Ok(Response::new(body::full(Bytes::from(len.to_string()))))
}

async fn round(
    retry: bool,
    addr: std::net::SocketAddr,
    requests: usize,
    concurrency: usize,
) -> (f64, f64) {
    let policy = if retry {
        RetryPolicy::default()
    } else {
        RetryPolicy::disabled()
    };
    let mut config = PoolConfig::default();
    config.retry = policy;
    let client = Client::with_resolver(config, StaticResolver::new(vec![addr]));
    let payload = Bytes::from(vec![b'x'; 1024]);
    // Warm up the connection.
    let _ = client
        .send(
            Request::post("http://bench/")
                .body(Full::new(payload.clone()))
                .unwrap(),
        )
        .await;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let client = client.clone();
        let payload = payload.clone();
        let n = requests / concurrency + usize::from(w < requests % concurrency);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let res = client
                    .send(
                        Request::post("http://bench/")
                            .body(Full::new(payload.clone()))
                            .unwrap(),
                    )
                    .await
                    .expect("request");
                let _ = res.into_body().collect().await.expect("body");
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut all: Vec<Duration> = Vec::with_capacity(requests);
    while let Some(l) = tasks.join_next().await {
        all.extend(l.expect("worker"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let p99 = all[(all.len() - 1) * 99 / 100].as_secs_f64() * 1e3;
    (requests as f64 / elapsed, p99)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let requests = args.first().copied().unwrap_or(100_000);
    let concurrency = args.get(1).copied().unwrap_or(64);
    let rounds = args.get(2).copied().unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::new(ServerConfig::default());
        tokio::spawn(server.serve(listener, service_fn(answer)));
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            for retry in [true, false] {
                let r = round(retry, addr, requests, concurrency).await;
                if retry { on.push(r) } else { off.push(r) }
            }
        }
        let rps_on = median(on.iter().map(|r| r.0).collect());
        let rps_off = median(off.iter().map(|r| r.0).collect());
        let p99_on = median(on.iter().map(|r| r.1).collect());
        let p99_off = median(off.iter().map(|r| r.1).collect());
        println!("{requests} POSTs of 1 KiB, {concurrency} concurrent, median of {rounds} alternating rounds\n");
        println!("| transparent retry | req/s | p99 ms |");
        println!("|---|---:|---:|");
        println!("| on | {rps_on:.0} | {p99_on:.2} |");
        println!("| off | {rps_off:.0} | {p99_off:.2} |");
        println!("| on / off | {:.3} | {:.3} |", rps_on / rps_off, p99_on / p99_off);
    });
}
