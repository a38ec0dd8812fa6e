//! The README's "Using it from tonic": a tonic generated Greeter served by
//! `steadfast_grpc::Server` and called through `steadfast_grpc::Channel`.
//!
//! `cargo run -p steadfast-grpc-example --example greeter`

use std::pin::Pin;
use std::time::Duration;

use steadfast_grpc::{Channel, Server, StatusExt};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

// In your crate: `tonic::include_proto!("steadfast.example");` in a module.
use steadfast_grpc_example::greeter::greeter_client::GreeterClient;
use steadfast_grpc_example::greeter::greeter_server::{Greeter, GreeterServer};
use steadfast_grpc_example::greeter::{HelloReply, HelloRequest};

#[derive(Default)]
struct MyGreeter;

#[tonic::async_trait]
impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        // The deadline the caller set (grpc-timeout), enforced by the server; calls
        // made from here through a Channel inherit it.
        let left = steadfast_grpc::deadline::remaining();
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}! (deadline in {left:?})"),
        }))
    }

    type SayHellosStream = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

    async fn say_hellos(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<Self::SayHellosStream>, Status> {
        let HelloRequest { name, count } = request.into_inner();
        let replies = tokio_stream::iter(0..count).map(move |i| {
            Ok(HelloReply {
                message: format!("Hello {name} #{i}"),
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

/// Serves on a free port, makes a few calls, shuts down.
pub(crate) async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(GreeterServer::new(MyGreeter))
            .serve_with_listener(listener, async {
                let _ = stopped.await;
            }),
    );

    let channel = Channel::builder(&format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .user_agent("greeter-example/1.0")
        .build();
    let mut client = GreeterClient::new(channel);

    let mut request = Request::new(HelloRequest {
        name: "steadfast".into(),
        count: 0,
    });
    request.set_timeout(Duration::from_secs(2));
    let reply = client.say_hello(request).await?.into_inner();
    println!("{}", reply.message);

    let mut stream = client
        .say_hellos(HelloRequest {
            name: "stream".into(),
            count: 3,
        })
        .await?
        .into_inner();
    while let Some(reply) = stream.message().await? {
        println!("{}", reply.message);
    }

    let _ = stop.send(());
    server.await??;

    // Nothing listens there any more: UNAVAILABLE, and the Status knows the call
    // was never sent, so retrying it is safe. (With a deadline, a never-sent call is
    // retried transparently until the deadline instead.)
    let error = client
        .say_hello(HelloRequest::default())
        .await
        .expect_err("the server is gone");
    println!(
        "{:?}: {} (fate {:?}, retry safe: {})",
        error.code(),
        error.message(),
        error.fate(),
        error.is_retry_safe()
    );
    Ok(())
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await
}
