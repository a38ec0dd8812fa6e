//! RFC 9113 conformance, streams: stream states (§5.1), stream identifiers (§5.1.1),
//! concurrency (§5.1.2), error handling (§5.4), extensions (§5.5), GOAWAY semantics
//! (§6.8) and flow control (§6.9). A scripted peer sends raw frames to one endpoint
//! under test and checks exactly what it writes back and what the application sees.

mod support;

use bytes::Bytes;
use steadfast_proto::frame::{Data, Frame, GoAwayFrame, Ping, SettingsFrame};
use steadfast_proto::{
    Config, Error, ErrorCode, Event, Fate, FloodLimits, GoAway, Initiator, Settings, StreamId,
    UserError,
};
use support::{
    client, flag, kind, library_reset, request, response, rst, server, server_with,
    settings_payload, sid, window_update, Peer, GET,
};

/// A connection window of 65,535 that is replenished as soon as 1% of it was consumed
/// (655 bytes), so tests see the WINDOW_UPDATE frames right away.
fn eager_updates() -> Config {
    {
        let mut c = Config::default();
        c.initial_connection_window = 65_535;
        c.window_update_percent = 1;
        c
    }
}

/// (Server under test) Opens stream `id` with a GET, with END_STREAM or not.
fn open_with(peer: &mut Peer, id: u32, end_stream: bool) {
    peer.send_request(id, end_stream);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id: i, end_stream: e, .. }] if *i == sid(id) && *e == end_stream),
        "request on {id}: {events:?}"
    );
}

fn open(peer: &mut Peer, id: u32) {
    open_with(peer, id, false);
}

/// (Server under test) Sends the response head on `id` and reads it.
fn respond(peer: &mut Peer, id: u32, end_stream: bool) {
    peer.conn
        .send_response(sid(id), &response(200), end_stream)
        .unwrap();
    let frames = peer.frames();
    assert!(
        matches!(frames.as_slice(), [Frame::Headers(h)] if h.stream_id == sid(id)),
        "{frames:?}"
    );
}

fn data(id: u32, len: usize, end_stream: bool) -> Frame {
    Frame::Data(Data::new(sid(id), Bytes::from(vec![7u8; len]), end_stream))
}

fn goaway(peer: &mut Peer, last_stream_id: u32, code: ErrorCode) {
    let mut payload = last_stream_id.to_be_bytes().to_vec();
    payload.extend_from_slice(&code.0.to_be_bytes());
    peer.send_raw(kind::GOAWAY, 0, 0, &payload);
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

// ---- §5.1 Stream States: idle ----

/// §5.1 idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this
/// state MUST be treated as a connection error of type PROTOCOL_ERROR" — DATA.
#[test]
fn s5_1_data_on_idle_stream_is_connection_protocol_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_data(3, b"x", false);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);

    let mut peer = client();
    peer.send_data(1, b"x", false);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §5.1 idle: WINDOW_UPDATE on an idle stream is a connection PROTOCOL_ERROR.
#[test]
fn s5_1_window_update_on_idle_stream_is_connection_protocol_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 5, &10u32.to_be_bytes());
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
}

/// §5.1 idle: "If this stream is initiated by the server ... then receiving a HEADERS
/// frame MUST also be treated as a connection error of type PROTOCOL_ERROR." A
/// client that never allowed push receives HEADERS on an even stream.
#[test]
fn s5_1_headers_on_idle_server_initiated_stream_is_connection_protocol_error() {
    let mut peer = client();
    peer.send_headers(2, &[(":status", "200")], true);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §5.1 idle: a client receiving HEADERS on one of its own stream ids it has not
/// opened yet (no request was sent on it).
#[test]
fn s5_1_headers_on_idle_client_stream_is_connection_protocol_error() {
    let mut peer = client();
    peer.send_headers(1, &[(":status", "200")], true);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

// ---- §5.1: half-closed (remote) ----

/// §5.1 half-closed (remote): "If an endpoint receives additional frames, other than
/// WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST
/// respond with a stream error of type STREAM_CLOSED" — DATA; the DATA still counts
/// toward the connection window (§6.9), which is replenished.
#[test]
fn s5_1_data_on_half_closed_remote_stream_is_stream_closed() {
    let mut peer = server_with(eager_updates());
    open_with(&mut peer, 1, true);
    peer.send_data(1, &[0; 1000], false);
    peer.expect_frames(&[rst(1, ErrorCode::STREAM_CLOSED), window_update(0, 1000)]);
    let events = peer.take_stream_events();
    assert_eq!(library_reset(&events, 1, ErrorCode::STREAM_CLOSED), None);
    assert_eq!(events.len(), 1);
    peer.server_roundtrip(3);
}

/// §5.1 half-closed (remote): HEADERS there is a stream error of type STREAM_CLOSED;
/// the block still updates HPACK state (§4.3).
#[test]
fn s5_1_headers_on_half_closed_remote_stream_is_stream_closed() {
    let mut peer = server();
    open_with(&mut peer, 1, true);
    peer.send_headers(1, &[("x-late", "trailer")], true);
    let events = peer.expect_stream_error(1, ErrorCode::STREAM_CLOSED);
    assert_eq!(library_reset(&events, 1, ErrorCode::STREAM_CLOSED), None);
    let mut fields = GET.to_vec();
    fields.push(("x-late", "trailer"));
    peer.send_headers(3, &fields, true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { request, .. }] if request.headers()["x-late"] == "trailer")
    );
}

/// §5.1 half-closed (remote): WINDOW_UPDATE, PRIORITY and RST_STREAM are allowed there
/// and act normally.
#[test]
fn s5_1_half_closed_remote_accepts_window_update_priority_and_rst_stream() {
    let settings = Settings {
        initial_window_size: Some(100),
        ..Settings::default()
    };
    let mut peer = Peer::server_with(Config::default(), settings);
    open_with(&mut peer, 1, true);
    respond(&mut peer, 1, false);
    peer.conn
        .send_data(sid(1), Bytes::from(vec![7u8; 300]), true)
        .unwrap();
    peer.expect_frames(&[data(1, 100, false)]);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &50u32.to_be_bytes());
    peer.expect_frames(&[data(1, 50, false)]);
    peer.send_raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 7]);
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    peer.send_raw(kind::RST_STREAM, 0, 1, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(matches!(
        events.as_slice(),
        [Event::StreamError {
            error: Error::Reset {
                code: ErrorCode::CANCEL,
                initiator: Initiator::Remote,
                ..
            },
            ..
        }]
    ));
    peer.server_roundtrip(3);
}

/// §5.1 half-closed (local): "An endpoint can receive any type of frame in this state."
#[test]
fn s5_1_half_closed_local_stream_receives_the_whole_response() {
    let mut peer = client();
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(id.get(), &[(":status", "200")], false);
    peer.send_data(id.get(), b"body", false);
    peer.send_headers(id.get(), &[("x-trailer", "t")], true);
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Response { .. }, Event::Data { .. }, Event::Trailers { trailers, .. }] if trailers["x-trailer"] == "t"),
        "{events:?}"
    );
}

// ---- §5.1: closed ----

/// §5.1 closed: an endpoint "MAY treat receipt of any other type of frame on a closed
/// stream as a connection error of type STREAM_CLOSED"; this engine chooses the stream
/// error that §6.1 prescribes for DATA on a stream that is not open ("MUST respond with
/// a stream error of type STREAM_CLOSED"), and counts the DATA toward the connection
/// window (§6.9), replenishing it at once.
#[test]
fn s5_1_data_on_closed_stream_is_stream_closed_and_counts_toward_connection_window() {
    let mut peer = server_with(eager_updates());
    peer.server_roundtrip(1);
    peer.send_data(1, &[0; 1000], false);
    peer.expect_frames(&[rst(1, ErrorCode::STREAM_CLOSED), window_update(0, 1000)]);
    assert!(peer.take_stream_events().is_empty());
    assert!(!peer.conn.is_closed());
    peer.server_roundtrip(3);
}

/// §5.1 closed: "An endpoint that sends a RST_STREAM frame on a stream that is in the
/// open or half-closed (local) state could receive any type of frame. ... An endpoint
/// MUST minimally process and then discard any frames it receives in this state ...
/// the content of DATA frames counts toward the connection flow-control window": no
/// frame in reply (never RST_STREAM for RST_STREAM, §5.4.2) except the WINDOW_UPDATE
/// that gives the connection window back, and no event.
#[test]
fn s5_1_frames_on_recently_reset_stream_are_ignored_but_data_counts_toward_connection_window() {
    let mut peer = server_with(eager_updates());
    open(&mut peer, 1);
    peer.conn.reset(sid(1), ErrorCode::CANCEL).unwrap();
    peer.expect_frames(&[rst(1, ErrorCode::CANCEL)]);
    assert!(
        peer.take_stream_events().is_empty(),
        "no event for an application reset"
    );
    // Frames the peer sent before it saw the RST_STREAM.
    peer.send_data(1, &[0; 400], false);
    peer.expect_silence();
    peer.send_data(1, &[0; 600], false);
    peer.expect_frames(&[window_update(0, 1000)]);
    peer.send_headers(1, &[("x-trailer", "t")], true);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &10u32.to_be_bytes());
    peer.send_raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 7]);
    peer.send_raw(kind::RST_STREAM, 0, 1, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    peer.server_roundtrip(3);
}

/// (Server under test) Opens stream `id`, which the peer then resets.
fn open_then_peer_resets(peer: &mut Peer, id: u32) {
    open(peer, id);
    peer.send_raw(kind::RST_STREAM, 0, id, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::StreamError {
                error: Error::Reset {
                    initiator: Initiator::Remote,
                    ..
                },
                ..
            }]
        ),
        "{events:?}"
    );
}

/// §5.1 closed: "An endpoint that receives any frame other than PRIORITY after
/// receiving a RST_STREAM MUST treat that as a stream error (Section 5.4.2) of type
/// STREAM_CLOSED." Unlike frames after our own RST_STREAM (which the peer may have sent
/// before it saw ours), these come after the peer's own reset: DATA (whose length still
/// counts toward the connection window, and is given back), HEADERS (still decoded, so
/// HPACK stays in step) and WINDOW_UPDATE. Once we answered, the stream is one we reset,
/// so what follows is ignored; PRIORITY and RST_STREAM never get an answer (§5.4.2).
#[test]
fn s5_1_frames_after_the_peers_rst_stream_are_stream_closed() {
    let mut peer = server_with(eager_updates());
    open_then_peer_resets(&mut peer, 1);
    peer.send_raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 7]);
    peer.send_raw(kind::RST_STREAM, 0, 1, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_silence();
    peer.send_data(1, &[0; 1000], false);
    peer.expect_frames(&[rst(1, ErrorCode::STREAM_CLOSED), window_update(0, 1000)]);
    // Now reset by us: late frames are ignored, DATA credit still returned.
    peer.send_data(1, &[0; 1000], false);
    peer.expect_frames(&[window_update(0, 1000)]);
    assert!(peer.take_stream_events().is_empty());

    open_then_peer_resets(&mut peer, 3);
    peer.send_headers(3, &[("x-after-reset", "indexed")], true);
    peer.expect_stream_error(3, ErrorCode::STREAM_CLOSED);
    open_then_peer_resets(&mut peer, 5);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 5, &10u32.to_be_bytes());
    peer.expect_stream_error(5, ErrorCode::STREAM_CLOSED);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 5, &10u32.to_be_bytes());
    peer.expect_silence();
    // The HEADERS on 3 were decoded: their field is in the dynamic table.
    let mut fields = GET.to_vec();
    fields.push(("x-after-reset", "indexed"));
    peer.send_headers(7, &fields, true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id, request, .. }] if *id == sid(7) && request.headers()["x-after-reset"] == "indexed"),
        "{events:?}"
    );
}

/// §5.1 closed, client side: after the server reset a stream, its DATA on it is a
/// stream error STREAM_CLOSED too.
#[test]
fn s5_1_data_after_the_servers_rst_stream_is_stream_closed_for_a_client() {
    let mut peer = client();
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(id.get(), &[(":status", "200")], false);
    peer.send_raw(
        kind::RST_STREAM,
        0,
        id.get(),
        &ErrorCode::INTERNAL_ERROR.0.to_be_bytes(),
    );
    peer.expect_silence();
    peer.take_stream_events();
    peer.send_data(id.get(), b"late", false);
    peer.expect_stream_error(id.get(), ErrorCode::STREAM_CLOSED);
    peer.client_roundtrip();
}

/// §5.1 closed and §4.3: HEADERS on a recently reset stream are discarded, but only
/// after decoding: a block that added to the dynamic table on the closed stream is
/// referenced by the next block, which must decode. Server and client side.
#[test]
fn s5_1_headers_on_reset_stream_still_update_hpack_state() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.conn.reset(sid(1), ErrorCode::CANCEL).unwrap();
    peer.expect_frames(&[rst(1, ErrorCode::CANCEL)]);
    peer.send_headers(1, &[("x-new", "indexed-on-a-closed-stream")], true);
    peer.expect_silence();
    let mut fields = GET.to_vec();
    fields.push(("x-new", "indexed-on-a-closed-stream"));
    peer.send_headers(3, &fields, true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id, request, .. }] if *id == sid(3) && request.headers()["x-new"] == "indexed-on-a-closed-stream"),
        "{events:?}"
    );

    let mut peer = client();
    let id = peer.client_open(&request("GET", "/"), true);
    peer.conn.reset(id, ErrorCode::CANCEL).unwrap();
    peer.expect_frames(&[rst(id.get(), ErrorCode::CANCEL)]);
    peer.send_headers(
        id.get(),
        &[(":status", "200"), ("x-srv", "indexed-on-a-closed-stream")],
        true,
    );
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(
        id.get(),
        &[(":status", "200"), ("x-srv", "indexed-on-a-closed-stream")],
        true,
    );
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Response { response, .. }] if response.headers()["x-srv"] == "indexed-on-a-closed-stream"),
        "{events:?}"
    );
}

/// §5.1 closed (client side): HEADERS on a stream that closed normally (not reset) is
/// the stream error STREAM_CLOSED (the connection error is a MAY), and the block is
/// decoded first.
#[test]
fn s5_1_headers_on_closed_stream_is_stream_closed_for_a_client() {
    let mut peer = client();
    let id = peer.client_roundtrip();
    peer.send_headers(id.get(), &[(":status", "200"), ("x-late", "1")], true);
    peer.expect_stream_error(id.get(), ErrorCode::STREAM_CLOSED);
    assert!(peer.take_stream_events().is_empty());
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(id.get(), &[(":status", "200"), ("x-late", "1")], true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Response { response, .. }] if response.headers()["x-late"] == "1")
    );
}

/// §5.1 closed: "An endpoint that sends a frame with the END_STREAM flag set or a
/// RST_STREAM frame might receive a WINDOW_UPDATE or RST_STREAM frame from its peer";
/// §6.9: receiving WINDOW_UPDATE on a half-closed (remote) or closed stream "MUST NOT
/// [be treated] as an error".
#[test]
fn s5_1_window_update_and_rst_stream_on_closed_stream_are_not_errors() {
    let mut peer = server();
    open_with(&mut peer, 1, true);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &5u32.to_be_bytes());
    peer.expect_silence();
    respond(&mut peer, 1, true);
    assert_eq!(peer.conn.stream_state(sid(1)), None);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &5u32.to_be_bytes());
    peer.send_raw(kind::RST_STREAM, 0, 1, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.send_raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 7]);
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    peer.server_roundtrip(3);
}

// ---- §5.1.1 Stream Identifiers ----

/// §5.1.1: "Streams initiated by a client MUST use odd-numbered stream identifiers";
/// an even one from a client is an unexpected identifier: connection PROTOCOL_ERROR.
#[test]
fn s5_1_1_even_stream_id_from_client_is_connection_protocol_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_request(2, true);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
}

/// §5.1.1: "The identifier of a newly established stream MUST be numerically greater
/// than all streams that the initiating endpoint has opened ... An endpoint that
/// receives an unexpected stream identifier MUST respond with a connection error of
/// type PROTOCOL_ERROR."
#[test]
fn s5_1_1_stream_id_lower_than_a_previous_one_is_connection_protocol_error() {
    let mut peer = server();
    open(&mut peer, 5);
    peer.send_request(3, true);
    let (_, events) = peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 5);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::StreamError { id, .. } if *id == sid(5))));
}

/// §5.1.1: "Stream identifiers cannot be reused": HEADERS opening a request on the id
/// of a stream that completed is an unexpected identifier (also a frame on a closed
/// stream, which §5.1 lets an endpoint treat as a connection error).
#[test]
fn s5_1_1_reusing_a_closed_stream_id_is_connection_protocol_error() {
    let mut peer = server();
    peer.server_roundtrip(1);
    peer.server_roundtrip(3);
    peer.send_request(1, true);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 3);
}

/// §5.1.1: "the first use of a new stream identifier implicitly closes all streams in
/// the idle state that might have been initiated by that peer with a lower-valued
/// stream identifier": skipped ids are closed, not idle — DATA there is the stream
/// error STREAM_CLOSED (§6.1), WINDOW_UPDATE is tolerated (§6.9), and HEADERS would
/// open a stream out of order.
#[test]
fn s5_1_1_skipped_stream_ids_are_closed() {
    let mut peer = server();
    open(&mut peer, 7);
    peer.send_data(3, b"x", false);
    peer.expect_stream_error(3, ErrorCode::STREAM_CLOSED);
    assert!(peer.take_stream_events().is_empty());
    peer.send_raw(kind::WINDOW_UPDATE, 0, 5, &5u32.to_be_bytes());
    peer.expect_silence();
    peer.send_request(5, true);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 7);
}

/// §5.1.1 (sending side): a client uses odd, increasing stream identifiers.
#[test]
fn s5_1_1_client_opens_streams_with_odd_increasing_ids() {
    let mut peer = client();
    let ids: Vec<u32> = (0..3)
        .map(|_| peer.client_open(&request("GET", "/"), true).get())
        .collect();
    assert_eq!(ids, [1, 3, 5]);
}

// ---- §5.1.2 Stream Concurrency ----

/// §5.1.2: "An endpoint that receives a HEADERS frame that causes its advertised
/// concurrent stream limit to be exceeded MUST treat this as a stream error of type
/// PROTOCOL_ERROR or REFUSED_STREAM." This engine refuses with REFUSED_STREAM (safe to
/// retry, §8.7). Open and half-closed streams count; the refused stream's later frames
/// are ignored, and a slot freed lets a new stream in.
#[test]
fn s5_1_2_streams_beyond_max_concurrent_streams_are_refused() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.max_concurrent_streams = 2;
        c
    });
    open_with(&mut peer, 1, true); // half-closed (remote)
    open(&mut peer, 3); // open
    peer.send_request(5, false);
    let events = peer.expect_stream_error(5, ErrorCode::REFUSED_STREAM);
    assert!(
        events.is_empty(),
        "never handed to the application: {events:?}"
    );
    peer.send_data(5, b"ignored", true);
    peer.expect_silence();
    assert_eq!(peer.conn.active_streams(), (0, 2));
    respond(&mut peer, 1, true);
    open_with(&mut peer, 7, true);
    peer.send_request(9, true);
    peer.expect_stream_error(9, ErrorCode::REFUSED_STREAM);
}

/// §5.1.2: "Endpoints MUST NOT exceed the limit set by their peer": a client keeps
/// requests beyond SETTINGS_MAX_CONCURRENT_STREAMS unsent (fate `NotSent`) until a
/// stream closes.
#[test]
fn s5_1_2_client_never_exceeds_the_peers_limit() {
    let settings = Settings {
        max_concurrent_streams: Some(1),
        ..Settings::default()
    };
    let mut peer = Peer::client_with(Config::default(), settings);
    let a = peer.client_open(&request("GET", "/a"), true);
    let b = peer.conn.send_request(&request("GET", "/b"), true).unwrap();
    peer.expect_silence();
    assert_eq!(peer.conn.fate(b), Some(Fate::NotSent));
    peer.send_headers(a.get(), &[(":status", "204")], true);
    let frames = peer.frames();
    assert!(
        matches!(frames.as_slice(), [Frame::Headers(h)] if h.stream_id == b),
        "{frames:?}"
    );
    assert_eq!(peer.conn.fate(b), Some(Fate::MaybeProcessed));
    // A lower limit applies to what is not yet sent.
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x3, 0)]));
    let c = peer.conn.send_request(&request("GET", "/c"), true).unwrap();
    peer.expect_frames(&[Frame::Settings(SettingsFrame::Ack)]);
    assert_eq!(peer.conn.fate(c), Some(Fate::NotSent));
}

// ---- §5.4 Error Handling ----

/// §5.4.1: "An endpoint that encounters a connection error SHOULD first send a GOAWAY
/// frame with the stream identifier of the last stream that it successfully received
/// from its peer ... After sending the GOAWAY frame for an error condition, the
/// endpoint MUST close the TCP connection": every stream fails with the error, the
/// connection is done, and nothing more is processed.
#[test]
fn s5_4_1_connection_error_fails_every_stream_and_names_the_last_processed_one() {
    let mut peer = server();
    open(&mut peer, 1);
    open(&mut peer, 3);
    peer.send_raw(kind::DATA, 0, 0, b"x");
    let (goaway, events) = peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 3);
    let failed = stream_errors(&events);
    assert_eq!(failed.len(), 2);
    for ((id, error, fate), expected) in failed.into_iter().zip([1, 3]) {
        assert_eq!(id, sid(expected));
        assert_eq!(fate, None);
        assert!(
            matches!(error, Error::GoAway { goaway: g, initiator: Initiator::Library, .. } if g == goaway)
        );
    }
    assert!(peer
        .conn
        .send_response(sid(1), &response(200), true)
        .is_err());

    // A client reports each request's fate.
    let settings = Settings {
        max_concurrent_streams: Some(1),
        ..Settings::default()
    };
    let mut peer = Peer::client_with(Config::default(), settings);
    let sent = peer.client_open(&request("POST", "/"), false);
    let waiting = peer
        .conn
        .send_request(&request("POST", "/"), false)
        .unwrap();
    peer.send_raw(kind::PING, 0, 1, b"12345678");
    let (_, events) = peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
    let fates: Vec<_> = stream_errors(&events)
        .into_iter()
        .map(|(id, _, f)| (id, f))
        .collect();
    assert_eq!(
        fates,
        [
            (sent, Some(Fate::MaybeProcessed)),
            (waiting, Some(Fate::NotSent))
        ]
    );
}

/// §5.4.2: "To avoid looping, an endpoint MUST NOT send a RST_STREAM in response to a
/// RST_STREAM frame" — on an open stream, a recently reset one, a closed one, and when
/// two resets cross.
#[test]
fn s5_4_2_rst_stream_is_never_answered_with_rst_stream() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(
        kind::RST_STREAM,
        0,
        1,
        &ErrorCode::INTERNAL_ERROR.0.to_be_bytes(),
    );
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(matches!(events.as_slice(),
        [Event::StreamError { id, error: Error::Reset { code: ErrorCode::INTERNAL_ERROR, initiator: Initiator::Remote, .. }, fate: None }] if *id == sid(1)));
    peer.send_raw(kind::RST_STREAM, 0, 1, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_silence();
    peer.server_roundtrip(3);
    peer.send_raw(kind::RST_STREAM, 0, 3, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_silence();
    open(&mut peer, 5);
    peer.conn.reset(sid(5), ErrorCode::CANCEL).unwrap();
    peer.expect_frames(&[rst(5, ErrorCode::CANCEL)]);
    peer.send_raw(kind::RST_STREAM, 0, 5, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
}

/// §5.4.2: "A stream error is an error related to a specific stream that does not
/// affect processing of other streams": a stream already open carries on.
#[test]
fn s5_4_2_stream_error_does_not_affect_other_streams() {
    let mut peer = server();
    open(&mut peer, 1);
    open(&mut peer, 3);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &0u32.to_be_bytes());
    peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    peer.send_data(3, b"still here", true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Data { id, data, end_stream: true }] if *id == sid(3) && data == "still here")
    );
    respond(&mut peer, 3, true);
    assert_eq!(peer.conn.active_streams(), (0, 0));
}

// ---- §5.5 Extending HTTP/2 ----

/// §5.5: "extension frames that appear in the middle of a field block are not
/// permitted; these MUST be treated as a connection error of type PROTOCOL_ERROR."
#[test]
fn s5_5_unknown_frame_inside_field_block_is_protocol_error() {
    let mut peer = server();
    let block = peer.block(&GET);
    peer.send_raw(kind::HEADERS, 0, 1, &block[..2]);
    peer.send_raw(0xfa, 0, 1, b"extension");
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §5.5: "Implementations MUST discard frames that have unknown or unsupported
/// types", and §5.1: "Receipt of frames for which the semantics are unknown cannot be
/// treated as an error" — in every stream state: half-closed, recently reset, closed.
#[test]
fn s5_5_unknown_frames_are_discarded_in_every_stream_state() {
    let mut peer = server();
    open_with(&mut peer, 1, true); // half-closed (remote)
    open(&mut peer, 3);
    peer.conn.reset(sid(3), ErrorCode::CANCEL).unwrap();
    peer.expect_frames(&[rst(3, ErrorCode::CANCEL)]);
    peer.server_roundtrip(5); // closed
    for stream in [0, 1, 3, 5, 99] {
        peer.send_raw(0xfe, 0xff, stream, b"extension payload");
    }
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    assert_eq!(
        peer.conn.stream_state(sid(1)),
        Some(steadfast_proto::StreamState::HalfClosedRemote)
    );
    respond(&mut peer, 1, true);
    peer.server_roundtrip(7);
}

// ---- §6.8 GOAWAY ----

/// §6.8: "Receivers of a GOAWAY frame MUST NOT open additional streams on the
/// connection"; streams above the last-stream-id "are not or will not be processed"
/// and are reported `Refused` (or `NotSent` when their HEADERS never left); streams at
/// or below it finish, then the connection closes.
#[test]
fn s6_8_client_receiving_goaway_refuses_streams_above_last_stream_id() {
    let settings = Settings {
        max_concurrent_streams: Some(3),
        ..Settings::default()
    };
    let mut peer = Peer::client_with(Config::default(), settings);
    let sent: Vec<StreamId> = (0..3)
        .map(|_| peer.client_open(&request("POST", "/"), true))
        .collect();
    let unsent: Vec<StreamId> = (0..2)
        .map(|_| peer.conn.send_request(&request("POST", "/"), true).unwrap())
        .collect();
    peer.expect_silence();
    goaway(&mut peer, 1, ErrorCode::NO_ERROR);
    peer.expect_silence();
    let events = peer.take_stream_events();
    let expected_goaway = GoAway {
        code: ErrorCode::NO_ERROR,
        last_stream_id: sid(1),
        debug_data: Bytes::new(),
    };
    let expected_error = Error::GoAway {
        goaway: expected_goaway.clone(),
        initiator: Initiator::Remote,
        reason: None,
    };
    let mut fates: Vec<_> = stream_errors(&events)
        .into_iter()
        .map(|(id, error, fate)| {
            assert_eq!(error, expected_error);
            (id, fate)
        })
        .collect();
    fates.sort_by_key(|(id, _)| *id);
    assert_eq!(
        fates,
        [
            (sent[1], Some(Fate::Refused)),
            (sent[2], Some(Fate::Refused)),
            (unsent[0], Some(Fate::NotSent)),
            (unsent[1], Some(Fate::NotSent)),
        ]
    );
    assert!(matches!(events.last(), Some(Event::GoAwayReceived(g)) if *g == expected_goaway));
    assert_eq!(peer.conn.fate(sent[0]), Some(Fate::MaybeProcessed));
    assert!(!peer.conn.accepts_new_streams());
    assert_eq!(
        peer.conn.send_request(&request("GET", "/"), true),
        Err(Error::User(UserError::GoingAway))
    );
    peer.expect_silence();
    // The stream the server kept completes; then the connection is finished.
    peer.send_headers(1, &[(":status", "200")], true);
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::Response { .. }, Event::Closed(None)]
        ),
        "{events:?}"
    );
    assert!(peer.conn.is_closed());
}

/// §6.8: "An endpoint MAY send multiple GOAWAY frames ... The last stream identifier
/// from the last GOAWAY frame received indicates which streams could have been acted
/// upon": a second GOAWAY with a lower id refuses more streams. One that raises it
/// ("Endpoints MUST NOT increase the value") cannot revive them: the lowest stays.
#[test]
fn s6_8_second_goaway_with_lower_last_stream_id_refuses_more_streams() {
    let mut peer = client();
    for _ in 0..3 {
        peer.client_open(&request("POST", "/"), true);
    }
    goaway(&mut peer, 5, ErrorCode::NO_ERROR);
    let events = peer.take_stream_events();
    assert!(matches!(events.as_slice(), [Event::GoAwayReceived(g)] if g.last_stream_id == sid(5)));
    goaway(&mut peer, 1, ErrorCode::NO_ERROR);
    let events = peer.take_stream_events();
    let refused: Vec<_> = stream_errors(&events)
        .into_iter()
        .map(|(id, _, f)| (id.get(), f))
        .collect();
    assert_eq!(
        refused,
        [(3, Some(Fate::Refused)), (5, Some(Fate::Refused))]
    );
    assert!(matches!(events.last(), Some(Event::GoAwayReceived(g)) if g.last_stream_id == sid(1)));
    goaway(&mut peer, 5, ErrorCode::NO_ERROR);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::GoAwayReceived(g)] if g.last_stream_id == sid(1)),
        "{events:?}"
    );
    assert_eq!(peer.conn.goaway_received().unwrap().last_stream_id, sid(1));
    peer.expect_silence();
    peer.send_headers(1, &[(":status", "200")], true);
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::Response { .. }, Event::Closed(None)]
        ),
        "{events:?}"
    );
}

/// §6.8: a GOAWAY's last-stream-id says which streams "might have been processed";
/// it cannot undo a response the client already holds. A server that answered stream
/// 1's head and then sends GOAWAY(last_stream_id=0) contradicts itself: stream 1 stays
/// `Processed` (not retry-safe), while stream 3, never answered, is `Refused`.
#[test]
fn s6_8_lower_goaway_never_refuses_a_stream_with_its_response_head() {
    let mut peer = client();
    let answered = peer.client_open(&request("POST", "/"), true);
    let unanswered = peer.client_open(&request("POST", "/"), true);
    peer.send_headers(answered.get(), &[(":status", "200")], false);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Response { id, end_stream: false, .. }] if *id == answered),
        "{events:?}"
    );
    assert_eq!(peer.conn.fate(answered), Some(Fate::Processed));
    goaway(&mut peer, 0, ErrorCode::NO_ERROR);
    let events = peer.take_stream_events();
    let mut fates: Vec<_> = stream_errors(&events)
        .into_iter()
        .map(|(id, _, fate)| (id, fate))
        .collect();
    fates.sort_by_key(|(id, _)| *id);
    assert_eq!(
        fates,
        [
            (answered, Some(Fate::Processed)),
            (unanswered, Some(Fate::Refused)),
        ]
    );
}

fn graceful_until_final_goaway(peer: &mut Peer) {
    peer.conn.graceful_shutdown(peer.now);
    let frames = peer.frames();
    let payload = match frames.as_slice() {
        [Frame::GoAway(GoAwayFrame(g)), Frame::Ping(Ping {
            payload,
            ack: false,
        })] if g.code == ErrorCode::NO_ERROR && g.last_stream_id == StreamId::MAX => *payload,
        other => panic!("expected GOAWAY(2^31-1) and PING, got {other:?}"),
    };
    // A request the client sent before it saw the first GOAWAY is still accepted.
    open(peer, 3);
    peer.send(Frame::Ping(Ping { payload, ack: true }));
    let frames = peer.frames();
    assert!(
        matches!(frames.as_slice(), [Frame::GoAway(GoAwayFrame(g))] if g.code == ErrorCode::NO_ERROR && g.last_stream_id == sid(3)),
        "{frames:?}"
    );
}

/// §6.8: "Once the GOAWAY is sent, the sender will ignore frames sent on streams
/// initiated by the receiver if the stream has an identifier higher than the included
/// last stream identifier" (this engine does, silently) — "However ... HEADERS ... MUST
/// be minimally processed to ensure that the state maintained for field section
/// compression is consistent; similarly, DATA frames MUST be counted toward the
/// connection flow-control window."
#[test]
fn s6_8_server_ignores_streams_above_its_goaway_but_keeps_hpack_and_flow_control() {
    let mut peer = server_with(eager_updates());
    open(&mut peer, 1);
    graceful_until_final_goaway(&mut peer);
    let mut fields = GET.to_vec();
    fields.push(("x-late", "indexed-after-goaway"));
    peer.send_headers(5, &fields, false);
    peer.send_data(5, &[0; 1000], true);
    peer.expect_frames(&[window_update(0, 1000)]);
    assert!(
        peer.take_stream_events().is_empty(),
        "stream 5 is never processed"
    );
    // Trailers on stream 1 reference the field indexed on stream 5.
    peer.send_headers(1, &[("x-late", "indexed-after-goaway")], true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Trailers { trailers, .. }] if trailers["x-late"] == "indexed-after-goaway")
    );
    // The streams it kept complete, then the connection closes gracefully.
    respond(&mut peer, 1, true);
    peer.send_data(3, b"", true);
    respond(&mut peer, 3, true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.last(), Some(Event::Closed(None))),
        "{events:?}"
    );
    assert!(peer.conn.is_closed() && peer.conn.error().is_none());
}

/// §6.8: "Endpoints MUST NOT increase the value they send in the last stream
/// identifier": a connection error after the final GOAWAY of a graceful shutdown names
/// the same stream.
#[test]
fn s6_8_later_goaway_never_raises_last_stream_id() {
    let mut peer = server();
    open(&mut peer, 1);
    graceful_until_final_goaway(&mut peer);
    peer.send_request(5, false);
    peer.expect_silence();
    peer.send_raw(kind::PING, 0, 1, b"12345678");
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 3);
}

// ---- §6.9 WINDOW_UPDATE and flow control ----

/// §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a
/// flow-control window increment of 0 as a stream error of type PROTOCOL_ERROR".
#[test]
fn s6_9_zero_window_increment_on_stream_is_stream_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &0u32.to_be_bytes());
    let events = peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(library_reset(&events, 1, ErrorCode::PROTOCOL_ERROR), None);
    peer.server_roundtrip(3);
}

/// §6.9: "errors on the connection flow-control window MUST be treated as a connection
/// error".
#[test]
fn s6_9_zero_window_increment_on_connection_is_connection_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 0, &0u32.to_be_bytes());
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
}

/// §6.9.1: "A sender MUST NOT allow a flow-control window to exceed 2^31-1 octets ...
/// For streams, the sender sends a RST_STREAM with an error code of
/// FLOW_CONTROL_ERROR".
#[test]
fn s6_9_1_window_update_overflowing_stream_window_is_stream_flow_control_error() {
    let mut peer = server();
    open(&mut peer, 1);
    respond(&mut peer, 1, false);
    peer.send_raw(
        kind::WINDOW_UPDATE,
        0,
        1,
        &((1u32 << 31) - 1 - 65_535).to_be_bytes(),
    );
    peer.expect_silence();
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &1u32.to_be_bytes());
    let events = peer.expect_stream_error(1, ErrorCode::FLOW_CONTROL_ERROR);
    assert_eq!(
        library_reset(&events, 1, ErrorCode::FLOW_CONTROL_ERROR),
        None
    );
    peer.server_roundtrip(3);
}

/// §6.9.1: "... for the connection, a GOAWAY frame with an error code of
/// FLOW_CONTROL_ERROR is sent."
#[test]
fn s6_9_1_window_update_overflowing_connection_window_is_connection_flow_control_error() {
    let mut peer = client();
    peer.send_raw(
        kind::WINDOW_UPDATE,
        0,
        0,
        &((1u32 << 31) - 1 - 65_535).to_be_bytes(),
    );
    peer.expect_silence();
    peer.send_raw(kind::WINDOW_UPDATE, 0, 0, &1u32.to_be_bytes());
    peer.expect_conn_error(ErrorCode::FLOW_CONTROL_ERROR, 0);
}

/// §6.9.1: a peer that sends more than the connection window allows violates flow
/// control; this engine ends the connection with FLOW_CONTROL_ERROR (§6.9 lets a
/// receiver answer with a stream or a connection error).
#[test]
fn s6_9_1_data_exceeding_connection_window_is_connection_flow_control_error() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.initial_connection_window = 65_535;
        c
    });
    open(&mut peer, 1);
    for len in [16_384, 16_384, 16_384, 16_383] {
        peer.send_raw(kind::DATA, 0, 1, &vec![0; len]);
    }
    assert_eq!(peer.take_stream_events().len(), 4);
    peer.send_raw(kind::DATA, 0, 1, b"!");
    peer.expect_conn_error(ErrorCode::FLOW_CONTROL_ERROR, 1);
}

/// §6.9.1: more than a stream's window is a stream error FLOW_CONTROL_ERROR here; per
/// §6.9 the frame still counts toward the connection window ("This is necessary even
/// if the frame is in error"), and that window is given back along with what the
/// reset stream held.
#[test]
fn s6_9_1_data_exceeding_stream_window_is_stream_error_and_counts_toward_connection_window() {
    let mut peer = server_with({
        let mut c = eager_updates();
        c.initial_stream_window = 1_000;
        c
    });
    open(&mut peer, 1);
    peer.send_data(1, &[1; 1_000], false);
    assert_eq!(peer.take_stream_events().len(), 1);
    peer.expect_silence();
    peer.send_data(1, b"!", false);
    peer.expect_frames(&[
        rst(1, ErrorCode::FLOW_CONTROL_ERROR),
        window_update(0, 1_001),
    ]);
    let events = peer.take_stream_events();
    assert_eq!(
        library_reset(&events, 1, ErrorCode::FLOW_CONTROL_ERROR),
        None
    );
    peer.server_roundtrip(3);
}

/// §6.1/§6.9: "The entire DATA frame payload is included in flow control, including
/// the Pad Length and Padding fields": padding uses window, and (never reaching the
/// application) is given back at once.
#[test]
fn s6_9_1_padding_counts_toward_flow_control() {
    let mut peer = server_with({
        let mut c = eager_updates();
        c.initial_stream_window = 1_000;
        c
    });
    open(&mut peer, 1);
    let mut padded = vec![255u8];
    padded.extend_from_slice(&[0; 255]);
    peer.send_raw(kind::DATA, flag::PADDED, 1, &padded);
    peer.expect_frames(&[window_update(1, 256)]);
    peer.send_data(1, &[1; 1_000], false);
    peer.expect_silence();
    peer.send_data(1, b"!", false);
    peer.expect_frames(&[
        rst(1, ErrorCode::FLOW_CONTROL_ERROR),
        window_update(0, 1_257),
    ]);
    let events = peer.take_stream_events();
    assert!(
        matches!(&events[0], Event::Data { data, .. } if data.len() == 1_000),
        "padding is not data"
    );
    assert_eq!(
        library_reset(&events, 1, ErrorCode::FLOW_CONTROL_ERROR),
        None
    );
    peer.server_roundtrip(3);
}

/// §6.9.1: "The sender MUST NOT send a flow-controlled frame with a length that exceeds
/// the space available in either of the flow-control windows advertised by the
/// receiver", and resumes as WINDOW_UPDATE frames arrive.
#[test]
fn s6_9_1_sender_respects_both_windows() {
    let settings = Settings {
        initial_window_size: Some(100),
        ..Settings::default()
    };
    let mut peer = Peer::server_with(Config::default(), settings);
    open(&mut peer, 1);
    respond(&mut peer, 1, false);
    peer.conn
        .send_data(sid(1), Bytes::from(vec![7u8; 300]), true)
        .unwrap();
    peer.expect_frames(&[data(1, 100, false)]);
    assert_eq!(peer.conn.send_capacity(sid(1)), 0);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &50u32.to_be_bytes());
    peer.expect_frames(&[data(1, 50, false)]);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &1_000u32.to_be_bytes());
    peer.expect_frames(&[data(1, 150, true)]);

    // The connection window (65,535) binds when the stream window does not.
    let settings = Settings {
        initial_window_size: Some((1 << 31) - 1),
        ..Settings::default()
    };
    let mut peer = Peer::server_with(Config::default(), settings);
    open(&mut peer, 1);
    respond(&mut peer, 1, false);
    peer.conn
        .send_data(sid(1), Bytes::from(vec![7u8; 70_000]), true)
        .unwrap();
    peer.expect_frames(&[
        data(1, 16_384, false),
        data(1, 16_384, false),
        data(1, 16_384, false),
        data(1, 16_383, false),
    ]);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 0, &10u32.to_be_bytes());
    peer.expect_frames(&[data(1, 10, false)]);
}

/// §6.9.2: "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a receiver MUST
/// adjust the size of all stream flow-control windows that it maintains by the
/// difference"; "A sender MUST track the negative flow-control window and MUST NOT send
/// new flow-controlled frames until it receives WINDOW_UPDATE frames that cause the
/// flow-control window to become positive."
#[test]
fn s6_9_2_initial_window_size_change_applies_to_open_streams_and_can_go_negative() {
    let settings = Settings {
        initial_window_size: Some(100),
        ..Settings::default()
    };
    let mut peer = Peer::server_with(Config::default(), settings);
    open(&mut peer, 1);
    respond(&mut peer, 1, false);
    peer.conn
        .send_data(sid(1), Bytes::from(vec![7u8; 150]), false)
        .unwrap();
    peer.expect_frames(&[data(1, 100, false)]);
    // 0 + (40 - 100) = -60.
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x4, 40)]));
    peer.expect_frames(&[Frame::Settings(SettingsFrame::Ack)]);
    assert_eq!(peer.conn.send_capacity(sid(1)), 0);
    // -60 + 50 = -10: still nothing.
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &50u32.to_be_bytes());
    peer.expect_silence();
    // -10 + 20 = 10.
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &20u32.to_be_bytes());
    peer.expect_frames(&[data(1, 10, false)]);
    // 0 + (80 - 40) = 40.
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x4, 80)]));
    peer.expect_frames(&[Frame::Settings(SettingsFrame::Ack), data(1, 40, false)]);
    peer.take_stream_events();
    // New streams start with the new value.
    open(&mut peer, 3);
    respond(&mut peer, 3, false);
    peer.conn
        .send_data(sid(3), Bytes::from(vec![7u8; 100]), true)
        .unwrap();
    peer.expect_frames(&[data(3, 80, false)]);
}

/// §6.9.2: "A SETTINGS frame cannot alter the connection flow-control window."
#[test]
fn s6_9_2_initial_window_size_does_not_alter_the_connection_window() {
    let mut peer = server();
    open(&mut peer, 1);
    respond(&mut peer, 1, false);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &100_000u32.to_be_bytes());
    peer.conn
        .send_data(sid(1), Bytes::from(vec![7u8; 70_000]), true)
        .unwrap();
    let sent: usize = peer
        .frames()
        .iter()
        .map(|f| match f {
            Frame::Data(d) => d.data.len(),
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(sent, 65_535);
    peer.send_raw(
        kind::SETTINGS,
        0,
        0,
        &settings_payload(&[(0x4, (1 << 31) - 1 - 100_000)]),
    );
    peer.expect_frames(&[Frame::Settings(SettingsFrame::Ack)]);
    assert_eq!(peer.conn.send_capacity(sid(1)), 0);
}

/// §6.9.2: "An endpoint MUST treat a change to SETTINGS_INITIAL_WINDOW_SIZE that causes
/// any flow-control window to exceed the maximum size as a connection error of type
/// FLOW_CONTROL_ERROR."
#[test]
fn s6_9_2_initial_window_size_overflowing_an_open_stream_is_flow_control_error() {
    let mut peer = server();
    open(&mut peer, 1);
    respond(&mut peer, 1, false);
    peer.send_raw(
        kind::WINDOW_UPDATE,
        0,
        1,
        &((1u32 << 31) - 1 - 65_535).to_be_bytes(),
    );
    peer.expect_silence();
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x4, 65_535)]));
    peer.expect_frames(&[Frame::Settings(SettingsFrame::Ack)]);
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x4, 65_536)]));
    peer.expect_conn_error(ErrorCode::FLOW_CONTROL_ERROR, 1);
}

/// §6.9.3: after sending SETTINGS that reduce the initial window, "the receiver MUST be
/// prepared to receive data that exceeds this window size, since the sender might send
/// data that exceeds the lower limit prior to processing the SETTINGS frame". Until
/// the acknowledgement the initial 65,535 applies; afterwards the reduced one does,
/// to open streams too.
#[test]
fn s6_9_3_data_sent_before_a_window_reduction_is_acknowledged_is_accepted() {
    let mut peer = Peer::server_unacked({
        let mut c = Config::default();
        c.initial_stream_window = 1_000;
        c
    });
    open(&mut peer, 1);
    peer.send_data(1, &[1; 5_000], false);
    assert_eq!(peer.take_stream_events().len(), 1);
    peer.expect_silence();
    peer.send(Frame::Settings(SettingsFrame::Ack));
    peer.take_stream_events();
    // Stream 1: 65,535 - 5,000 + (1,000 - 65,535) = -4,000.
    peer.send_data(1, b"!", false);
    peer.expect_stream_error(1, ErrorCode::FLOW_CONTROL_ERROR);
    open(&mut peer, 3);
    peer.send_data(3, &[1; 1_000], false);
    assert_eq!(peer.take_stream_events().len(), 1);
    peer.send_data(3, b"!", false);
    peer.expect_stream_error(3, ErrorCode::FLOW_CONTROL_ERROR);
    peer.server_roundtrip(5);
}

// ---- §6.9 connection flow control at scale, and WINDOW_UPDATE floods ----

/// §6.9.1 "the sender MUST NOT send a flow-controlled frame with a length that exceeds
/// the space available": streams that run out of connection window wait for it, and a
/// connection WINDOW_UPDATE resumes exactly those, in the order they ran out, however
/// many other streams are open (here 10,000, which it does not visit).
#[test]
fn s6_9_1_connection_window_update_resumes_the_blocked_streams_in_order() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.max_concurrent_streams = 20_000;
        c
    });
    for i in 0..10_000 {
        peer.send_request(2 * i + 1, false);
    }
    assert_eq!(peer.take_stream_events().len(), 10_000);
    // Stream 1 takes the whole connection window (65,535).
    respond(&mut peer, 1, false);
    peer.conn
        .send_data(sid(1), Bytes::from(vec![7u8; 65_535]), false)
        .unwrap();
    let sent: usize = peer
        .frames()
        .iter()
        .map(|f| match f {
            Frame::Data(d) => d.data.len(),
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(sent, 65_535);
    // Streams spread over the ids then queue 100 bytes each, in this order.
    let order = [19_999, 7, 5_001, 12_345, 3, 9_999, 15_001, 333];
    for id in order {
        respond(&mut peer, id, false);
        peer.conn
            .send_data(sid(id), Bytes::from(vec![7u8; 100]), true)
            .unwrap();
    }
    peer.expect_silence();
    peer.send(window_update(0, 800));
    let frames = peer.frames();
    let expected: Vec<Frame> = order.iter().map(|id| data(*id, 100, true)).collect();
    assert_eq!(frames, expected);
}

/// §6.9 with §10.5: a connection WINDOW_UPDATE that neither returns credit for DATA we
/// sent nor unblocks anything costs the peer nothing and us a frame's work: past
/// `FloodLimits::max_empty_frames` of them per window, ENHANCE_YOUR_CALM.
#[test]
fn s6_9_connection_window_updates_that_answer_nothing_are_a_flood() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.flood = FloodLimits {
            max_empty_frames: 100,
            ..FloodLimits::default()
        };
        c
    });
    open(&mut peer, 1);
    for _ in 0..100 {
        peer.send(window_update(0, 1));
    }
    peer.expect_silence();
    peer.send(window_update(0, 1));
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 1);
}

/// The flood rule never counts credit returned for DATA we sent, however often it
/// comes: here a peer that answers every DATA frame with WINDOW_UPDATEs for the stream
/// and the connection, and enlarges the connection window once at the start, all
/// under a budget of 3 empty frames.
#[test]
fn s6_9_window_update_for_every_data_frame_is_not_a_flood() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.flood = FloodLimits {
            max_empty_frames: 3,
            ..FloodLimits::default()
        };
        c
    });
    peer.send(window_update(0, 1 << 20));
    open(&mut peer, 1);
    respond(&mut peer, 1, false);
    let body = 4 << 20;
    peer.conn
        .send_data(sid(1), Bytes::from(vec![7u8; body]), true)
        .unwrap();
    let mut received = 0;
    let mut ended = false;
    while !ended {
        let frames = peer.frames();
        assert!(!frames.is_empty(), "stalled after {received} bytes");
        for f in frames {
            let Frame::Data(d) = f else {
                panic!("{f:?}");
            };
            let len = d.data.len() as u32;
            received += d.data.len();
            ended = d.end_stream;
            if len > 0 {
                peer.send(window_update(0, len));
                if !ended {
                    peer.send(window_update(1, len));
                }
            }
        }
    }
    assert_eq!(received, body);
    assert!(!peer.conn.is_closed());
    peer.server_roundtrip(3);
}

/// §6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE decrease can leave a stream that waits for
/// the connection window with a stream window below zero. When connection window
/// arrives, that stream cannot use it, and must not keep the next waiting stream from
/// using it either.
#[test]
fn s6_9_2_stream_window_closed_by_settings_does_not_hold_back_connection_window() {
    let mut peer = Peer::server_with(
        Config::default(),
        Settings {
            initial_window_size: Some(100_000),
            ..Settings::default()
        },
    );
    for id in [1, 3] {
        open(&mut peer, id);
        respond(&mut peer, id, false);
    }
    let payload = |n: usize| Bytes::from(vec![7u8; n]);
    peer.conn.send_data(sid(1), payload(40_000), false).unwrap();
    peer.frames();
    // Both now run out of connection window (65,535), stream 1 first.
    peer.conn.send_data(sid(1), payload(50_000), false).unwrap();
    peer.conn.send_data(sid(3), payload(50_000), false).unwrap();
    let sent: usize = peer
        .frames()
        .iter()
        .map(|f| match f {
            Frame::Data(d) => d.data.len(),
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(sent, 65_535 - 40_000);
    // Stream 1's window: 100,000 - 56,384 - 50,000 < 0; stream 3's stays positive.
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x4, 50_000)]));
    peer.expect_frames(&[Frame::Settings(SettingsFrame::Ack)]);
    peer.send(window_update(0, 1_000));
    peer.expect_frames(&[data(3, 1_000, false)]);
}
