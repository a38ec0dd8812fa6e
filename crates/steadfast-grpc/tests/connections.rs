//! What a handler learns of its connection (addresses, TLS client certificates),
//! servers on any stream of transports, and channels over a fixed address list.

mod common;

use std::pin::Pin;
use std::time::Duration;

use common::{bounded, echo, serve_echo, Event};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use steadfast::tls::Roots;
use steadfast_grpc::{Channel, PeerExt, Server};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::echo_server::{Echo, EchoServer};
use steadfast_grpc_example::echo::{EchoReply, EchoRequest};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Answers with what it knows of the caller's connection:
/// `remote|local|tls|server name|certificate count|first certificate's length`.
#[derive(Clone, Default)]
struct WhoAmI;

#[tonic::async_trait]
impl Echo for WhoAmI {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let peer = request
            .peer()
            .ok_or_else(|| Status::internal("no ConnectionInfo"))?;
        let message = format!(
            "{}|{}|{}|{}|{}|{}",
            peer.remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            peer.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            peer.is_tls(),
            peer.server_name().unwrap_or_default(),
            peer.peer_certificates().len(),
            peer.peer_certificates().first().map_or(0, |c| c.len()),
        );
        Ok(Response::new(EchoReply {
            message,
            ..EchoReply::default()
        }))
    }

    type ServerStreamStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

    async fn server_stream(
        &self,
        _: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

async fn who_am_i(client: &mut EchoClient<Channel>) -> Vec<String> {
    let reply = bounded(client.unary(echo("?")))
        .await
        .expect("the call succeeds")
        .into_inner();
    reply.message.split('|').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_handler_sees_the_addresses_of_its_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder().add_service(EchoServer::new(WhoAmI));
    let task = tokio::spawn(server.serve_with_listener(listener, std::future::pending()));
    let mut client = EchoClient::new(Channel::from_target(&format!("http://{addr}")).unwrap());
    let seen = who_am_i(&mut client).await;
    let remote: std::net::SocketAddr = seen[0].parse().expect("a remote address");
    assert!(remote.ip().is_loopback() && remote.port() != 0, "{seen:?}");
    assert_ne!(remote, addr);
    assert_eq!(seen[1], addr.to_string());
    assert_eq!(&seen[2..], ["false", "", "0", "0"]);
    task.abort();
}

fn key(der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()))
}

#[tokio::test]
async fn a_handler_sees_the_client_certificate_of_mutual_tls() {
    let server_cert = steadfast_testkit::self_signed(&["localhost"]);
    let client_cert = steadfast_testkit::self_signed(&["client.test"]);
    let mut config = steadfast::ServerConfig::default();
    config.tls = Some(
        steadfast::tls::server_config_with_client_auth(
            vec![CertificateDer::from(server_cert.cert_der.clone())],
            key(&server_cert.key_der),
            vec![CertificateDer::from(client_cert.cert_der.clone())],
            false,
        )
        .expect("server TLS config"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = Server::builder()
        .config(config)
        .add_service(EchoServer::new(WhoAmI));
    let task = tokio::spawn(server.serve_with_listener(listener, std::future::pending()));
    let target = format!("https://localhost:{port}");
    let roots = || Roots::Certificates(vec![CertificateDer::from(server_cert.cert_der.clone())]);

    // With a client certificate: the handler gets it, leaf first.
    let channel = Channel::builder(&target)
        .unwrap()
        .tls_identity(
            roots(),
            vec![CertificateDer::from(client_cert.cert_der.clone())],
            key(&client_cert.key_der),
        )
        .expect("client TLS config")
        .resolver(steadfast::client::StaticResolver::new(vec![(
            [127, 0, 0, 1],
            port,
        )
            .into()]))
        .build();
    let seen = who_am_i(&mut EchoClient::new(channel)).await;
    assert_eq!(
        &seen[2..],
        [
            "true",
            "localhost",
            "1",
            &client_cert.cert_der.len().to_string()
        ]
    );

    // Without one (the certificate is optional here): served, and the handler knows.
    let channel = Channel::builder(&target)
        .unwrap()
        .tls_roots(roots())
        .expect("client TLS config")
        .resolver(steadfast::client::StaticResolver::new(vec![(
            [127, 0, 0, 1],
            port,
        )
            .into()]))
        .build();
    let seen = who_am_i(&mut EchoClient::new(channel)).await;
    assert_eq!(&seen[2..], ["true", "localhost", "0", "0"]);
    task.abort();
}

#[tokio::test]
async fn a_server_serves_a_stream_of_transports_and_drains_when_it_ends() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<tokio::net::TcpStream>>();
    // Hands over exactly one connection, then ends the stream.
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("a connection");
        let _ = tx.send(Ok(tcp));
    });
    let server = Server::builder().add_service(EchoServer::new(WhoAmI));
    let serving = tokio::spawn(server.serve_with_incoming(
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        std::future::pending(),
    ));
    let mut client = EchoClient::new(Channel::from_target(&format!("http://{addr}")).unwrap());
    let seen = who_am_i(&mut client).await;
    // The stream carries no addresses.
    assert_eq!(seen, ["", "", "false", "", "0", "0"]);
    // The stream ended: the server shuts its connection down gracefully and returns.
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server returns once its last connection is done")
        .unwrap()
        .expect("a clean end");
}

#[tokio::test]
async fn a_channel_over_an_address_list_connects_to_each_address() {
    let mut first = serve_echo().await;
    let mut second = serve_echo().await;
    let channel = Channel::balance_list("http", "echo.test:50051", vec![first.addr, second.addr])
        .expect("a list")
        .build();
    let mut client = EchoClient::new(channel.clone());
    for i in 0..2 {
        bounded(client.unary(echo(&format!("call {i}"))))
            .await
            .expect("the call succeeds");
    }
    // One connection per address, each of which served a call.
    assert_eq!(channel.client().stats().connects, 2);
    assert!(matches!(first.next_event().await, Event::Finished(_)));
    assert!(matches!(second.next_event().await, Event::Finished(_)));
    assert!(Channel::balance_list("http", "echo.test:1", Vec::new()).is_err());
}

#[tokio::test]
async fn keepalive_finds_a_server_that_went_silent() {
    use tokio::io::AsyncWriteExt;
    // An HTTP/2 server that completes the handshake, then never reads or answers
    // again (a peer behind a dead path).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (held_tx, held) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // SETTINGS (empty), then the ACK of the client's.
        tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0])
            .await
            .unwrap();
        let _ = held_tx.send(tcp);
    });
    let channel = Channel::builder(&format!("http://{addr}"))
        .unwrap()
        .keepalive(
            Duration::from_millis(100),
            Duration::from_millis(200),
            false,
        )
        .build();
    let started = std::time::Instant::now();
    let status = bounded(EchoClient::new(channel).unary(echo("anyone?")))
        .await
        .expect_err("no answer can come");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("keepalive"),
        "{}",
        status.message()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The request was written: the server may have it.
    use steadfast_grpc::StatusExt;
    assert_eq!(status.fate(), Some(steadfast::Fate::MaybeProcessed));
    drop(held);
}
