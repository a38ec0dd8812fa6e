//! Both ends' `tracing` records of one failed request carry the same join key (client
//! address:port, server address:port, stream id): the server logs its service's
//! failure, the client the RST_STREAM it received, and the two match.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use steadfast::body::{self, BoxBody};
use steadfast::{service_fn, BoxError, ClientConfig, RecvBody, Server, ServerConfig};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

type Fields = HashMap<String, String>;

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
}

/// Keeps every event with the fields of the spans it is in.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Fields>>>);

struct SpanFields(Fields);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        ctx.span(id)
            .unwrap()
            .extensions_mut()
            .insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut Visitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.clone());
                }
            }
        }
        event.record(&mut Visitor(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

#[tokio::test]
async fn a_failed_request_is_logged_at_both_ends_with_the_same_join_key() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerConfig::default());
    let shutdown = server.shutdown_handle();
    let server_task = tokio::spawn(server.serve(
        listener,
        service_fn(|_req: Request<RecvBody>| async {
            // The server's application fails: the stream is reset with INTERNAL_ERROR.
            Err::<Response<BoxBody>, BoxError>("the handler failed".into())
        }),
    ));
    let uri: http::Uri = format!("http://{addr}/fail").parse().unwrap();
    let conn = steadfast::connect(&uri, &ClientConfig::default())
        .await
        .expect("connects");
    let error = tokio::time::timeout(
        Duration::from_secs(20),
        conn.send(Request::post(uri).body(body::full("x")).unwrap()),
    )
    .await
    .expect("answered in time")
    .expect_err("the server reset the stream");
    assert_eq!(error.code(), Some(steadfast::ErrorCode::INTERNAL_ERROR));
    shutdown.abort();
    let _ = tokio::time::timeout(Duration::from_secs(20), server_task).await;

    let records = capture.0.lock().unwrap().clone();
    let find = |role: &str, message: &str| {
        records
            .iter()
            .find(|r| {
                r.get("role").map(String::as_str) == Some(role)
                    && r.get("message").map(String::as_str) == Some(message)
            })
            .unwrap_or_else(|| panic!("no {role} record {message:?} in {records:#?}"))
            .clone()
    };
    let server = find("server", "service failed");
    let client = find("client", "stream failed");
    // The join key, seen from each end.
    assert_eq!(server["local"], addr.to_string(), "{server:?}");
    assert_eq!(client["peer"], addr.to_string(), "{client:?}");
    assert_eq!(server["peer"], client["local"], "{server:?} {client:?}");
    assert_eq!(server["stream"], client["stream"], "{server:?} {client:?}");
    assert_eq!(client["stream"], "1");
    // What the other side said, at the side that observed it.
    assert_eq!(client["code"], "INTERNAL_ERROR", "{client:?}");
    assert_eq!(client["by"], "Remote", "{client:?}");
    assert!(server["error"].contains("the handler failed"), "{server:?}");
}

#[tokio::test]
async fn a_response_carries_the_join_key_the_server_saw() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerConfig::default());
    let shutdown = server.shutdown_handle();
    let server_task = tokio::spawn(server.serve(
        listener,
        service_fn(|req: Request<RecvBody>| async move {
            // The server's view of the key, sent back in headers.
            let info = req.extensions().get::<steadfast::ConnectionInfo>().unwrap();
            let stream = req.extensions().get::<steadfast::StreamId>().unwrap();
            let response = Response::builder()
                .header("x-client", info.remote_addr().unwrap().to_string())
                .header("x-server", info.local_addr().unwrap().to_string())
                .header("x-stream", stream.get().to_string())
                .body(body::empty())
                .unwrap();
            Ok::<_, BoxError>(response)
        }),
    ));
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    // A single connection and a pooled client: both responses carry the key.
    let conn = steadfast::connect(&uri, &ClientConfig::default())
        .await
        .expect("connects");
    let pool = steadfast::Client::new(steadfast::PoolConfig::default());
    for _ in 0..2 {
        for response in [
            conn.send(Request::get(uri.clone()).body(body::empty()).unwrap())
                .await
                .unwrap(),
            pool.send(Request::get(uri.clone()).body(body::empty()).unwrap())
                .await
                .unwrap(),
        ] {
            let info = response
                .extensions()
                .get::<steadfast::ConnectionInfo>()
                .expect("the connection's addresses");
            let stream = response.body().stream_id();
            let header = |name| response.headers()[name].to_str().unwrap().to_owned();
            assert_eq!(info.local_addr().unwrap().to_string(), header("x-client"));
            assert_eq!(info.remote_addr().unwrap().to_string(), header("x-server"));
            assert_eq!(info.remote_addr(), Some(addr));
            assert_eq!(stream.get().to_string(), header("x-stream"));
        }
    }
    shutdown.graceful();
    let _ = tokio::time::timeout(Duration::from_secs(20), server_task).await;
    // Each normal end is recorded by both drivers, in their connection spans.
    let records = capture.0.lock().unwrap().clone();
    for role in ["client", "server"] {
        let ended: Vec<_> = records
            .iter()
            .filter(|r| {
                r.get("role").map(String::as_str) == Some(role)
                    && r.get("message").map(String::as_str) == Some("stream ended")
            })
            .collect();
        assert_eq!(ended.len(), 4, "{role}: {ended:#?}");
        assert!(ended
            .iter()
            .all(|r| r["end"] == "end_stream" && r.contains_key("peer")));
        // The server's END_STREAM (its response) came last, as each end saw it.
        let last = if role == "server" {
            "Application"
        } else {
            "Remote"
        };
        assert!(ended.iter().all(|r| r["by"] == last), "{role}: {ended:#?}");
    }
}
