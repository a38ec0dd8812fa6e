//! tower layers around a Server's services, and tonic interceptors on one service.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{bounded, echo, echo_client, EchoService};
use steadfast_grpc::Server;
use steadfast_grpc_example::echo::echo_server::EchoServer;
use tonic::{Code, Request, Status};

#[tokio::test]
async fn tower_layers_wrap_the_services_of_a_server() {
    let (service, _events) = EchoService::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let grpc = Server::builder()
        .add_service(EchoServer::new(service))
        .into_service();
    // Any tower layer: here a concurrency limit and a request counter that also
    // tags the request with a header the handler could read.
    let layered = tower::ServiceBuilder::new()
        .concurrency_limit(4)
        .map_request(move |mut request: http::Request<steadfast::RecvBody>| {
            counter.fetch_add(1, Ordering::SeqCst);
            request
                .headers_mut()
                .insert("x-layer", http::HeaderValue::from_static("yes"));
            request
        })
        .service(grpc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = steadfast::Server::new(steadfast::ServerConfig::default());
    let shutdown = server.shutdown_handle();
    tokio::spawn(server.serve(listener, layered));
    let mut client = echo_client(&url);
    for i in 0..3 {
        let reply = bounded(client.unary(echo(&format!("m{i}"))))
            .await
            .expect("served through the layers");
        assert_eq!(reply.into_inner().message, format!("m{i}"));
    }
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    shutdown.abort();
}

#[tokio::test]
async fn a_tonic_interceptor_guards_one_service() {
    let (service, mut events) = EchoService::new();
    let check = |request: Request<()>| match request.metadata().get("authorization") {
        Some(token) if token == "Bearer good" => Ok(request),
        _ => Err(Status::unauthenticated("no valid token")),
    };
    let server = Server::builder().add_service(EchoServer::with_interceptor(service, check));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve_with_listener(listener, async {
        let _ = stopped.await;
    }));
    let mut client = echo_client(&url);
    let status = bounded(client.unary(echo("no token")))
        .await
        .expect_err("refused by the interceptor");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "no valid token");
    // The handler never ran.
    assert!(events.try_recv().is_err());
    let mut request = Request::new(echo("with token"));
    request
        .metadata_mut()
        .insert("authorization", "Bearer good".parse().unwrap());
    let reply = bounded(client.unary(request)).await.expect("let through");
    assert_eq!(reply.into_inner().message, "with token");
    let _ = stop.send(());
}
