//! Time-based connection management on a virtual clock: keepalive PINGs (gRFC A8),
//! enforcement of the peer's PING rate (A8, as grpc-go does it), and the idle and age
//! limits of gRFC A9.

mod support;

use std::time::Duration;

use bytes::Bytes;
use steadfast_proto::frame::{Frame, GoAwayFrame, Ping};
use steadfast_proto::{
    Config, Error, ErrorCode, Event, Fate, GoAway, Initiator, Keepalive, PingPolicy, Settings,
    StreamId, UserError,
};
use support::{assert_not_due, request, response, sid, window_update, Pair, Peer};

const KEEPALIVE: [u8; 8] = *b"sf-alive";
const DRAIN: [u8; 8] = *b"sf-drain";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn keepalive_ping() -> Frame {
    Frame::Ping(Ping {
        payload: KEEPALIVE,
        ack: false,
    })
}

fn ping(payload: [u8; 8], ack: bool) -> Frame {
    Frame::Ping(Ping { payload, ack })
}

fn goaway(last_stream_id: StreamId, code: ErrorCode, debug: &'static str) -> Frame {
    Frame::GoAway(GoAwayFrame(GoAway {
        code,
        last_stream_id,
        debug_data: Bytes::from_static(debug.as_bytes()),
    }))
}

/// A client sending keepalive PINGs after `time` seconds of silence, with a timeout of
/// `timeout` seconds.
fn keepalive_config(time: u64, timeout: u64) -> Config {
    {
        let mut c = Config::default();
        c.keepalive = Some(Keepalive {
            timeout: secs(timeout),
            ..Keepalive::new(secs(time))
        });
        c
    }
}

fn policy_config(policy: PingPolicy) -> Config {
    {
        let mut c = Config::default();
        c.ping_policy = Some(policy);
        c
    }
}

/// A server under test, handshake done and its events discarded.
fn server(config: Config) -> Peer {
    Peer::server_with(config, Settings::default())
}

/// A client under test, handshake done and its events discarded.
fn client(config: Config) -> Peer {
    Peer::client_with(config, Settings::default())
}

fn stream_errors(events: &[Event]) -> Vec<(StreamId, Error, Option<Fate>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StreamError { id, error, fate } => Some((*id, error.clone(), *fate)),
            _ => None,
        })
        .collect()
}

fn goaways_received(events: &[Event]) -> Vec<GoAway> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GoAwayReceived(g) => Some(g.clone()),
            _ => None,
        })
        .collect()
}

/// (Server under test) The peer opens stream `id` with a GET.
fn open(peer: &mut Peer, id: u32, end_stream: bool) {
    peer.send_request(id, end_stream);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id: i, .. }] if *i == sid(id)),
        "request on {id}: {events:?}"
    );
}

/// (Server under test) The peer sends a PING, which is acknowledged.
fn ping_acked(peer: &mut Peer, payload: [u8; 8]) {
    peer.send(ping(payload, false));
    peer.expect_frames(&[ping(payload, true)]);
    assert!(!peer.conn.is_closed());
}

// ---- configuration ----

#[test]
fn timers_are_off_by_default_and_defaults_follow_grpc() {
    let config = Config::default();
    assert!(config.keepalive.is_none());
    assert!(config.ping_policy.is_none());
    assert!(config.max_connection_idle.is_none());
    assert!(config.max_connection_age.is_none());
    assert!(config.max_connection_age_grace.is_none());

    let keepalive = Keepalive::new(secs(30));
    assert_eq!(keepalive.time, secs(30));
    assert_eq!(keepalive.timeout, secs(20));
    assert!(!keepalive.without_calls);

    let policy = PingPolicy::default();
    assert_eq!(policy.min_time, secs(300));
    assert!(!policy.permit_without_calls);
    assert_eq!(policy.max_strikes, 2);

    // Nothing is armed on an established connection without timers.
    let mut peer = client(Config::default());
    peer.client_open(&request("GET", "/"), false);
    assert_eq!(peer.conn.poll_timeout(), None);
}

// ---- keepalive (A8) ----

#[test]
fn keepalive_ping_after_time_of_silence_with_an_active_stream() {
    let mut peer = client(keepalive_config(10, 5));
    let t0 = peer.now;
    assert_eq!(peer.conn.poll_timeout(), None, "no stream: no keepalive");
    peer.client_open(&request("GET", "/"), true);
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(10)));

    peer.run_for(secs(9));
    peer.expect_silence();
    peer.run_for(secs(1));
    peer.expect_frames(&[keepalive_ping()]);
    assert_eq!(
        peer.conn.poll_timeout(),
        Some(t0 + secs(15)),
        "the PING's deadline"
    );

    // The ACK is a sign of life, and not the application's business.
    peer.run_for(secs(2));
    peer.send(ping(KEEPALIVE, true));
    assert!(
        peer.take_events().is_empty(),
        "a keepalive ACK is not reported"
    );
    assert_eq!(
        peer.conn.poll_timeout(),
        Some(t0 + secs(22)),
        "the next PING is due `time` after the last read"
    );
    peer.run_for(secs(9) + Duration::from_millis(999));
    peer.expect_silence();
    peer.run_for(Duration::from_millis(1));
    peer.expect_frames(&[keepalive_ping()]);
    assert!(!peer.conn.is_closed());

    // The payload is reserved.
    assert_eq!(
        peer.conn.ping(KEEPALIVE),
        Err(Error::User(UserError::PingInFlight))
    );
    peer.expect_silence();
}

#[test]
fn unanswered_keepalive_fails_the_connection_without_goaway() {
    let settings = Settings {
        max_concurrent_streams: Some(1),
        ..Settings::default()
    };
    let mut peer = Peer::client_with(keepalive_config(10, 5), settings);
    let sent = peer.client_open(&request("POST", "/a"), false);
    let queued = peer.conn.send_request(&request("GET", "/b"), true).unwrap();
    peer.expect_silence();
    assert_eq!(peer.conn.fate(queued), Some(Fate::NotSent));

    peer.run_for(secs(10));
    peer.expect_frames(&[keepalive_ping()]);
    // Data queued after the PING never reaches the (dead) peer.
    peer.conn
        .send_data(sent, Bytes::from_static(b"body"), false)
        .unwrap();
    peer.run_for(secs(5) - Duration::from_millis(1));
    assert!(!peer.conn.is_closed());
    peer.run_for(Duration::from_millis(1));

    let expected = Error::KeepaliveTimeout { timeout: secs(5) };
    assert!(peer.conn.is_closed());
    assert!(peer.conn.is_done(), "nothing left to write");
    peer.expect_silence();
    assert_eq!(peer.conn.error(), Some(&expected));
    assert_eq!(peer.conn.poll_timeout(), None);
    let events = peer.take_stream_events();
    assert_eq!(
        stream_errors(&events),
        [
            (sent, expected.clone(), Some(Fate::MaybeProcessed)),
            (queued, expected.clone(), Some(Fate::NotSent)),
        ]
    );
    assert!(matches!(events.last(), Some(Event::Closed(Some(e))) if *e == expected));

    assert!(expected.is_connection_error());
    assert_eq!(expected.initiator(), Initiator::Library);
    assert_eq!(expected.code(), None);
    assert_eq!(
        expected.to_string(),
        "no response to a keepalive PING within 5s: the connection is presumed dead"
    );
    // Sticky.
    assert_eq!(
        peer.conn.send_request(&request("GET", "/c"), true),
        Err(expected)
    );
}

#[test]
fn any_bytes_read_clear_the_keepalive_deadline() {
    let mut peer = client(keepalive_config(10, 5));
    let t0 = peer.now;
    peer.client_open(&request("GET", "/"), true);
    peer.run_for(secs(10));
    peer.expect_frames(&[keepalive_ping()]);

    // Not the ACK, but bytes all the same (A8: time is measured from the last read).
    peer.run_for(secs(3));
    peer.send(window_update(0, 1));
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(23)));
    peer.run_for(secs(10) - Duration::from_millis(1));
    assert!(
        !peer.conn.is_closed(),
        "the first PING's deadline was cleared"
    );
    peer.expect_silence();
    peer.run_for(Duration::from_millis(1));
    peer.expect_frames(&[keepalive_ping()]);

    // The first PING's late ACK counts as life too, and is not reported.
    peer.run_for(secs(4));
    peer.send(ping(KEEPALIVE, true));
    assert!(peer.take_events().is_empty());
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(37)));

    // Then silence: the third PING goes unanswered.
    peer.run_for(secs(10));
    peer.expect_frames(&[keepalive_ping()]);
    peer.run_for(secs(5));
    assert_eq!(
        peer.conn.error(),
        Some(&Error::KeepaliveTimeout { timeout: secs(5) })
    );
}

#[test]
fn no_keepalive_ping_while_idle_unless_without_calls() {
    let mut peer = client(keepalive_config(10, 5));
    peer.run_for(secs(3600));
    peer.expect_silence();
    assert!(!peer.conn.is_closed());
    assert_eq!(peer.conn.poll_timeout(), None);

    // Like grpc-go waking from dormancy: the first stream after a long silence is
    // followed by a PING at once, since nothing was read for longer than `time`.
    let id = peer.conn.send_request(&request("GET", "/"), true).unwrap();
    assert!(peer.conn.poll_timeout().is_some_and(|t| t <= peer.now));
    peer.run_for(Duration::ZERO);
    let frames = peer.frames();
    assert!(
        matches!(frames.as_slice(), [Frame::Headers(h), p] if h.stream_id == id && *p == keepalive_ping()),
        "{frames:?}"
    );

    // With `without_calls`, an idle connection is kept alive too.
    let mut config = keepalive_config(10, 5);
    config.keepalive.as_mut().unwrap().without_calls = true;
    let mut peer = client(config);
    let t0 = peer.now;
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(10)));
    peer.run_for(secs(10));
    peer.expect_frames(&[keepalive_ping()]);
    peer.send(ping(KEEPALIVE, true));
    peer.run_for(secs(10));
    peer.expect_frames(&[keepalive_ping()]);
    peer.run_for(secs(5));
    assert!(matches!(
        peer.conn.error(),
        Some(Error::KeepaliveTimeout { .. })
    ));
}

#[test]
fn reading_data_keeps_postponing_the_keepalive_ping() {
    let mut peer = client(keepalive_config(10, 5));
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(id.get(), &[(":status", "200")], false);
    for _ in 0..20 {
        peer.run_for(secs(6));
        peer.send_data(id.get(), b"chunk", false);
        let frames = peer.frames();
        assert!(
            !frames.iter().any(|f| matches!(f, Frame::Ping(_))),
            "no PING while bytes keep arriving: {frames:?}"
        );
    }
    peer.run_for(secs(10));
    peer.expect_frames(&[keepalive_ping()]);
}

// ---- PING policy (A8 server enforcement) ----

#[test]
fn pings_spaced_by_min_time_never_strike() {
    let policy = PingPolicy {
        min_time: secs(60),
        ..PingPolicy::default()
    };
    let mut peer = server(policy_config(policy));
    open(&mut peer, 1, false);
    for i in 0..10u8 {
        ping_acked(&mut peer, [i; 8]);
        peer.run_for(secs(60));
    }
    assert!(!peer.conn.is_closed());
}

#[test]
fn too_many_pings_close_with_enhance_your_calm() {
    let mut peer = server(policy_config(PingPolicy::default()));
    open(&mut peer, 1, false);
    // The first PING is free; the next three come 1 s apart, far below 5 minutes.
    ping_acked(&mut peer, *b"ping-001");
    peer.run_for(secs(1));
    ping_acked(&mut peer, *b"ping-002"); // strike 1
    peer.run_for(secs(1));
    ping_acked(&mut peer, *b"ping-003"); // strike 2: still tolerated
    peer.run_for(secs(1));
    peer.send(ping(*b"ping-004", false)); // strike 3 > max_strikes
    let (goaway, events) = peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 1);
    assert_eq!(&goaway.debug_data[..], b"too_many_pings");
    let errors = stream_errors(&events);
    assert!(
        matches!(errors.as_slice(), [(id, Error::GoAway { .. }, None)] if *id == sid(1)),
        "{errors:?}"
    );
}

#[test]
fn pings_without_streams_strike_unless_permitted() {
    let policy = PingPolicy {
        min_time: secs(60),
        ..PingPolicy::default()
    };

    // No stream open: anything under 2 hours is a strike, whatever `min_time`.
    let mut peer = server(policy_config(policy.clone()));
    for payload in [*b"idle-001", *b"idle-002", *b"idle-003"] {
        ping_acked(&mut peer, payload);
        peer.run_for(secs(600));
    }
    peer.send(ping(*b"idle-004", false));
    let (goaway, _) = peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 0);
    assert_eq!(&goaway.debug_data[..], b"too_many_pings");

    // Two hours apart is fine.
    let mut peer = server(policy_config(policy.clone()));
    for i in 0..6u8 {
        ping_acked(&mut peer, [i; 8]);
        peer.run_for(secs(2 * 60 * 60));
    }

    // `permit_without_calls`: `min_time` applies without streams too.
    let permissive = PingPolicy {
        permit_without_calls: true,
        ..policy
    };
    let mut peer = server(policy_config(permissive));
    for i in 0..6u8 {
        ping_acked(&mut peer, [i; 8]);
        peer.run_for(secs(60));
    }
    // ...but below it, PINGs strike just the same.
    ping_acked(&mut peer, *b"ontime-6");
    for payload in [*b"early-01", *b"early-02"] {
        peer.run_for(secs(59));
        ping_acked(&mut peer, payload);
    }
    peer.run_for(secs(59));
    peer.send(ping(*b"early-03", false));
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 0);
}

#[test]
fn sending_headers_or_data_forgives_strikes() {
    let mut peer = server(policy_config(PingPolicy::default()));
    open(&mut peer, 1, false);
    let mut n = 0u8;
    let mut next_ping = |peer: &mut Peer| {
        n += 1;
        peer.run_for(secs(1));
        ping_acked(peer, [n; 8]);
    };
    next_ping(&mut peer); // free (first)
    next_ping(&mut peer); // strike 1
    next_ping(&mut peer); // strike 2

    // A response: strikes reset, and (as in grpc-go and gRPC C++) the next PING is free.
    peer.conn
        .send_response(sid(1), &response(200), false)
        .unwrap();
    assert!(matches!(peer.frames().as_slice(), [Frame::Headers(_)]));
    next_ping(&mut peer); // free
    next_ping(&mut peer); // strike 1
    next_ping(&mut peer); // strike 2

    // So does DATA.
    peer.conn
        .send_data(sid(1), Bytes::from_static(b"x"), false)
        .unwrap();
    assert!(matches!(peer.frames().as_slice(), [Frame::Data(_)]));
    next_ping(&mut peer); // free
    next_ping(&mut peer); // strike 1
    next_ping(&mut peer); // strike 2

    peer.run_for(secs(1));
    peer.send(ping(*b"one-more", false)); // strike 3
    let (goaway, _) = peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 1);
    assert_eq!(&goaway.debug_data[..], b"too_many_pings");
}

/// End to end: a client whose keepalive is more eager than the server's policy
/// receives GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), the signal on which a gRPC
/// runtime doubles its keepalive time (A8).
#[test]
fn eager_client_keepalive_gets_too_many_pings_from_the_server() {
    let client = keepalive_config(10, 5);
    let server = policy_config(PingPolicy {
        min_time: secs(60),
        ..PingPolicy::default()
    });
    let mut pair = Pair::with_configs(client, server);
    let id = pair
        .client
        .send_request(&request("POST", "/stream"), false)
        .unwrap();
    pair.drive();
    assert!(pair
        .take_server_events()
        .iter()
        .any(|e| matches!(e, Event::Request { .. })));

    // PINGs at 10, 20 and 30 s: the first is free, then two strikes.
    pair.run_for(secs(35));
    assert!(!pair.server.is_closed());
    assert!(goaways_received(&pair.client_events).is_empty());
    assert!(
        !pair
            .client_events
            .iter()
            .any(|e| matches!(e, Event::PingAck(_))),
        "keepalive ACKs are not reported"
    );

    // The fourth PING (40 s) is the third strike.
    pair.run_for(secs(5));
    assert!(pair.server.is_closed());
    assert_eq!(
        pair.server.error().and_then(Error::code),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
    let events = pair.take_client_events();
    let goaways = goaways_received(&events);
    assert_eq!(goaways.len(), 1, "{events:?}");
    assert_eq!(goaways[0].code, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(&goaways[0].debug_data[..], b"too_many_pings");
    assert_eq!(goaways[0].last_stream_id, id);
}

// ---- max_connection_idle (A9) ----

#[test]
fn idle_connection_is_shut_down_in_two_phases_with_max_idle() {
    let mut config = Config::default();
    config.max_connection_idle = Some(secs(60));
    let mut peer = server(config);
    let t0 = peer.now;
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(60)));

    // A stream restarts the idle clock; it counts from when the last stream ended.
    peer.run_for(secs(30));
    open(&mut peer, 1, true);
    assert_eq!(peer.conn.poll_timeout(), None);
    peer.run_for(secs(10));
    peer.conn
        .send_response(sid(1), &response(200), true)
        .unwrap();
    assert!(matches!(peer.frames().as_slice(), [Frame::Headers(_)]));
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(100)));

    peer.run_for(secs(59));
    peer.expect_silence();
    peer.run_for(secs(1));
    peer.expect_frames(&[
        goaway(StreamId::MAX, ErrorCode::NO_ERROR, "max_idle"),
        ping(DRAIN, false),
    ]);
    assert!(!peer.conn.is_closed());
    peer.send(ping(DRAIN, true));
    peer.expect_frames(&[goaway(sid(1), ErrorCode::NO_ERROR, "max_idle")]);
    assert!(peer.conn.is_closed());
    assert_eq!(peer.conn.error(), None);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Closed(None)]),
        "{events:?}"
    );
}

#[test]
fn an_active_stream_prevents_idle_shutdown() {
    let mut server = Config::default();
    server.max_connection_idle = Some(secs(60));
    let mut pair = Pair::with_configs(Config::default(), server);
    let id = pair
        .client
        .send_request(&request("POST", "/"), false)
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.poll_timeout(), None);
    pair.run_for(secs(600));
    assert!(pair.server.goaway_sent().is_none());
    assert!(goaways_received(&pair.client_events).is_empty());

    pair.client.send_data(id, Bytes::new(), true).unwrap();
    pair.drive();
    pair.server.send_response(id, &response(204), true).unwrap();
    pair.drive();
    assert_eq!(pair.server.active_streams(), (0, 0));
    pair.run_for(secs(59));
    assert!(pair.server.goaway_sent().is_none());
    pair.run_for(secs(1));
    let goaways = goaways_received(&pair.client_events);
    assert!(!goaways.is_empty());
    assert!(goaways
        .iter()
        .all(|g| g.code == ErrorCode::NO_ERROR && &g.debug_data[..] == b"max_idle"));
    // The client, with nothing in flight, closes at the first GOAWAY (and so never
    // answers the PING); the server sends its final GOAWAY when the PING times out.
    assert!(pair.client.is_closed());
    assert_eq!(pair.client.error(), None);
    pair.run_for(secs(5));
    assert!(pair.server.is_closed());
    assert_eq!(pair.server.error(), None);
    assert!(pair
        .server_events
        .iter()
        .any(|e| matches!(e, Event::Closed(None))));
}

// ---- max_connection_age (A9) ----

#[test]
fn max_age_drains_and_in_flight_streams_complete() {
    let mut server = Config::default();
    server.max_connection_age = Some(secs(100));
    server.max_connection_age_grace = Some(secs(30));
    let mut pair = Pair::with_configs(Config::default(), server);
    pair.run_for(secs(10));
    let id = pair
        .client
        .send_request(&request("POST", "/"), false)
        .unwrap();
    pair.drive();
    pair.run_for(secs(89));
    assert!(goaways_received(&pair.client_events).is_empty());
    pair.run_for(secs(1));

    let goaways = goaways_received(&pair.client_events);
    assert_eq!(goaways.len(), 2, "{goaways:?}");
    assert_eq!(goaways[0].last_stream_id, StreamId::MAX);
    assert_eq!(goaways[1].last_stream_id, id);
    assert!(goaways
        .iter()
        .all(|g| g.code == ErrorCode::NO_ERROR && &g.debug_data[..] == b"max_age"));
    assert!(!pair.client.accepts_new_streams());

    // The stream in flight finishes normally within the grace period.
    pair.run_for(secs(20));
    pair.client
        .send_data(id, Bytes::from_static(b"done"), true)
        .unwrap();
    pair.drive();
    pair.server.send_response(id, &response(200), true).unwrap();
    pair.drive();
    assert!(stream_errors(&pair.client_events).is_empty());
    assert!(stream_errors(&pair.server_events).is_empty());
    assert!(pair
        .client_events
        .iter()
        .any(|e| matches!(e, Event::Response { .. })));
    for conn in [&pair.client, &pair.server] {
        assert!(conn.is_closed());
        assert_eq!(conn.error(), None);
        assert_eq!(conn.poll_timeout(), None, "no grace timer once closed");
    }
}

#[test]
fn max_age_grace_closes_streams_that_never_finish() {
    let mut config = Config::default();
    config.max_connection_age = Some(secs(100));
    config.max_connection_age_grace = Some(secs(30));
    let mut peer = server(config);
    let t0 = peer.now;
    open(&mut peer, 1, false);
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(100)));

    peer.run_for(secs(100));
    peer.expect_frames(&[
        goaway(StreamId::MAX, ErrorCode::NO_ERROR, "max_age"),
        ping(DRAIN, false),
    ]);
    // The drain PING's timeout (5 s) comes before the grace deadline.
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(105)));
    peer.send(ping(DRAIN, true));
    peer.expect_frames(&[goaway(sid(1), ErrorCode::NO_ERROR, "max_age")]);
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(130)));

    peer.run_for(secs(29));
    peer.expect_silence();
    assert!(!peer.conn.is_closed());
    peer.run_for(secs(1));
    let (goaway, events) = peer.expect_conn_error(ErrorCode::NO_ERROR, 1);
    assert_eq!(&goaway.debug_data[..], b"max_age_grace");
    let errors = stream_errors(&events);
    assert!(
        matches!(
            errors.as_slice(),
            [(id, Error::GoAway { initiator: Initiator::Library, .. }, None)] if *id == sid(1)
        ),
        "{errors:?}"
    );
}

// ---- poll_timeout and handle_timeout ----

#[test]
fn poll_timeout_is_the_earliest_timer_and_early_calls_do_nothing() {
    let mut config = Config::default();
    config.keepalive = Some(Keepalive {
        without_calls: true,
        ..Keepalive::new(secs(50))
    });
    config.max_connection_idle = Some(secs(40));
    config.max_connection_age = Some(secs(100));
    config.max_connection_age_grace = Some(secs(10));
    let mut peer = server(config);
    let t0 = peer.now;
    let early = |peer: &mut Peer, at: Duration| {
        let before = peer.conn.poll_timeout();
        peer.conn.handle_timeout(t0 + at);
        peer.expect_silence();
        assert!(peer.take_events().is_empty());
        assert_eq!(
            peer.conn.poll_timeout(),
            before,
            "an early call changes nothing"
        );
    };

    // Idle (40 s) comes before keepalive (50 s) and age (100 s).
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(40)));
    early(&mut peer, secs(39));

    // A stream disarms idle; keepalive counts from the request's bytes.
    peer.now = t0 + secs(1);
    open(&mut peer, 1, false);
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(51)));
    early(&mut peer, secs(50));

    peer.now = t0 + secs(51);
    peer.conn.handle_timeout(peer.now);
    assert_not_due(&peer.conn, peer.now);
    peer.expect_frames(&[keepalive_ping()]);
    // The keepalive deadline (51 + 20 s) comes before age.
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(71)));
    early(&mut peer, secs(70));

    peer.now = t0 + secs(60);
    peer.send(ping(KEEPALIVE, true));
    // Next keepalive at 110 s; age first.
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(100)));
    early(&mut peer, secs(99));

    peer.now = t0 + secs(100);
    peer.conn.handle_timeout(peer.now);
    assert_not_due(&peer.conn, peer.now);
    peer.expect_frames(&[
        goaway(StreamId::MAX, ErrorCode::NO_ERROR, "max_age"),
        ping(DRAIN, false),
    ]);
    // The drain PING's timeout (105 s), then grace and keepalive (110 s).
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(105)));
    early(&mut peer, secs(104));

    peer.now = t0 + secs(105);
    peer.conn.handle_timeout(peer.now);
    assert_not_due(&peer.conn, peer.now);
    peer.expect_frames(&[goaway(sid(1), ErrorCode::NO_ERROR, "max_age")]);
    assert_eq!(peer.conn.poll_timeout(), Some(t0 + secs(110)));

    // Grace and keepalive fall due together: grace wins, and the connection is closed.
    peer.now = t0 + secs(110);
    peer.conn.handle_timeout(peer.now);
    assert_eq!(peer.conn.poll_timeout(), None);
    let (goaway, _) = peer.expect_conn_error(ErrorCode::NO_ERROR, 1);
    assert_eq!(&goaway.debug_data[..], b"max_age_grace");
}

#[test]
fn timers_beyond_the_clock_are_never_armed() {
    // `Duration::MAX` as "never" (grpc-go's default age is infinite) must not overflow.
    let mut config = Config::default();
    config.keepalive = Some(Keepalive {
        timeout: Duration::MAX,
        without_calls: true,
        ..Keepalive::new(Duration::MAX)
    });
    config.max_connection_idle = Some(Duration::MAX);
    config.max_connection_age = Some(Duration::MAX);
    config.max_connection_age_grace = Some(Duration::MAX);
    let mut peer = server(config);
    assert_eq!(peer.conn.poll_timeout(), None);
    peer.run_for(secs(1_000_000));
    peer.conn.handle_timeout(peer.now);
    peer.expect_silence();
    assert!(!peer.conn.is_closed());

    // An outstanding keepalive PING whose timeout is beyond the clock: never fails.
    let mut config = Config::default();
    config.keepalive = Some(Keepalive {
        timeout: Duration::MAX,
        ..Keepalive::new(secs(10))
    });
    let mut peer = client(config);
    peer.client_open(&request("GET", "/"), true);
    peer.run_for(secs(10));
    peer.expect_frames(&[keepalive_ping()]);
    assert_eq!(peer.conn.poll_timeout(), None);
    peer.run_for(secs(1_000_000));
    peer.expect_silence();
    assert!(!peer.conn.is_closed());
}

// ---- Stream deadlines (Connection::set_deadline) ----

fn deadline_errors(events: &[Event]) -> Vec<(StreamId, Option<Fate>)> {
    stream_errors(events)
        .into_iter()
        .map(|(id, error, fate)| {
            assert_eq!(error, Error::DeadlineExceeded { stream_id: id });
            (id, fate)
        })
        .collect()
}

#[test]
fn a_deadline_resets_a_stream_awaiting_its_response_and_says_it_may_have_been_processed() {
    let mut peer = client(Config::default());
    let id = peer.client_open(&request("GET", "/slow"), true);
    peer.conn.set_deadline(id, peer.now + secs(2)).unwrap();
    assert_eq!(peer.conn.poll_timeout(), Some(peer.now + secs(2)));
    peer.run_for(Duration::from_millis(1999));
    peer.expect_silence();
    assert!(peer.take_events().is_empty());
    peer.run_for(Duration::from_millis(1));
    peer.expect_rst(id.get(), ErrorCode::CANCEL);
    let events = peer.take_events();
    assert_eq!(deadline_errors(&events), [(id, Some(Fate::MaybeProcessed))]);
    assert_eq!(peer.conn.stream_state(id), None);
    // A late response is ignored (we reset the stream), and the connection lives on.
    peer.send_headers(id.get(), &[(":status", "200")], true);
    assert!(peer.take_stream_events().is_empty());
    peer.client_roundtrip();
}

#[test]
fn a_deadline_covers_the_response_body_even_while_nobody_reads_it() {
    let mut peer = client(Config::default());
    let id = peer.client_open(&request("GET", "/stream"), true);
    peer.conn.set_deadline(id, peer.now + secs(5)).unwrap();
    peer.send_headers(id.get(), &[(":status", "200")], false);
    peer.send_data(id.get(), b"part", false);
    let events = peer.take_stream_events();
    assert!(matches!(
        events.as_slice(),
        [Event::Response { .. }, Event::Data { .. }]
    ));
    peer.run_for(secs(5));
    peer.expect_rst(id.get(), ErrorCode::CANCEL);
    let events = peer.take_events();
    assert_eq!(deadline_errors(&events), [(id, Some(Fate::Processed))]);
}

#[test]
fn a_deadline_drops_a_stream_still_waiting_for_a_slot_and_proves_it_never_sent() {
    let settings = Settings {
        max_concurrent_streams: Some(1),
        ..Settings::default()
    };
    let mut peer = Peer::client_with(Config::default(), settings);
    let first = peer.client_open(&request("GET", "/one"), true);
    let queued = peer
        .conn
        .send_request(&request("GET", "/two"), true)
        .unwrap();
    peer.expect_silence();
    peer.conn.set_deadline(queued, peer.now + secs(1)).unwrap();
    peer.run_for(secs(1));
    // Nothing is written for a stream the server never heard of.
    peer.expect_silence();
    let events = peer.take_events();
    assert_eq!(deadline_errors(&events), [(queued, Some(Fate::NotSent))]);
    // The slot it waited for opens for the next request, not for the expired one.
    peer.send_headers(first.get(), &[(":status", "200")], true);
    peer.take_events();
    let next = peer.client_open(&request("GET", "/three"), true);
    assert!(next > queued);
}

#[test]
fn a_deadline_on_headers_encoded_but_not_yet_handed_over_is_not_called_never_sent() {
    let mut peer = client(Config::default());
    let id = peer.conn.send_request(&request("GET", "/"), true).unwrap();
    assert_eq!(peer.conn.fate(id), Some(Fate::NotSent));
    peer.conn.set_deadline(id, peer.now).unwrap();
    peer.conn.handle_timeout(peer.now);
    let events = peer.take_events();
    // The HEADERS are written (the HPACK state depends on them): the server may see
    // them, then our RST_STREAM.
    assert_eq!(deadline_errors(&events), [(id, Some(Fate::MaybeProcessed))]);
    let frames = peer.frames();
    assert!(
        matches!(frames.as_slice(), [Frame::Headers(h), Frame::RstStream(r)]
            if h.stream_id == id && r.stream_id == id && r.code == ErrorCode::CANCEL),
        "{frames:?}"
    );
}

#[test]
fn a_stream_that_finished_before_its_deadline_is_left_alone_and_the_timer_store_stays_bounded() {
    let mut peer = client(Config::default());
    let far = peer.now + secs(3600);
    for _ in 0..10_000 {
        let id = peer.client_open(&request("GET", "/"), true);
        peer.conn.set_deadline(id, far).unwrap();
        peer.send_headers(id.get(), &[(":status", "200")], true);
        peer.take_events();
    }
    // A later deadline replaces an earlier one.
    let id = peer.client_open(&request("GET", "/"), true);
    peer.conn.set_deadline(id, peer.now + secs(1)).unwrap();
    peer.conn.set_deadline(id, peer.now + secs(10)).unwrap();
    peer.run_for(secs(9));
    peer.expect_silence();
    assert!(peer.take_events().is_empty());
    peer.run_for(secs(1));
    peer.expect_rst(id.get(), ErrorCode::CANCEL);
    assert_eq!(
        deadline_errors(&peer.take_events()),
        [(id, Some(Fate::MaybeProcessed))]
    );
    // The 10,000 finished streams' deadlines fire nothing.
    peer.run_for(secs(3600));
    peer.expect_silence();
    assert!(peer.take_events().is_empty());
    assert_eq!(peer.conn.poll_timeout(), None);
    assert_eq!(
        peer.conn.set_deadline(sid(99_999), far),
        Err(Error::User(UserError::UnknownStream(sid(99_999))))
    );
}
