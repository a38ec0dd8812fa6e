//! End-to-end behaviour of a client and a server `Connection` joined in memory, on a
//! virtual clock.

mod support;

use std::time::Duration;

use bytes::Bytes;
use steadfast_proto::{Config, Error, ErrorCode, Event, Fate, Initiator, StreamId, StreamState};
use support::{request, response, Pair};

fn data_of(events: &[Event], id: StreamId) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data { id: i, data, .. } if *i == id => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn stream_error(events: &[Event], id: StreamId) -> Option<(Error, Option<Fate>)> {
    events.iter().find_map(|e| match e {
        Event::StreamError { id: i, error, fate } if *i == id => Some((error.clone(), *fate)),
        _ => None,
    })
}

#[test]
fn handshake_completes_both_ways() {
    let pair = Pair::new();
    assert!(pair.client.is_established());
    assert!(pair.server.is_established());
    assert!(pair
        .client_events
        .iter()
        .any(|e| matches!(e, Event::SettingsAcked)));
    assert!(pair
        .server_events
        .iter()
        .any(|e| matches!(e, Event::SettingsAcked)));
}

#[test]
fn request_response_with_body_and_trailers() {
    let mut pair = Pair::new();
    let id = pair
        .client
        .send_request(&request("POST", "/echo"), false)
        .unwrap();
    assert_eq!(pair.client.fate(id), Some(Fate::NotSent));
    pair.client
        .send_data(id, Bytes::from_static(b"hello"), true)
        .unwrap();
    pair.drive();
    assert_eq!(pair.client.fate(id), Some(Fate::MaybeProcessed));

    let events = pair.take_server_events();
    let (sid, req) = events
        .iter()
        .find_map(|e| match e {
            Event::Request {
                id,
                request,
                end_stream: false,
            } => Some((*id, request)),
            _ => None,
        })
        .expect("request event");
    assert_eq!(sid, id);
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.uri().path(), "/echo");
    assert_eq!(req.uri().authority().unwrap().as_str(), "example.test");
    assert_eq!(data_of(&events, id), b"hello");

    pair.server
        .send_response(id, &response(200), false)
        .unwrap();
    pair.server
        .send_data(id, Bytes::from_static(b"world"), false)
        .unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    pair.server.send_trailers(id, &trailers).unwrap();
    pair.drive();

    let events = pair.take_client_events();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Response { id: i, response, end_stream: false } if *i == id && response.status() == 200)));
    assert_eq!(data_of(&events, id), b"world");
    let got = events
        .iter()
        .find_map(|e| match e {
            Event::Trailers { trailers, .. } => Some(trailers.clone()),
            _ => None,
        })
        .expect("trailers");
    assert_eq!(got["grpc-status"], "0");
    // Both sides closed: the stream is gone everywhere.
    assert_eq!(pair.client.stream_state(id), None);
    assert_eq!(pair.server.stream_state(id), None);
    assert_eq!(pair.client.active_streams(), (0, 0));
    assert_eq!(pair.server.active_streams(), (0, 0));
}

/// A body much larger than every window only gets through if the receiver releases
/// capacity and the sender honours WINDOW_UPDATE (§6.9).
#[test]
fn large_body_crosses_many_flow_control_windows() {
    let mut small = Config::default();
    small.initial_stream_window = 65_535;
    small.initial_connection_window = 65_535;
    let mut pair = Pair::with_configs(small.clone(), small);
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let id = pair
        .client
        .send_request(&request("POST", "/upload"), false)
        .unwrap();
    pair.client
        .send_data(id, Bytes::from(body.clone()), true)
        .unwrap();

    let mut received = Vec::new();
    let mut ended = false;
    for _ in 0..10_000 {
        pair.drive();
        let events = pair.take_server_events();
        if events.is_empty() && ended {
            break;
        }
        for e in events {
            if let Event::Data {
                id: i,
                data,
                end_stream,
            } = e
            {
                received.extend_from_slice(&data);
                ended |= end_stream;
                pair.server.release_capacity(i, data.len());
            }
        }
        // The sender never exceeds what the receiver allowed.
        assert!(pair.client.buffered_send(id) <= body.len());
    }
    assert!(ended);
    assert_eq!(received.len(), body.len());
    assert!(received == body);
}

#[test]
fn without_release_the_sender_stops_at_the_window() {
    let mut small = Config::default();
    small.initial_stream_window = 65_535;
    small.initial_connection_window = 65_535;
    let mut pair = Pair::with_configs(small.clone(), small);
    let id = pair
        .client
        .send_request(&request("POST", "/"), false)
        .unwrap();
    pair.client
        .send_data(id, Bytes::from(vec![7u8; 200_000]), false)
        .unwrap();
    pair.drive();
    let got: usize = pair
        .take_server_events()
        .iter()
        .map(|e| match e {
            Event::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(got, 65_535);
    assert_eq!(pair.client.buffered_send(id), 200_000 - 65_535);
    assert_eq!(pair.client.send_capacity(id), 0);
}

#[test]
fn streams_beyond_max_concurrent_wait_and_stay_not_sent() {
    let mut server = Config::default();
    server.max_concurrent_streams = 2;
    let mut pair = Pair::with_configs(Config::default(), server);
    let ids: Vec<StreamId> = (0..5)
        .map(|_| {
            pair.client
                .send_request(&request("GET", "/"), true)
                .unwrap()
        })
        .collect();
    pair.drive();
    assert_eq!(pair.client.fate(ids[0]), Some(Fate::MaybeProcessed));
    assert_eq!(pair.client.fate(ids[1]), Some(Fate::MaybeProcessed));
    for id in &ids[2..] {
        assert_eq!(pair.client.fate(*id), Some(Fate::NotSent));
        assert_eq!(pair.client.stream_state(*id), Some(StreamState::Idle));
    }
    assert!(!pair.client.can_open_stream());
    let requests = pair
        .take_server_events()
        .iter()
        .filter(|e| matches!(e, Event::Request { .. }))
        .count();
    assert_eq!(requests, 2, "the server never saw more than its limit");

    // Each completed stream lets the next one go.
    for id in &ids {
        pair.server
            .send_response(*id, &response(204), true)
            .unwrap();
        pair.drive();
    }
    let responses = pair
        .take_client_events()
        .iter()
        .filter(|e| matches!(e, Event::Response { .. }))
        .count();
    assert_eq!(responses, 5);
    assert_eq!(pair.client.active_streams(), (0, 0));
}

/// The request reliability mechanism at the protocol level: a GOAWAY's
/// last-stream-id proves which requests were never processed (§6.8).
#[test]
fn goaway_last_stream_id_splits_streams_into_refused_and_running() {
    let mut pair = Pair::new();
    let early: Vec<StreamId> = (0..2)
        .map(|_| {
            pair.client
                .send_request(&request("POST", "/"), false)
                .unwrap()
        })
        .collect();
    pair.drive();
    pair.take_server_events();
    // Two more requests leave the client but never reach the server.
    let late: Vec<StreamId> = (0..2)
        .map(|_| {
            pair.client
                .send_request(&request("POST", "/"), false)
                .unwrap()
        })
        .collect();
    let mut lost = bytes::BytesMut::new();
    pair.client.poll_transmit(pair.now, &mut lost);
    for id in &late {
        assert_eq!(pair.client.fate(*id), Some(Fate::MaybeProcessed));
    }
    pair.server
        .close(ErrorCode::NO_ERROR, Bytes::from_static(b"restart"));
    assert_eq!(pair.server.goaway_sent().unwrap().last_stream_id, early[1]);
    pair.drive();

    let events = pair.take_client_events();
    for id in &late {
        let (err, fate) = stream_error(&events, *id).expect("late stream fails");
        assert_eq!(
            fate,
            Some(Fate::Refused),
            "stream {id} is above last-stream-id"
        );
        match err {
            Error::GoAway {
                goaway, initiator, ..
            } => {
                assert_eq!(initiator, Initiator::Remote);
                assert_eq!(goaway.last_stream_id, early[1]);
                assert_eq!(&goaway.debug_data[..], b"restart");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }
    // Streams at or below last-stream-id are left to finish.
    for id in &early {
        assert!(stream_error(&events, *id).is_none());
        assert_eq!(pair.client.fate(*id), Some(Fate::MaybeProcessed));
    }
    // The server then goes away without finishing them: no proof either way.
    pair.client.handle_eof(pair.now);
    pair.drive();
    let events = pair.take_client_events();
    for id in &early {
        let (err, fate) = stream_error(&events, *id).unwrap();
        assert_eq!(fate, Some(Fate::MaybeProcessed));
        assert!(matches!(
            err,
            Error::TransportClosed {
                after_goaway: Some(_)
            }
        ));
    }
}

#[test]
fn two_phase_graceful_shutdown_refuses_nothing_in_flight() {
    let mut pair = Pair::new();
    let a = pair
        .client
        .send_request(&request("GET", "/a"), true)
        .unwrap();
    let b = pair
        .client
        .send_request(&request("GET", "/b"), true)
        .unwrap();
    // The server starts draining before it has read stream b.
    pair.client.poll_transmit(pair.now, &mut pair.to_server);
    pair.server
        .graceful_shutdown_with(pair.now, Bytes::from_static(b"max_age"));
    pair.drive();

    // First GOAWAY(2^31-1), then the real last-stream-id once the PING came back.
    let goaways: Vec<_> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::GoAwayReceived(g) => Some(g.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(goaways.len(), 2, "{goaways:?}");
    assert_eq!(goaways[0].last_stream_id, StreamId::MAX);
    assert_eq!(goaways[1].last_stream_id, b);
    assert_eq!(&goaways[1].debug_data[..], b"max_age");
    assert!(goaways.iter().all(|g| g.code == ErrorCode::NO_ERROR));

    // No new streams after a GOAWAY.
    assert!(!pair.client.accepts_new_streams());
    let err = pair
        .client
        .send_request(&request("GET", "/c"), true)
        .unwrap_err();
    assert!(matches!(err, Error::User(_)));

    // Both in-flight streams complete normally.
    for id in [a, b] {
        pair.server.send_response(id, &response(200), true).unwrap();
    }
    pair.drive();
    let responses = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, Event::Response { .. }))
        .count();
    assert_eq!(responses, 2);
    assert!(pair.server.is_closed());
    assert!(pair.server.error().is_none());
    assert!(pair
        .server_events
        .iter()
        .any(|e| matches!(e, Event::Closed(None))));
    assert!(pair.client.is_closed());
    assert!(pair
        .client_events
        .iter()
        .any(|e| matches!(e, Event::Closed(None))));
}

#[test]
fn graceful_shutdown_proceeds_without_ping_ack_after_timeout() {
    let mut pair = Pair::new();
    let a = pair
        .client
        .send_request(&request("GET", "/a"), true)
        .unwrap();
    pair.drive();
    pair.server.graceful_shutdown(pair.now);
    // Deliver nothing to the client: the PING is never answered.
    let mut sink = bytes::BytesMut::new();
    pair.server.poll_transmit(pair.now, &mut sink);
    assert!(pair.server.poll_timeout().is_some());
    pair.now += Duration::from_secs(6);
    pair.server.handle_timeout(pair.now);
    pair.server.poll_transmit(pair.now, &mut sink);
    let last = pair.server.goaway_sent().unwrap();
    assert_eq!(last.last_stream_id, a);
}

#[test]
fn transport_loss_reports_each_stream_fate() {
    let mut server = Config::default();
    server.max_concurrent_streams = 1;
    let mut pair = Pair::with_configs(Config::default(), server);
    let answered = pair
        .client
        .send_request(&request("GET", "/1"), false)
        .unwrap();
    pair.drive();
    pair.server
        .send_response(answered, &response(200), false)
        .unwrap();
    pair.drive();
    let sent = pair
        .client
        .send_request(&request("GET", "/2"), true)
        .unwrap();
    pair.drive();
    // `sent` waits for concurrency: the server allows one stream.
    assert_eq!(pair.client.fate(answered), Some(Fate::Processed));
    assert_eq!(pair.client.fate(sent), Some(Fate::NotSent));
    pair.take_client_events();
    pair.client.handle_eof(pair.now);
    pair.drive();
    let events = pair.take_client_events();
    let (err, fate) = stream_error(&events, answered).unwrap();
    assert_eq!(fate, Some(Fate::Processed));
    assert_eq!(err, Error::TransportClosed { after_goaway: None });
    assert_eq!(stream_error(&events, sent).unwrap().1, Some(Fate::NotSent));
    assert!(events.iter().any(|e| matches!(e, Event::Closed(Some(_)))));
    // Sticky: later calls fail with the same error.
    let again = pair
        .client
        .send_request(&request("GET", "/3"), true)
        .unwrap_err();
    assert_eq!(again, Error::TransportClosed { after_goaway: None });
}

#[test]
fn refused_stream_reset_marks_the_request_refused() {
    let mut server = Config::default();
    server.max_concurrent_streams = 1;
    let mut pair = Pair::with_configs(Config::default(), server);
    let a = pair
        .client
        .send_request(&request("GET", "/"), false)
        .unwrap();
    pair.drive();
    pair.take_server_events();
    // Application-level load shedding before any processing.
    pair.server.reset(a, ErrorCode::REFUSED_STREAM).unwrap();
    pair.drive();
    let (err, fate) = stream_error(&pair.client_events, a).unwrap();
    assert_eq!(fate, Some(Fate::Refused));
    assert!(fate.unwrap().is_retry_safe());
    assert_eq!(err.code(), Some(ErrorCode::REFUSED_STREAM));
    assert_eq!(err.initiator(), Initiator::Remote);
    assert_eq!(
        err.to_string(),
        "stream 1 reset by the peer with REFUSED_STREAM"
    );
}

#[test]
fn settings_timeout_closes_with_settings_timeout() {
    let mut pair = Pair::new();
    // A new SETTINGS is only sent at start; simulate an unresponsive peer by creating a
    // connection and never delivering its bytes.
    let now = pair.now;
    let mut lonely =
        steadfast_proto::Connection::new(steadfast_proto::Role::Client, Config::default(), now)
            .expect("a valid config");
    let deadline = lonely.poll_timeout().expect("settings timer armed");
    assert_eq!(deadline, now + Duration::from_secs(10));
    lonely.handle_timeout(deadline);
    assert!(lonely.is_closed());
    assert_eq!(
        lonely.error().and_then(Error::code),
        Some(ErrorCode::SETTINGS_TIMEOUT)
    );
    let mut out = bytes::BytesMut::new();
    lonely.poll_transmit(deadline, &mut out);
    assert!(out.len() > 9, "GOAWAY written");
    pair.drive();
}

#[test]
fn ping_round_trip() {
    let mut pair = Pair::new();
    pair.client.ping(*b"12345678").unwrap();
    assert!(
        pair.client.ping(*b"12345678").is_err(),
        "same payload in flight"
    );
    pair.drive();
    assert!(pair
        .client_events
        .iter()
        .any(|e| matches!(e, Event::PingAck(p) if p == b"12345678")));
}

/// A server shedding load refuses many streams; the client must take each refusal as
/// a fact about that stream, never as a flood (only resets of streams the peer itself
/// opened count toward the rapid-reset budget).
#[test]
fn many_refused_streams_do_not_trip_the_clients_reset_budget() {
    let mut client = Config::default();
    client.flood = steadfast_proto::FloodLimits {
        max_resets: 5,
        ..Default::default()
    };
    let mut pair = Pair::with_configs(client, Config::default());
    for _ in 0..50 {
        let id = pair
            .client
            .send_request(&request("GET", "/"), true)
            .unwrap();
        pair.drive();
        pair.server.reset(id, ErrorCode::REFUSED_STREAM).unwrap();
        pair.drive();
        assert_eq!(
            stream_error(&pair.client_events, id).unwrap().1,
            Some(Fate::Refused)
        );
    }
    assert!(!pair.client.is_closed(), "{:?}", pair.client.error());
}

/// Whether each side's `StreamClosed` for `id` said the peer's END_STREAM came last.
fn closed_last(events: &[Event], id: StreamId) -> Option<bool> {
    events.iter().find_map(|e| match e {
        Event::StreamClosed {
            id: i,
            peer_ended_last,
        } if *i == id => Some(*peer_ended_last),
        _ => None,
    })
}

#[test]
fn a_normal_end_says_whose_end_stream_came_last() {
    let mut pair = Pair::new();
    let id = pair
        .client
        .send_request(&request("POST", "/echo"), false)
        .unwrap();
    pair.client
        .send_data(id, Bytes::from_static(b"hello"), true)
        .unwrap();
    pair.drive();
    pair.server.send_response(id, &response(200), true).unwrap();
    pair.drive();
    // The request ended first; the response's END_STREAM closed the stream.
    assert_eq!(closed_last(&pair.take_server_events(), id), Some(false));
    assert_eq!(closed_last(&pair.take_client_events(), id), Some(true));
}
