//! Load balancing and name resolution with real servers on 127.0.0.1: round_robin
//! spreads calls evenly and skips backends that are NOT_SERVING (gRFC A17 health
//! checks) or draining (GOAWAY); pick_first keeps one backend until it goes; a
//! resolver whose answer changes is followed without a new channel; a call that
//! finds no ready address says what became of each. Every call that fails here is
//! a test failure: the servers' own counts must add up to the calls made.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{bounded, echo, serve, EchoService, TestServer};
use steadfast::client::{ConnectivityState, Health, StaticResolver, SubchannelInfo};
use steadfast_grpc::service_config::LoadBalancing;
use steadfast_grpc::{Channel, ServiceConfig, StatusExt};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::echo_server::EchoServer;
use steadfast_grpc_example::echo::EchoRequest;
use tonic::server::NamedService;
use tonic::Code;
use tonic_health::server::HealthReporter;

const ECHO: &str = <EchoServer<EchoService> as NamedService>::NAME;

/// An Echo backend with (optionally) a tonic-health service beside it.
async fn backend(with_health: bool) -> (TestServer, Option<HealthReporter>) {
    let (service, events) = EchoService::new();
    let mut server = steadfast_grpc::Server::builder().add_service(EchoServer::new(service));
    let mut reporter = None;
    if with_health {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<EchoServer<EchoService>>().await;
        server = server.add_service(health_service);
        reporter = Some(health);
    }
    (serve(server, events).await, reporter)
}

fn ipv4_target(servers: &[&TestServer]) -> String {
    let list: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    format!("ipv4:{}", list.join(","))
}

/// Waits (at most 10 s) until `done` holds for the channel's subchannels.
async fn until(channel: &Channel, what: &str, done: impl Fn(&[SubchannelInfo]) -> bool) {
    let waited =
        tokio::time::timeout(Duration::from_secs(10), channel.wait_for_subchannels(done)).await;
    assert!(
        waited.is_ok(),
        "{what}: not within 10 s; subchannels: {:#?}",
        channel.subchannels()
    );
}

fn state_of(subchannels: &[SubchannelInfo], addr: SocketAddr) -> Option<ConnectivityState> {
    subchannels
        .iter()
        .find(|s| s.address == addr)
        .map(|s| s.state)
}

fn all_ready(subchannels: &[SubchannelInfo]) -> bool {
    !subchannels.is_empty()
        && subchannels
            .iter()
            .all(|s| s.state == ConnectivityState::Ready)
}

/// `n` unary calls one after the other, each of which must succeed.
async fn calls(client: &mut EchoClient<Channel>, n: usize, tag: &str) {
    for i in 0..n {
        let reply = bounded(client.unary(echo(&format!("{tag} {i}")))).await;
        if let Err(status) = reply {
            panic!("{tag} call {i} failed: {status:?}");
        }
    }
}

fn finished(servers: &mut [&mut TestServer]) -> Vec<usize> {
    servers.iter_mut().map(|s| s.take_finished()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_calls_evenly_over_three_backends() {
    let (mut a, _) = backend(false).await;
    let (mut b, _) = backend(false).await;
    let (mut c, _) = backend(false).await;
    let channel = Channel::builder(&ipv4_target(&[&a, &b, &c]))
        .expect("target")
        .load_balancing(LoadBalancing::RoundRobin)
        .build();
    until(&channel, "every backend READY", all_ready).await;
    let mut client = EchoClient::new(channel.clone());
    calls(&mut client, 300, "spread").await;
    assert_eq!(finished(&mut [&mut a, &mut b, &mut c]), [100, 100, 100]);
    let stats = channel.client().stats();
    assert_eq!(stats.connects, 3, "one connection per address: {stats:?}");
    assert_eq!(stats.resolutions, 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_skips_a_not_serving_backend_and_a_draining_one_and_no_call_fails() {
    let (mut a, _health_a) = backend(true).await;
    let (mut b, health_b) = backend(true).await;
    let (mut c, _health_c) = backend(true).await;
    let (b_addr, c_addr) = (b.addr, c.addr);
    let health_b = health_b.expect("reporter");
    let config = ServiceConfig::from_json(&format!(
        r#"{{"loadBalancingConfig": [{{"round_robin": {{}}}}],
            "healthCheckConfig": {{"serviceName": "{ECHO}"}}}}"#
    ))
    .expect("service config");
    let channel = Channel::builder(&ipv4_target(&[&a, &b, &c]))
        .expect("target")
        .service_config(config)
        .build();
    until(&channel, "every backend SERVING", |subs| {
        all_ready(subs) && subs.iter().all(|s| s.health == Some(Health::Serving))
    })
    .await;
    let mut client = EchoClient::new(channel.clone());
    calls(&mut client, 30, "healthy").await;
    assert_eq!(finished(&mut [&mut a, &mut b, &mut c]), [10, 10, 10]);

    // B says NOT_SERVING on its Watch stream: out of the picker, with the reason.
    health_b.set_not_serving::<EchoServer<EchoService>>().await;
    until(&channel, "B out of the picker", |subs| {
        state_of(subs, b_addr) == Some(ConnectivityState::TransientFailure)
    })
    .await;
    let b_info = channel
        .subchannels()
        .into_iter()
        .find(|s| s.address == b_addr)
        .expect("B");
    assert!(
        matches!(&b_info.health, Some(Health::NotServing(why)) if why.contains("NOT_SERVING")),
        "{b_info:?}"
    );
    calls(&mut client, 20, "b-unhealthy").await;
    assert_eq!(finished(&mut [&mut a, &mut b, &mut c]), [10, 0, 10]);

    // C drains (graceful shutdown: GOAWAY) while calls are in flight on it: the
    // ones it had finish, the ones it refuses go to A transparently.
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut client = client.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..10 {
                let request = EchoRequest {
                    sleep_ms: 20,
                    ..echo(&format!("drain {w} {i}"))
                };
                if let Err(status) = bounded(client.unary(request)).await {
                    panic!("call {w}/{i} failed during the drain: {status:?}");
                }
            }
        }));
    }
    // Once C has finished a call of this phase, drain it.
    let first = c.next_event().await;
    assert!(matches!(first, common::Event::Finished(_)), "{first:?}");
    c.shutdown_gracefully().await;
    for worker in workers {
        bounded(worker).await.expect("worker");
    }
    until(&channel, "C out of the picker", |subs| {
        state_of(subs, c_addr) != Some(ConnectivityState::Ready)
    })
    .await;
    let (a_count, b_count, c_count) = (a.take_finished(), b.take_finished(), 1 + c.take_finished());
    assert_eq!(b_count, 0, "B is still NOT_SERVING");
    // All 40 succeeded, and the servers processed 40: each exactly once.
    assert_eq!(a_count + c_count, 40, "A {a_count}, C {c_count}");
    calls(&mut client, 10, "after-drain").await;
    assert_eq!(a.take_finished() + b.take_finished(), 10);

    // B serves again: back in the picker.
    health_b.set_serving::<EchoServer<EchoService>>().await;
    until(&channel, "B back", |subs| {
        state_of(subs, b_addr) == Some(ConnectivityState::Ready)
    })
    .await;
    calls(&mut client, 10, "b-back").await;
    assert_eq!(finished(&mut [&mut a, &mut b]), [5, 5]);

    let stats = channel.client().stats();
    assert_eq!(
        stats.requests, stats.succeeded,
        "no call failed at the HTTP/2 layer: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_first_uses_one_backend_until_it_goes_away() {
    let (mut a, _) = backend(false).await;
    let (mut b, _) = backend(false).await;
    let (mut c, _) = backend(false).await;
    let channel = Channel::builder(&ipv4_target(&[&a, &b, &c]))
        .expect("target")
        .load_balancing(LoadBalancing::PickFirst {
            shuffle_address_list: false,
        })
        .build();
    let mut client = EchoClient::new(channel.clone());
    calls(&mut client, 20, "first").await;
    assert_eq!(finished(&mut [&mut a, &mut b, &mut c]), [20, 0, 0]);
    let states: Vec<ConnectivityState> = channel.subchannels().iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            ConnectivityState::Ready,
            ConnectivityState::Idle,
            ConnectivityState::Idle
        ],
        "one connection only"
    );

    a.shutdown_gracefully().await;
    calls(&mut client, 20, "second").await;
    assert_eq!(finished(&mut [&mut b, &mut c]), [20, 0]);
    assert_eq!(channel.client().stats().connects, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_resolver_answer_is_followed_without_a_new_channel() {
    let (mut old_1, _) = backend(false).await;
    let (mut old_2, _) = backend(false).await;
    let (mut new, _) = backend(false).await;
    let resolver = StaticResolver::new(vec![old_1.addr, old_2.addr]);
    let channel = Channel::builder("dns:///echo.service.test:50051")
        .expect("target")
        .resolver(resolver.clone())
        .load_balancing(LoadBalancing::RoundRobin)
        .min_resolve_interval(Duration::from_millis(50))
        .wait_for_ready(true)
        .build();
    let mut client = EchoClient::new(channel.clone());
    until(&channel, "both old backends READY", all_ready).await;
    calls(&mut client, 10, "old").await;
    assert_eq!(finished(&mut [&mut old_1, &mut old_2]), [5, 5]);

    // The service moves (the seed's renamed Kubernetes service): the name now
    // points at the new backend, and the old ones go away.
    *resolver.0.lock().expect("resolver") = vec![new.addr];
    old_1.shutdown_gracefully().await;
    old_2.shutdown_gracefully().await;

    // GOAWAY and the failed reconnects asked for a new resolution; a call that
    // waits for a ready address gets the new backend.
    let mut request = tonic::Request::new(echo("moved"));
    request.set_timeout(Duration::from_secs(5));
    bounded(client.unary(request))
        .await
        .expect("the call waits for the new address");
    calls(&mut client, 10, "new").await;
    assert_eq!(new.take_finished(), 11);
    let subchannels = channel.subchannels();
    assert_eq!(subchannels.len(), 1, "{subchannels:?}");
    assert_eq!(subchannels[0].address, new.addr);
    assert!(channel.client().stats().resolutions >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_resolution_waits_for_the_minimum_interval() {
    let (mut old, _) = backend(false).await;
    let (mut new, _) = backend(false).await;
    let old_addr = old.addr;
    let resolver = StaticResolver::new(vec![old.addr]);
    let channel = Channel::builder("dns:///echo.service.test:50051")
        .expect("target")
        .resolver(resolver.clone())
        .load_balancing(LoadBalancing::RoundRobin)
        .min_resolve_interval(Duration::from_secs(3600))
        .build();
    let mut client = EchoClient::new(channel.clone());
    calls(&mut client, 1, "old").await;
    *resolver.0.lock().expect("resolver") = vec![new.addr];
    old.shutdown_gracefully().await;
    until(&channel, "the old backend failed", |subs| {
        state_of(subs, old_addr) == Some(ConnectivityState::TransientFailure)
    })
    .await;
    // Within the interval the name is not asked again: the call fails fast, never
    // sent, and says what became of the one address it knows.
    let status = bounded(client.unary(echo("too soon")))
        .await
        .expect_err("no ready address");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.fate(), Some(steadfast::Fate::NotSent));
    assert!(
        status.message().contains(&old_addr.to_string()),
        "{status:?}"
    );
    assert_eq!(channel.client().stats().resolutions, 1);
    assert_eq!(new.take_finished(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_address_failed_the_error_names_each_and_its_last_error() {
    let mut closed = Vec::new();
    for _ in 0..2 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        closed.push(listener.local_addr().expect("addr"));
    }
    // The listeners are dropped: nothing listens on these ports any more.
    let target = format!("ipv4:{},{}", closed[0], closed[1]);
    for policy in [
        LoadBalancing::RoundRobin,
        LoadBalancing::PickFirst {
            shuffle_address_list: true,
        },
    ] {
        let channel = Channel::builder(&target)
            .expect("target")
            .load_balancing(policy)
            .build();
        let mut client = EchoClient::new(channel.clone());
        let status = bounded(client.unary(echo("nobody")))
            .await
            .expect_err("nothing listens");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(status.fate(), Some(steadfast::Fate::NotSent), "{status:?}");
        let message = status.message();
        for addr in &closed {
            assert!(
                message.contains(&format!("{addr} TRANSIENT_FAILURE (connecting to {addr}")),
                "{policy:?}: {message}"
            );
        }
        assert!(message.contains("refused"), "{message}");
        assert!(message.contains("found no ready address"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_without_a_health_service_is_used_with_checking_off() {
    let (mut a, _) = backend(false).await;
    let config = ServiceConfig::from_json(
        r#"{"loadBalancingPolicy": "round_robin", "healthCheckConfig": {"serviceName": ""}}"#,
    )
    .expect("service config");
    let channel = Channel::builder(&ipv4_target(&[&a]))
        .expect("target")
        .service_config(config)
        .build();
    until(&channel, "READY with checking off", |subs| {
        all_ready(subs) && matches!(subs[0].health, Some(Health::Disabled(_)))
    })
    .await;
    let mut client = EchoClient::new(channel.clone());
    calls(&mut client, 3, "unchecked").await;
    assert_eq!(a.take_finished(), 3);
    assert!(channel.service_config().is_some());
}

#[test]
fn dns_and_ip_targets_are_h2c_unless_tls_is_configured() {
    let plain = Channel::builder("dns:///localhost:50051")
        .expect("target")
        .build();
    assert!(
        format!("{plain:?}").contains("http://localhost:50051"),
        "{plain:?}"
    );
    let tls = Channel::builder("ipv4:127.0.0.1:50051")
        .expect("target")
        .tls_roots(steadfast::tls::Roots::WebPki)
        .expect("roots")
        .build();
    assert!(
        format!("{tls:?}").contains("https://127.0.0.1:50051"),
        "{tls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_call_is_retried_on_another_ready_subchannel() {
    // A sheds every call with REFUSED_STREAM before its service sees it.
    let mut shedding = steadfast::ServerConfig::default();
    shedding.max_in_flight = Some(0);
    let mut a = common::serve_echo_with(shedding).await;
    let (mut b, _) = backend(false).await;
    let channel = Channel::builder(&ipv4_target(&[&a, &b]))
        .expect("target")
        .load_balancing(LoadBalancing::RoundRobin)
        .build();
    until(&channel, "both READY", all_ready).await;
    let mut client = EchoClient::new(channel.clone());
    calls(&mut client, 20, "refused").await;
    assert_eq!(finished(&mut [&mut a, &mut b]), [0, 20]);
    // Each call's turn was A's (the retry to B moves the turn back to A); each was
    // refused there, retried once on B — transparently, not as an attempt.
    let stats = channel.client().stats();
    assert_eq!(stats.retries_refused_stream, 20, "{stats:?}");
    assert_eq!(stats.succeeded, 20, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_health_stream_takes_the_backend_out_of_the_picker() {
    // tonic-health fails Watch for a service it does not know with NOT_FOUND (grpc's
    // health.proto says to answer SERVICE_UNKNOWN): a failed health stream.
    let (mut a, _health) = backend(true).await;
    let config = ServiceConfig::from_json(
        r#"{"loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": "no.such.Service"}}"#,
    )
    .expect("service config");
    let channel = Channel::builder(&ipv4_target(&[&a]))
        .expect("target")
        .service_config(config)
        .build();
    until(&channel, "TRANSIENT_FAILURE", |subs| {
        subs.len() == 1 && subs[0].state == ConnectivityState::TransientFailure
    })
    .await;
    let status = bounded(EchoClient::new(channel.clone()).unary(echo("unhealthy")))
        .await
        .expect_err("no healthy backend");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.fate(), Some(steadfast::Fate::NotSent));
    assert!(
        status.message().contains(&format!(
            "{} TRANSIENT_FAILURE (health check: the health stream failed: NotFound",
            a.addr
        )),
        "{status:?}"
    );
    assert_eq!(a.take_finished(), 0);
}
