//! The service config's `maxRequestMessageBytes` and `maxResponseMessageBytes`:
//! RESOURCE_EXHAUSTED, before the message is sent on (request) or buffered
//! (response).

mod common;

use common::{bounded, echo, serve_echo};
use steadfast_grpc::{Channel, ServiceConfig};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use tonic::Code;

#[tokio::test]
async fn messages_above_the_method_limits_fail_with_resource_exhausted() {
    let mut server = serve_echo().await;
    let config = r#"{"methodConfig": [{"name": [{"service": "steadfast.test.Echo"}],
        "maxRequestMessageBytes": 40, "maxResponseMessageBytes": "50"}]}"#;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .service_config(ServiceConfig::from_json(config).unwrap())
        .build();
    let mut client = EchoClient::new(channel);
    // Fits both ways.
    bounded(client.unary(echo("short")))
        .await
        .expect("small messages pass");
    assert!(matches!(
        server.next_event().await,
        common::Event::Finished(_)
    ));

    // A request message of 52 bytes: refused before the server gets it.
    let status = bounded(client.unary(echo(&"q".repeat(50))))
        .await
        .expect_err("too large to send");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("maxRequestMessageBytes (40 bytes"),
        "{}",
        status.message()
    );

    // A request of 39 bytes whose reply (39, plus 11 for deadline_ms -1 and 2 for
    // hops: 52) is over 50: the reply is refused.
    let status = bounded(client.unary(echo(&"r".repeat(37))))
        .await
        .expect_err("reply too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("maxResponseMessageBytes (50 bytes"),
        "{}",
        status.message()
    );
    // The server processed that one (it is the reply that failed).
    assert!(matches!(
        server.next_event().await,
        common::Event::Finished(_)
    ));
    // The oversized request never reached a handler.
    assert!(server.events.try_recv().is_err());
}
