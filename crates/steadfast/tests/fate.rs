//! Fates that only the runtime can get wrong: a connection task that disappears
//! without answering proves nothing about the request it had taken.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use steadfast::body::{self, BoxBody};
use steadfast::{service_fn, ClientConfig, Fate, RecvBody, Server, ServerConfig};
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(20);

/// The client's connection task runs on a runtime of its own, which is shut down
/// while the request sits in the server's application: the response channel is
/// dropped unanswered. The request had been written, so its error must say
/// `MaybeProcessed` (it was `NotSent`, retry-safe, before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_connection_task_does_not_make_a_sent_request_retry_safe() {
    let (arrived_tx, arrived_rx) = oneshot::channel::<()>();
    let arrived = Arc::new(Mutex::new(Some(arrived_tx)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerConfig::default());
    let shutdown = server.shutdown_handle();
    let server_task = tokio::spawn(server.serve(
        listener,
        service_fn(move |_req: Request<RecvBody>| {
            if let Some(tx) = arrived.lock().unwrap().take() {
                let _ = tx.send(());
            }
            async {
                // The application holds the request and never answers.
                std::future::pending::<()>().await;
                Ok::<Response<BoxBody>, Infallible>(Response::new(body::empty()))
            }
        }),
    ));

    // The client side: its own runtime, driven from a plain thread.
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    let conn = std::thread::scope(|s| {
        s.spawn(|| client_rt.block_on(steadfast::connect(&uri, &ClientConfig::default())))
            .join()
            .unwrap()
    })
    .expect("connects");
    let response = conn.send(Request::post(uri).body(body::full("payload")).unwrap());
    let response = tokio::spawn(response);
    tokio::time::timeout(LIMIT, arrived_rx)
        .await
        .expect("the request reaches the application in time")
        .unwrap();
    // Drop the runtime, and with it the connection task, mid-request.
    tokio::task::spawn_blocking(move || client_rt.shutdown_background())
        .await
        .unwrap();

    let error = tokio::time::timeout(LIMIT, response)
        .await
        .expect("the caller is answered in time")
        .unwrap()
        .expect_err("no response can come");
    assert_eq!(error.fate(), Some(Fate::MaybeProcessed), "{error}");
    assert!(!error.is_retry_safe(), "{error}");
    assert!(
        error.to_string().contains("ended without answering"),
        "{error}"
    );
    shutdown.abort();
    let _ = tokio::time::timeout(LIMIT, server_task).await;
}
