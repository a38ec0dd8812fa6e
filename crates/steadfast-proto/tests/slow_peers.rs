//! Bounds on slow and hostile peers, on a virtual clock: the handshake timeout, the
//! per-stream receive timeout, the connection idle timeout of the server defaults, and
//! the cut of HPACK bombs and repeated oversized field blocks.

mod support;

use std::time::Duration;

use bytes::Bytes;
use steadfast_proto::frame::{Frame, Headers, SettingsFrame};
use steadfast_proto::{
    Config, Error, ErrorCode, Event, Fate, Initiator, Settings, StreamId, PREFACE,
};
use support::{request, response, sid, window_update, Peer};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

fn recv_timeout(timeout: Duration) -> Config {
    Config {
        stream_recv_timeout: Some(timeout),
        ..Config::default()
    }
}

/// The one library reset of `id` with `code` among `events`.
fn reset_event(events: &[Event], id: u32, code: ErrorCode) -> Option<Fate> {
    let found: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::StreamError {
                id: i,
                error:
                    Error::Reset {
                        code: c,
                        initiator: Initiator::Library,
                        ..
                    },
                fate,
            } if *i == sid(id) && *c == code => Some(*fate),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one reset of {id} with {code}: {events:?}");
    found[0]
}

// ---- configuration ----

#[test]
fn server_defaults_bound_every_clock_and_default_leaves_them_off() {
    let server = Config::server();
    assert_eq!(server.handshake_timeout, Some(secs(10)));
    assert_eq!(server.stream_recv_timeout, Some(secs(60)));
    assert_eq!(server.max_connection_idle, Some(secs(300)));
    let default = Config::default();
    assert_eq!(default.handshake_timeout, None);
    assert_eq!(default.stream_recv_timeout, None);
    assert_eq!(default.max_connection_idle, None);
    assert_eq!(default.max_oversized_header_blocks, 4);
    assert_eq!(server.max_oversized_header_blocks, 4);
}

// ---- handshake ----

fn handshake_config() -> Config {
    Config {
        handshake_timeout: Some(secs(5)),
        // Far later, so that the handshake timeout is what fires.
        settings_timeout: secs(60),
        ..Config::default()
    }
}

#[test]
fn handshake_timeout_closes_a_connection_whose_client_sends_nothing() {
    let mut peer = Peer::server_unestablished(handshake_config());
    peer.run_for(secs(5) - ms(1));
    peer.expect_silence();
    assert!(!peer.conn.is_closed());
    peer.run_for(ms(1));
    let (goaway, _) = peer.expect_conn_error(ErrorCode::SETTINGS_TIMEOUT, 0);
    assert_eq!(goaway.debug_data, Bytes::from_static(b"handshake_timeout"));
}

#[test]
fn handshake_timeout_covers_a_preface_sent_byte_by_byte() {
    let mut peer = Peer::server_unestablished(handshake_config());
    // Slowloris: one byte of the preface per second never completes in time.
    for byte in &PREFACE[..5] {
        peer.send_bytes(&[*byte]);
        peer.run_for(secs(1));
    }
    peer.expect_conn_error(ErrorCode::SETTINGS_TIMEOUT, 0);
}

#[test]
fn handshake_timeout_fires_before_the_settings_ack_timeout_at_the_same_instant() {
    let config = Config {
        handshake_timeout: Some(secs(10)),
        settings_timeout: secs(10),
        ..Config::default()
    };
    let mut peer = Peer::server_unestablished(config);
    peer.run_for(secs(10));
    let (goaway, _) = peer.expect_conn_error(ErrorCode::SETTINGS_TIMEOUT, 0);
    assert_eq!(goaway.debug_data, Bytes::from_static(b"handshake_timeout"));
}

#[test]
fn handshake_timeout_is_disarmed_once_the_peer_settings_arrive() {
    let mut peer = Peer::raw(steadfast_proto::Role::Server, handshake_config());
    peer.recv_all();
    peer.run_for(secs(4));
    peer.send_bytes(PREFACE);
    peer.send(Frame::Settings(SettingsFrame::Values(Settings::default())));
    peer.send(Frame::Settings(SettingsFrame::Ack));
    peer.recv_all();
    peer.take_events();
    assert_eq!(peer.conn.poll_timeout(), None, "nothing left armed");
    peer.run_for(secs(3600));
    assert!(!peer.conn.is_closed());
    peer.server_roundtrip(1);
}

// ---- stream receive timeout ----

/// A server whose peer opened stream 1 with a request body still to come.
fn server_waiting_for_body(config: Config) -> Peer {
    let mut peer = Peer::server_with(config, Settings::default());
    peer.send_request(1, false);
    let events = peer.take_stream_events();
    assert!(matches!(
        events.as_slice(),
        [Event::Request {
            end_stream: false,
            ..
        }]
    ));
    peer
}

#[test]
fn a_request_body_that_stops_arriving_is_reset_with_cancel() {
    let mut peer = server_waiting_for_body(recv_timeout(secs(5)));
    peer.run_for(secs(4));
    peer.send_data(1, b"more", false);
    peer.take_stream_events();
    // The DATA restarted the clock: 5 s from it, not from the head.
    peer.run_for(secs(5) - ms(1));
    peer.expect_silence();
    peer.run_for(ms(1));
    let events = peer.expect_stream_error(1, ErrorCode::CANCEL);
    assert_eq!(
        reset_event(&events, 1, ErrorCode::CANCEL),
        None,
        "peer-initiated"
    );
    // Only that stream: the connection goes on.
    peer.server_roundtrip(3);
    assert_eq!(peer.conn.poll_timeout(), None, "no sweep left armed");
}

#[test]
fn empty_data_frames_do_not_keep_a_stream_alive() {
    let mut peer = server_waiting_for_body(recv_timeout(secs(5)));
    for _ in 0..4 {
        peer.run_for(secs(1));
        peer.send_data(1, b"", false);
    }
    peer.run_for(secs(1));
    peer.expect_stream_error(1, ErrorCode::CANCEL);
}

#[test]
fn a_body_that_completes_in_time_is_not_reset() {
    let mut peer = server_waiting_for_body(recv_timeout(secs(5)));
    peer.run_for(secs(4));
    peer.send_data(1, b"last", true);
    peer.run_for(secs(3600));
    peer.expect_silence();
    // The application may take as long as it likes to answer: no body is awaited.
    peer.conn
        .send_response(sid(1), &response(200), true)
        .unwrap();
    assert_eq!(peer.conn.stream_state(sid(1)), None);
}

#[test]
fn requests_without_a_body_never_start_the_clock() {
    let mut peer = Peer::server_with(recv_timeout(secs(5)), Settings::default());
    peer.send_request(1, true);
    peer.take_stream_events();
    assert_eq!(peer.conn.poll_timeout(), None);
    peer.run_for(secs(3600));
    peer.expect_silence();
}

#[test]
fn the_clock_pauses_while_flow_control_stops_the_peer() {
    let config = Config {
        initial_stream_window: 1024,
        ..recv_timeout(secs(5))
    };
    let mut peer = server_waiting_for_body(config);
    peer.send_data(1, &[7; 1024], false);
    peer.take_stream_events();
    // The application does not read: the peer cannot send, so it is not late.
    peer.run_for(secs(60));
    peer.expect_silence();
    // Once the window reopens, the peer has the whole timeout again.
    peer.conn.release_capacity(sid(1), 1024);
    peer.expect_frames(&[window_update(1, 1024)]);
    peer.run_for(secs(5) - ms(1));
    peer.expect_silence();
    // (Restarted at the first sweep after the window reopened: within 2x the timeout.)
    peer.run_for(secs(10));
    peer.expect_stream_error(1, ErrorCode::CANCEL);
}

#[test]
fn each_stream_has_its_own_clock() {
    let mut peer = server_waiting_for_body(recv_timeout(secs(5)));
    peer.run_for(secs(2));
    peer.send_request(3, false);
    peer.take_stream_events();
    peer.run_for(secs(3));
    peer.expect_stream_error(1, ErrorCode::CANCEL);
    peer.run_for(secs(2) - ms(1));
    peer.expect_silence();
    peer.run_for(ms(1));
    peer.expect_stream_error(3, ErrorCode::CANCEL);
}

#[test]
fn a_response_body_that_stops_arriving_is_reset_on_a_client() {
    let mut peer = Peer::client_with(recv_timeout(secs(5)), Settings::default());
    let id = peer.client_open(&request("GET", "/"), true);
    // Waiting for the response head is the server's processing time: no limit here.
    peer.run_for(secs(60));
    peer.expect_silence();
    peer.send_headers(id.get(), &[(":status", "200")], false);
    peer.take_stream_events();
    peer.run_for(secs(5));
    let events = peer.expect_stream_error(id.get(), ErrorCode::CANCEL);
    assert_eq!(
        reset_event(&events, id.get(), ErrorCode::CANCEL),
        Some(Fate::Processed)
    );
}

// ---- idle connections under the server defaults ----

#[test]
fn server_defaults_close_an_idle_connection_with_goaway_max_idle() {
    let mut peer = Peer::server_with(Config::server(), Settings::default());
    peer.server_roundtrip(1);
    peer.run_for(secs(300) - ms(1));
    peer.expect_silence();
    peer.run_for(ms(1));
    let frames = peer.recv_all();
    let goaway = frames
        .iter()
        .find_map(|f| match f {
            Frame::GoAway(g) => Some(g.0.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("GOAWAY expected: {frames:?}"));
    assert_eq!(goaway.code, ErrorCode::NO_ERROR);
    assert_eq!(goaway.debug_data, Bytes::from_static(b"max_idle"));
    // A peer that never answers the shutdown PING is closed all the same.
    peer.run_for(secs(5));
    assert!(peer.conn.is_closed());
}

// ---- HPACK bombs and oversized field blocks ----

/// An HPACK integer with an `prefix`-bit prefix, first byte or-ed with `flags`.
fn hpack_int(out: &mut Vec<u8>, flags: u8, prefix: u8, mut value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// `:method GET`, `:scheme http`, `:path /` from the static table, and `:authority`
/// as a literal that is not indexed (so the dynamic table holds only the bomb).
fn pseudo_headers() -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x84, 0x01, 12];
    block.extend_from_slice(b"example.test");
    block
}

fn send_block(peer: &mut Peer, id: u32, block: Vec<u8>) {
    peer.send(Frame::Headers(Headers {
        stream_id: StreamId::new(id),
        priority: None,
        fragment: Bytes::from(block),
        end_stream: true,
        end_headers: true,
    }));
}

/// A server whose peer's request on stream 1 added a 4,000-byte field to the HPACK
/// table (index 62); each reference to it decodes to 4,038 bytes.
fn server_with_bomb_entry() -> Peer {
    let mut peer = Peer::server_with(Config::default(), Settings::default());
    let mut block = pseudo_headers();
    block.extend_from_slice(&[0x40, 6]);
    block.extend_from_slice(b"x-bomb");
    hpack_int(&mut block, 0, 7, 4000);
    block.extend(std::iter::repeat_n(b'b', 4000));
    send_block(&mut peer, 1, block);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { .. }]),
        "{events:?}"
    );
    peer
}

fn bomb(references: usize) -> Vec<u8> {
    let mut block = pseudo_headers();
    block.extend(std::iter::repeat_n(0xbe, references)); // index 62
    block
}

#[test]
fn an_hpack_bomb_closes_the_connection_at_the_first_block() {
    let mut peer = server_with_bomb_entry();
    // 70 bytes that decode to 282 KiB, over 4x the 64 KiB header list limit.
    send_block(&mut peer, 3, bomb(70));
    let (goaway, _) = peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 1);
    assert!(
        goaway.debug_data.starts_with(b"HPACK bomb"),
        "{:?}",
        goaway.debug_data
    );
}

#[test]
fn oversized_blocks_get_431_until_too_many_then_goaway() {
    let mut peer = server_with_bomb_entry();
    // 20 references: 80 KiB, over the limit but not a bomb. Each of the first four is
    // answered on its own stream.
    for i in 0..4u32 {
        let id = 3 + 2 * i;
        send_block(&mut peer, id, bomb(20));
        let frames = peer.frames();
        assert!(
            matches!(frames.as_slice(), [Frame::Headers(h)] if h.stream_id == sid(id) && h.end_stream),
            "431 on {id}: {frames:?}"
        );
        let (_, fields, _) = peer.take_blocks().pop().unwrap();
        assert_eq!(fields, [(":status".to_string(), "431".to_string())]);
        assert!(!peer.conn.is_closed());
    }
    send_block(&mut peer, 11, bomb(20));
    let (goaway, _) = peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 1);
    assert_eq!(
        goaway.debug_data,
        Bytes::from_static(b"too many field blocks over SETTINGS_MAX_HEADER_LIST_SIZE")
    );
}

#[test]
fn blocks_within_the_limit_are_never_counted() {
    let mut peer = server_with_bomb_entry();
    // 15 references: 60 KiB, under the limit, any number of times.
    for i in 0..20u32 {
        let id = 3 + 2 * i;
        send_block(&mut peer, id, bomb(15));
        let events = peer.take_stream_events();
        assert!(
            matches!(events.as_slice(), [Event::Request { .. }]),
            "{events:?}"
        );
        peer.conn
            .send_response(sid(id), &response(200), true)
            .unwrap();
        peer.frames();
    }
    assert!(!peer.conn.is_closed());
}
