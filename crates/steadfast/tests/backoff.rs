//! The gRPC connection backoff, end to end on tokio's virtual clock: a client whose
//! target refuses connections tries again at 1 s, 1.6 s, 2.56 s… (±20%), and starts
//! over once a connection succeeds.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Request;
use steadfast::body;
use steadfast::client::{Resolve, RetryPolicy};
use steadfast::{Client, PoolConfig};

/// Records the (virtual) time of every connection attempt.
#[derive(Clone, Default)]
struct Recorder {
    addr: Arc<Mutex<Option<SocketAddr>>>,
    attempts: Arc<Mutex<Vec<tokio::time::Instant>>>,
}

impl Resolve for Recorder {
    fn resolve(
        &self,
        _: &str,
        _: u16,
    ) -> Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> {
        self.attempts
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        let addr = *self.addr.lock().unwrap();
        Box::pin(async move { Ok(addr.into_iter().collect()) })
    }
}

#[tokio::test(start_paused = true)]
async fn reconnects_follow_the_grpc_backoff_and_reset_on_success() {
    // A port with nothing listening: every attempt is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let recorder = Recorder::default();
    *recorder.addr.lock().unwrap() = Some(closed);
    let client = Client::with_resolver(
        {
            let mut c = PoolConfig::default();
            c.retry = RetryPolicy::default();
            c
        },
        recorder.clone(),
    );
    let start = tokio::time::Instant::now();
    // With a deadline, a never-sent request keeps trying until it passes.
    let mut request = Request::get("http://backoff.test/")
        .body(body::empty())
        .unwrap();
    request.extensions_mut().insert(steadfast::Deadline(
        (start + Duration::from_secs(20)).into_std(),
    ));
    let err = client.send(request).await.unwrap_err();
    assert!(err.is_deadline_exceeded(), "{err}");

    let attempts: Vec<f64> = recorder
        .attempts
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.duration_since(start).as_secs_f64())
        .collect();
    // Attempts at 0, then after 1, 1.6, 2.56, 4.096, 6.5536 s (each ±20%).
    assert!(attempts.len() >= 5, "{attempts:?}");
    let mut expected = 1.0f64;
    for pair in attempts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= expected * 0.8 - 0.01 && gap <= expected * 1.2 + 0.01,
            "gap {gap} for {expected}: {attempts:?}"
        );
        expected *= 1.6;
    }
    assert_eq!(client.stats().connects, 0);
    assert!(client.stats().connect_failures >= 5);
    // No connection ever had the request: the deadline error proves it never left.
    assert_eq!(err.fate(), Some(steadfast::Fate::NotSent), "{err}");
    assert_eq!(client.stats().failed_not_sent, 1);

    // The target comes back: the next request waits out the backoff, then connects.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    *recorder.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
    let server = steadfast::Server::new(steadfast::ServerConfig::default());
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.serve(
        listener,
        steadfast::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(body::empty()))
        }),
    ));
    let res = client
        .send(
            Request::get("http://backoff.test/")
                .body(body::empty())
                .unwrap(),
        )
        .await;
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(client.stats().connects, 1);

    // It goes away again: the backoff starts over from 1 s, since SETTINGS arrived.
    shutdown.graceful();
    task.await.unwrap().unwrap();
    *recorder.addr.lock().unwrap() = Some(closed);
    recorder.attempts.lock().unwrap().clear();
    let again = tokio::time::Instant::now();
    let mut request = Request::get("http://backoff.test/")
        .body(body::empty())
        .unwrap();
    request.extensions_mut().insert(steadfast::Deadline(
        (again + Duration::from_secs(3)).into_std(),
    ));
    let _ = client.send(request).await.unwrap_err();
    let attempts = recorder.attempts.lock().unwrap().clone();
    assert!(attempts.len() >= 2, "{attempts:?}");
    let gap = attempts[1].duration_since(attempts[0]).as_secs_f64();
    assert!(
        (0.8 - 0.01..=1.2 + 0.01).contains(&gap),
        "after a success the backoff restarts at 1 s, not {gap}"
    );
}
