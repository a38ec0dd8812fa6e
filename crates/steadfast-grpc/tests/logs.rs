//! The Channel's records of a call's end carry the join key (client address:port,
//! server address:port, stream id), matching what the server saw of the same call;
//! a failed call's record says who ended the stream, with which code, and its fate.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, echo, EchoService};
use steadfast_grpc::Server;
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::echo_server::EchoServer;
use steadfast_grpc_example::echo::EchoRequest;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Every event's own fields, as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<HashMap<String, String>>>>);

struct Visitor<'a>(&'a mut HashMap<String, String>);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Visitor(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

/// The server's view of each call (stream id, client address) sent back as metadata.
#[derive(Clone)]
struct JoinKey<S>(S);

impl<S, B, RB> tower_service::Service<http::Request<B>> for JoinKey<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let info = request.extensions().get::<steadfast::ConnectionInfo>();
        let client = info.and_then(|i| i.remote_addr()).map(|a| a.to_string());
        let stream = request
            .extensions()
            .get::<steadfast::StreamId>()
            .map(|s| s.get().to_string());
        let future = self.0.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            let headers = response.headers_mut();
            headers.insert("x-client", client.unwrap_or_default().parse().unwrap());
            headers.insert("x-stream", stream.unwrap_or_default().parse().unwrap());
            Ok(response)
        })
    }
}

#[tokio::test]
async fn the_channel_records_the_join_key_the_server_saw_and_how_a_call_failed() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let (service, _events) = EchoService::new();
    let grpc = Server::builder()
        .add_service(EchoServer::new(service))
        .into_service();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = steadfast::Server::new(steadfast::ServerConfig::default());
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve(listener, JoinKey(grpc)));
    let channel = steadfast_grpc::Channel::builder(&format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .build();
    let mut client = EchoClient::new(channel);

    let response = bounded(client.unary(echo("hello"))).await.unwrap();
    let meta = response.metadata();
    let (seen_client, seen_stream) = (
        meta.get("x-client").unwrap().to_str().unwrap().to_owned(),
        meta.get("x-stream").unwrap().to_str().unwrap().to_owned(),
    );
    // A server-streaming call the server gives up on: the connection is dropped
    // mid-call (abort: no GOAWAY), after the first message.
    let slow = EchoRequest {
        count: 2,
        sleep_ms: 5_000,
        ..echo("slow")
    };
    let mut replies = bounded(client.server_stream(slow))
        .await
        .unwrap()
        .into_inner();
    shutdown.abort();
    let failure = bounded(async {
        loop {
            match replies.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended normally"),
                Err(status) => return status,
            }
        }
    })
    .await;
    assert_eq!(failure.code(), tonic::Code::Unavailable, "{failure:?}");
    let _ = bounded(serving).await;

    let records = capture.0.lock().unwrap().clone();
    let find = |message: &str| {
        records
            .iter()
            .find(|r| r.get("message").map(String::as_str) == Some(message))
            .unwrap_or_else(|| panic!("no record {message:?} in {records:#?}"))
            .clone()
    };
    let ended = find("call ended");
    assert_eq!(ended["client"], seen_client, "{ended:?}");
    assert_eq!(ended["server"], addr.to_string(), "{ended:?}");
    assert_eq!(ended["stream"], seen_stream, "{ended:?}");
    assert_eq!(ended["grpc_status"], "0", "{ended:?}");
    let failed = find("call failed");
    assert_eq!(failed["server"], addr.to_string(), "{failed:?}");
    assert!(failed.contains_key("client"), "{failed:?}");
    assert!(failed.contains_key("stream"), "{failed:?}");
    // The connection was lost after the response headers: the server saw the call.
    assert_eq!(failed["fate"], "Processed", "{failed:?}");
    assert_eq!(failed["by"], "Remote", "{failed:?}");
}
