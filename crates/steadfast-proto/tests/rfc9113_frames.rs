//! RFC 9113 conformance, frame layer: the connection preface (§3.4), frame format,
//! size and field-block rules (§4), every frame type's own error rules (§6) and the
//! error codes (§7). A scripted peer sends raw frames to one endpoint under test and
//! checks exactly what it writes back and what the application sees.

mod support;

use std::time::Duration;

use bytes::Bytes;
use steadfast_proto::frame::{Frame, Headers, Ping, SettingsFrame};
use steadfast_proto::PREFACE;
use steadfast_proto::{Config, Error, ErrorCode, Event, Fate, FloodLimits, Initiator, Settings};
use support::{
    client, flag, kind, library_reset, request, server, server_with, settings_payload, sid, Peer,
    GET,
};

/// (Server under test) Opens stream `id` with a GET that has a body to come.
fn open(peer: &mut Peer, id: u32) {
    peer.send_request(id, false);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id: i, end_stream: false, .. }] if *i == sid(id)),
        "request on {id}: {events:?}"
    );
}

fn ping_ack(payload: [u8; 8]) -> Frame {
    Frame::Ping(Ping { payload, ack: true })
}

fn settings_ack() -> Frame {
    Frame::Settings(SettingsFrame::Ack)
}

fn goaway_text(peer: &mut Peer, code: ErrorCode) -> String {
    let (goaway, _) = peer.expect_conn_error(code, 0);
    String::from_utf8(goaway.debug_data.to_vec()).unwrap()
}

// ---- §3.4 HTTP/2 Connection Preface ----

/// §3.4: the preface may arrive in pieces; once it and the client's SETTINGS are in,
/// that SETTINGS is acknowledged ("MUST be acknowledged").
#[test]
fn s3_4_preface_split_across_reads_is_accepted_and_settings_acknowledged() {
    let mut peer = Peer::server_unestablished(Config::default());
    for byte in PREFACE {
        peer.send_bytes(&[*byte]);
        peer.expect_silence();
    }
    assert!(!peer.conn.is_closed());
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x3, 10)]));
    peer.expect_frames(&[settings_ack()]);
    assert!(peer.conn.is_established());
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::PeerSettings(s)] if s.max_concurrent_streams == Some(10))
    );
}

/// §3.4: "Clients and servers MUST treat an invalid connection preface as a connection
/// error of type PROTOCOL_ERROR." The GOAWAY MAY be omitted; this engine sends one.
#[test]
fn s3_4_invalid_preface_is_connection_protocol_error() {
    let mut peer = Peer::server_unestablished(Config::default());
    peer.send_bytes(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    assert_eq!(
        goaway_text(&mut peer, ErrorCode::PROTOCOL_ERROR),
        "invalid HTTP/2 connection preface"
    );
}

/// §3.4: an HTTP/1.1 request instead of the preface is an invalid preface; the GOAWAY
/// debug data says what arrived.
#[test]
fn s3_4_http1_request_instead_of_preface_is_protocol_error_naming_http1() {
    let mut peer = Peer::server_unestablished(Config::default());
    peer.send_bytes(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n");
    let text = goaway_text(&mut peer, ErrorCode::PROTOCOL_ERROR);
    assert!(text.contains("HTTP/1"), "{text}");
}

/// §3.4: a TLS ClientHello sent to a cleartext server is an invalid preface; the
/// GOAWAY debug data says so.
#[test]
fn s3_4_tls_client_hello_on_cleartext_server_is_protocol_error_naming_tls() {
    let mut peer = Peer::server_unestablished(Config::default());
    peer.send_bytes(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ]);
    let text = goaway_text(&mut peer, ErrorCode::PROTOCOL_ERROR);
    assert!(text.contains("TLS"), "{text}");
}

/// §3.4: the preface "MUST be followed by a SETTINGS frame": a client whose first frame
/// is something else sent an invalid preface.
#[test]
fn s3_4_client_first_frame_not_settings_is_protocol_error() {
    let mut peer = Peer::server_unestablished(Config::default());
    peer.send_bytes(PREFACE);
    peer.send_raw(kind::PING, 0, 0, b"12345678");
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §3.4: the server's SETTINGS "MUST be the first frame the server sends"; a SETTINGS
/// acknowledgement or any other frame first is an invalid preface.
#[test]
fn s3_4_server_first_frame_not_settings_is_protocol_error() {
    let mut peer = Peer::client_unestablished(Config::default());
    peer.send_raw(kind::WINDOW_UPDATE, 0, 0, &100u32.to_be_bytes());
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);

    let mut peer = Peer::client_unestablished(Config::default());
    peer.send_raw(kind::SETTINGS, flag::ACK, 0, &[]);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

// ---- §4.1 Frame Format ----

/// §4.1: "Implementations MUST ignore and discard frames of unknown types", on stream
/// 0, on an open stream and on an idle stream (which stays idle).
#[test]
fn s4_1_unknown_frame_types_are_ignored() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(0xfa, 0xff, 0, b"connection");
    peer.send_raw(0xfb, 0x01, 1, b"open stream");
    peer.send_raw(0xfc, 0x00, 99, b"");
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    peer.send_data(1, b"body", true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Data { end_stream: true, data, .. }] if data == "body")
    );
    // Stream 99 was not opened: a lower id is still new.
    peer.server_roundtrip(3);
}

/// §4.1: "Unused flags MUST be ignored on receipt."
#[test]
fn s4_1_unused_flags_are_ignored() {
    let mut peer = server();
    peer.send_raw(kind::PING, 0xfe, 0, b"flagsOK!");
    peer.expect_frames(&[ping_ack(*b"flagsOK!")]);
    peer.send_raw(kind::SETTINGS, 0xfe, 0, &[]);
    peer.expect_frames(&[settings_ack()]);
    peer.take_stream_events();
    // HEADERS: 0x02, 0x10, 0x40 and 0x80 are unused (END_HEADERS set, no END_STREAM).
    let block = peer.block(&GET);
    peer.send_raw(kind::HEADERS, 0xd2 | flag::END_HEADERS, 1, &block);
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::Request {
                end_stream: false,
                ..
            }]
        ),
        "{events:?}"
    );
    // DATA: everything but END_STREAM and PADDED is unused.
    peer.send_raw(kind::DATA, 0xf6, 1, b"x");
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Data { end_stream: false, data, .. }] if data == "x")
    );
    peer.expect_silence();
}

/// §4.1: the reserved bit of the stream identifier (and of WINDOW_UPDATE's increment,
/// §6.9) "MUST be ignored when receiving".
#[test]
fn s4_1_reserved_bits_are_ignored() {
    let mut peer = server();
    let block = peer.block(&GET);
    peer.send_raw(kind::HEADERS, flag::END_HEADERS, 0x8000_0001, &block);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id, .. }] if *id == sid(1)),
        "{events:?}"
    );
    peer.conn
        .send_response(sid(1), &support::response(200), false)
        .unwrap();
    peer.frames();
    // Connection window 65,535 + 16; stream window 65,535 + 100.
    peer.send_raw(kind::WINDOW_UPDATE, 0, 0, &0x8000_0010u32.to_be_bytes());
    peer.send_raw(
        kind::WINDOW_UPDATE,
        0,
        0x8000_0001,
        &0x8000_0064u32.to_be_bytes(),
    );
    peer.expect_silence();
    assert_eq!(peer.conn.send_capacity(sid(1)), 65_551);
}

// ---- §4.2 Frame Size ----

/// §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds
/// the size defined in SETTINGS_MAX_FRAME_SIZE". This engine treats every oversized
/// frame as a connection error: it does not buffer the payload, so it cannot keep
/// HPACK or flow-control state for it.
#[test]
fn s4_2_frame_larger_than_max_frame_size_is_frame_size_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::DATA, 0, 1, &[0; 16_384]);
    let events = peer.take_stream_events();
    assert!(matches!(events.as_slice(), [Event::Data { data, .. }] if data.len() == 16_384));
    peer.send_raw(kind::DATA, 0, 1, &[0; 16_385]);
    let (goaway, events) = peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 1);
    // The stream that was open fails with the connection's error.
    assert!(events.iter().any(|e| matches!(e,
        Event::StreamError { id, error: Error::GoAway { goaway: g, .. }, fate: None } if *id == sid(1) && *g == goaway)));
}

/// §4.2: the limit is the SETTINGS_MAX_FRAME_SIZE this endpoint advertised.
#[test]
fn s4_2_frames_up_to_advertised_max_frame_size_are_accepted() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.max_frame_size = 20_000;
        c
    });
    open(&mut peer, 1);
    peer.send_raw(kind::DATA, 0, 1, &[1; 20_000]);
    let events = peer.take_stream_events();
    assert!(matches!(events.as_slice(), [Event::Data { data, .. }] if data.len() == 20_000));
    peer.send_raw(kind::DATA, 0, 1, &[1; 20_001]);
    peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 1);
}

/// §4.2: a frame "too small to contain mandatory frame data" is a FRAME_SIZE_ERROR, a
/// connection error for a frame carrying a field block.
#[test]
fn s4_2_headers_too_short_for_its_priority_fields_is_connection_frame_size_error() {
    let mut peer = server();
    peer.send_raw(
        kind::HEADERS,
        flag::END_HEADERS | flag::PRIORITY,
        1,
        &[0, 0, 0],
    );
    peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 0);
}

/// §4.2: a PADDED frame without room for its Pad Length field is too small.
#[test]
fn s4_2_padded_data_without_pad_length_is_frame_size_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::DATA, flag::PADDED, 1, &[]);
    peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 1);
}

/// §4.2: frames larger than the peer's SETTINGS_MAX_FRAME_SIZE "MUST NOT be sent":
/// bodies are split into DATA frames and large field blocks into CONTINUATION frames.
#[test]
fn s4_2_endpoint_never_sends_frames_above_the_peers_max_frame_size() {
    for max in [16_384usize, 32_768] {
        let settings = Settings {
            max_frame_size: Some(max as u32),
            ..Settings::default()
        };
        let mut peer = Peer::server_with(Config::default(), settings);
        open(&mut peer, 1);
        let res = http::Response::builder()
            .status(200)
            .header("x-large", "x".repeat(45_000))
            .body(())
            .unwrap();
        peer.conn.send_response(sid(1), &res, false).unwrap();
        peer.conn
            .send_data(sid(1), Bytes::from(vec![7u8; 40_000]), true)
            .unwrap();
        let frames = peer.frames();
        let mut continuations = 0;
        let mut data = Vec::new();
        for f in &frames {
            match f {
                Frame::Headers(h) => assert!(h.fragment.len() <= max),
                Frame::Continuation(c) => {
                    continuations += 1;
                    assert!(c.fragment.len() <= max);
                }
                Frame::Data(d) => data.push(d.data.len()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(continuations >= 1, "a 39 kB field block needs CONTINUATION");
        let expected: Vec<usize> = if max == 16_384 {
            vec![16_384, 16_384, 7_232]
        } else {
            vec![32_768, 7_232]
        };
        assert_eq!(data, expected);
        let (_, fields, _) = &peer.blocks[0];
        assert_eq!(fields[1].1.len(), 45_000);
    }
}

// ---- §4.3 Field Section Compression and Decompression ----

/// §4.3: "A decoding error in a field block MUST be treated as a connection error of
/// type COMPRESSION_ERROR" — here an index of 0.
#[test]
fn s4_3_invalid_hpack_index_is_compression_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        &[0x80],
    );
    peer.expect_conn_error(ErrorCode::COMPRESSION_ERROR, 1);
}

/// §4.3: a truncated field block (a literal shorter than its declared length) is a
/// decoding error.
#[test]
fn s4_3_truncated_field_block_is_compression_error() {
    let mut peer = server();
    peer.send_raw(kind::HEADERS, flag::END_HEADERS, 1, &[0x40, 0x05, b'a']);
    peer.expect_conn_error(ErrorCode::COMPRESSION_ERROR, 0);
}

/// §4.3 and §4.3.1: a dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE
/// is a decoding error.
#[test]
fn s4_3_table_size_update_above_our_setting_is_compression_error() {
    let mut peer = server();
    // Size update to 8,192 (> 4,096), then :method GET.
    peer.send_raw(
        kind::HEADERS,
        flag::END_HEADERS,
        1,
        &[0x3f, 0xe1, 0x3f, 0x82],
    );
    peer.expect_conn_error(ErrorCode::COMPRESSION_ERROR, 0);
}

/// §4.3: field blocks are decoded in the order they arrive, so an encoder must put
/// them on the wire in the order it encoded them. Here one transmit round both
/// finishes stream 1 (its last DATA frees a concurrency slot, which opens the queued
/// stream 5 at once) and writes the trailers of stream 3: the HEADERS of 5 are encoded
/// first, so they must also be written first. Two slots are needed: with one, nothing
/// else can send in the round in which a stream's end opens the next.
#[test]
fn s4_3_field_blocks_reach_the_wire_in_encoding_order_when_a_freed_slot_opens_a_stream() {
    let mut peer = Peer::client_with(
        Config::default(),
        Settings {
            max_concurrent_streams: Some(2),
            ..Settings::default()
        },
    );
    let one = peer.client_open(&request("POST", "/one"), false);
    let three = peer.client_open(&request("POST", "/three"), false);
    let five = peer
        .conn
        .send_request(&request("GET", "/five"), true)
        .unwrap();
    peer.expect_frames(&[]);
    peer.take_blocks();
    for id in [one, three] {
        peer.send_headers(id.get(), &[(":status", "200")], true);
    }
    peer.take_stream_events();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-trailer", "three".parse().unwrap());
    peer.conn
        .send_data(one, Bytes::from_static(b"1"), true)
        .unwrap();
    peer.conn.send_trailers(three, &trailers).unwrap();
    assert_eq!(peer.conn.fate(five), Some(Fate::NotSent));
    peer.frames();
    let blocks = peer.take_blocks();
    let expect = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let mut head = GET.to_vec();
    head[3] = (":path", "/five");
    assert_eq!(
        blocks,
        [
            (five, expect(&head), true),
            (three, expect(&[("x-trailer", "three")]), true),
        ]
    );
    assert_eq!(peer.conn.fate(five), Some(Fate::MaybeProcessed));
}

/// §4.3, with one slot: the trailers that end stream 1 free the slot, which opens
/// the queued stream 3 in the same transmit round; the peer decodes both blocks (the
/// trailers without pseudo-headers, stream 3 with its own `:path`).
#[test]
fn s4_3_trailers_that_free_the_only_slot_and_the_stream_they_open_decode_in_order() {
    let mut peer = Peer::client_with(
        Config::default(),
        Settings {
            max_concurrent_streams: Some(1),
            ..Settings::default()
        },
    );
    let one = peer.client_open(&request("POST", "/one"), false);
    let three = peer
        .conn
        .send_request(&request("GET", "/three"), true)
        .unwrap();
    peer.expect_frames(&[]);
    peer.take_blocks();
    peer.send_headers(one.get(), &[(":status", "200")], true);
    peer.take_stream_events();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    peer.conn.send_trailers(one, &trailers).unwrap();
    peer.frames();
    let blocks = peer.take_blocks();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!(blocks[0].0, one);
    assert_eq!(blocks[0].1, [("grpc-status".to_string(), "0".to_string())]);
    assert_eq!(blocks[1].0, three);
    assert!(blocks[1]
        .1
        .contains(&(":path".to_string(), "/three".to_string())));
    assert_eq!(peer.conn.fate(three), Some(Fate::MaybeProcessed));
}

fn small_table() -> Config {
    {
        let mut c = Config::default();
        c.header_table_size = 256;
        c
    }
}

/// §4.3.1: "An endpoint MUST treat a field block that follows an acknowledgment of the
/// reduction to the maximum dynamic table size as a connection error of type
/// COMPRESSION_ERROR if it does not start with a conformant Dynamic Table Size Update".
#[test]
fn s4_3_1_block_without_size_update_after_acknowledged_reduction_is_compression_error() {
    // The peer acknowledged SETTINGS_HEADER_TABLE_SIZE=256 but its encoder still uses
    // the initial 4,096 bytes.
    let mut peer = server_with(small_table());
    peer.send_request(1, true);
    peer.expect_conn_error(ErrorCode::COMPRESSION_ERROR, 0);
}

/// §4.3.1: the same block preceded by a size update within the new limit decodes.
#[test]
fn s4_3_1_block_with_conformant_size_update_is_accepted() {
    let mut peer = server_with(small_table());
    peer.encoder.set_max_table_size(256);
    peer.server_roundtrip(1);
    peer.server_roundtrip(3);
}

/// §4.3.1: a reduced SETTINGS_HEADER_TABLE_SIZE "takes effect when the endpoint
/// acknowledges settings": until then the peer's encoder may use all 4,096 bytes, and
/// the decoder must keep what it indexes.
#[test]
fn s4_3_1_table_size_reduction_takes_effect_only_once_acknowledged() {
    let mut peer = Peer::server_unacked(small_table());
    let a = "a".repeat(100);
    let b = "b".repeat(100);
    let mut fields = GET.to_vec();
    fields.push(("x-a", &a));
    fields.push(("x-b", &b));
    // 54 + 132 + 132 bytes indexed: more than 256, less than 4,096.
    peer.send_headers(1, &fields, true);
    // References every entry of the 4,096-byte table, the oldest included.
    peer.send_headers(3, &fields, true);
    let events = peer.take_stream_events();
    assert_eq!(events.len(), 2, "{events:?}");
    for (e, id) in events.iter().zip([1, 3]) {
        match e {
            Event::Request { id: i, request, .. } => {
                assert_eq!(*i, sid(id));
                assert_eq!(request.headers()["x-a"], a.as_str());
                assert_eq!(request.headers()["x-b"], b.as_str());
                assert_eq!(request.uri().authority().unwrap().as_str(), "example.test");
            }
            other => panic!("{other:?}"),
        }
    }
    // Now the peer acknowledges, and its encoder shrinks the table first.
    peer.send(Frame::Settings(SettingsFrame::Ack));
    peer.encoder.set_max_table_size(256);
    peer.take_stream_events();
    peer.send_headers(5, &fields, true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { request, .. }] if request.headers()["x-b"] == b.as_str())
    );
}

// ---- §6.1 DATA ----

/// §6.1: "If a DATA frame is received whose Stream Identifier field is 0x00, the
/// recipient MUST respond with a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_1_data_on_stream_zero_is_connection_protocol_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::DATA, 0, 0, b"hi");
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
}

/// §6.1: "If the length of the padding is the length of the frame payload or greater,
/// the recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_1_padding_not_shorter_than_payload_is_protocol_error() {
    let mut peer = server();
    open(&mut peer, 1);
    // Pad Length 3 of a 5-byte payload: 1 byte of data.
    peer.send_raw(kind::DATA, flag::PADDED, 1, &[3, b'h', 0, 0, 0]);
    let events = peer.take_stream_events();
    assert!(matches!(events.as_slice(), [Event::Data { data, .. }] if data == "h"));
    // Pad Length 4 of 5: no data, still valid.
    peer.send_raw(kind::DATA, flag::PADDED, 1, &[4, 0, 0, 0, 0]);
    peer.expect_silence();
    // Pad Length 5 of 5.
    peer.send_raw(kind::DATA, flag::PADDED, 1, &[5, 0, 0, 0, 0]);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
}

/// §6.1 with §10.5: DATA frames without payload or END_STREAM cost the peer nothing;
/// past `FloodLimits::max_empty_frames` per window the connection ends with
/// ENHANCE_YOUR_CALM.
#[test]
fn s6_1_empty_data_frame_flood_is_enhance_your_calm() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.flood = FloodLimits {
            max_empty_frames: 3,
            ..FloodLimits::default()
        };
        c
    });
    open(&mut peer, 1);
    for _ in 0..3 {
        peer.send_data(1, b"", false);
    }
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    peer.send_data(1, b"", false);
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 1);
}

// ---- §6.2 HEADERS ----

/// §6.2: "If a HEADERS frame is received whose Stream Identifier field is 0x00, the
/// recipient MUST respond with a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_2_headers_on_stream_zero_is_connection_protocol_error() {
    let mut peer = server();
    let block = peer.block(&GET);
    peer.send_raw(kind::HEADERS, flag::END_HEADERS, 0, &block);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.2: padding "the length of the frame payload or greater" is a connection
/// PROTOCOL_ERROR. Padding that leaves an empty fragment is valid framing (that empty
/// request is then malformed, §8.1.1).
#[test]
fn s6_2_headers_padding_not_shorter_than_payload_is_protocol_error() {
    let mut peer = server();
    peer.send_raw(
        kind::HEADERS,
        flag::END_HEADERS | flag::PADDED,
        1,
        &[3, 0, 0, 0],
    );
    peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    peer.send_raw(
        kind::HEADERS,
        flag::END_HEADERS | flag::PADDED,
        3,
        &[4, 0, 0, 0],
    );
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.2: END_STREAM on a HEADERS frame that CONTINUATION frames complete still ends
/// the stream.
#[test]
fn s6_2_end_stream_on_headers_followed_by_continuation_ends_the_stream() {
    let mut peer = server();
    let block = peer.block(&GET);
    let (a, b) = block.split_at(3);
    peer.send_raw(kind::HEADERS, flag::END_STREAM, 1, a);
    peer.expect_silence();
    peer.send_raw(kind::CONTINUATION, flag::END_HEADERS, 1, b);
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::Request {
                end_stream: true,
                ..
            }]
        ),
        "{events:?}"
    );
}

fn self_dependent_headers(peer: &mut Peer, id: u32, fields: &[(&str, &str)], end_stream: bool) {
    let mut payload = id.to_be_bytes().to_vec();
    payload.push(15);
    payload.extend_from_slice(&peer.block(fields));
    let flags = flag::END_HEADERS | flag::PRIORITY | if end_stream { flag::END_STREAM } else { 0 };
    peer.send_raw(kind::HEADERS, flags, id, &payload);
}

/// HEADERS whose priority fields make the stream depend on itself: RFC 7540 §5.3.1
/// made this a stream error of type PROTOCOL_ERROR, and this engine keeps that (RFC
/// 9113 no longer defines the rule). Whatever happens to the stream, §4.3 requires the
/// field block to be decoded: a later block that references what it indexed decodes.
#[test]
fn s6_2_self_dependent_headers_is_stream_error_and_its_block_is_still_decoded() {
    let mut peer = server();
    let mut fields = GET.to_vec();
    fields.push(("x-custom", "indexed-on-a-refused-stream"));
    // A new stream that depends on itself.
    self_dependent_headers(&mut peer, 1, &fields, true);
    let events = peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    assert!(
        events.is_empty(),
        "the application never sees it: {events:?}"
    );
    // The same fields again: the peer's encoder now uses its dynamic table.
    peer.send_headers(3, &fields, false);
    let events = peer.take_stream_events();
    match events.as_slice() {
        [Event::Request { id, request, .. }] if *id == sid(3) => {
            assert_eq!(request.headers()["x-custom"], "indexed-on-a-refused-stream");
        }
        other => panic!("{other:?}"),
    }
    // An open stream whose trailers depend on itself.
    self_dependent_headers(&mut peer, 3, &[("x-trailer", "1")], true);
    let events = peer.expect_stream_error(3, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(library_reset(&events, 3, ErrorCode::PROTOCOL_ERROR), None);
    peer.send_headers(5, &[("x-trailer", "1")], true);
    // Malformed (no pseudo-headers), but decoded: the trailer field was indexed.
    peer.expect_stream_error(5, ErrorCode::PROTOCOL_ERROR);
    peer.server_roundtrip(7);
}

// ---- §6.3 PRIORITY ----

/// §6.3: "If a PRIORITY frame is received with a stream identifier of 0x00, the
/// recipient MUST respond with a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_3_priority_on_stream_zero_is_connection_protocol_error() {
    let mut peer = server();
    peer.send_raw(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 15]);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.3: "A PRIORITY frame with a length other than 5 octets MUST be treated as a
/// stream error of type FRAME_SIZE_ERROR."
#[test]
fn s6_3_priority_with_wrong_length_is_stream_frame_size_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 3]);
    let events = peer.expect_stream_error(1, ErrorCode::FRAME_SIZE_ERROR);
    assert_eq!(library_reset(&events, 1, ErrorCode::FRAME_SIZE_ERROR), None);
    peer.server_roundtrip(3);
}

/// §6.3 wrong length on an idle stream. The RFC asks for a stream error, which is
/// signalled with RST_STREAM (§5.4.2), while §6.4 forbids RST_STREAM on an idle stream.
/// This engine answers RST_STREAM(FRAME_SIZE_ERROR) on the idle id, as h2spec expects
/// (its PRIORITY tests use idle streams and accept RST_STREAM) and as Go's and Rust h2's
/// servers do: dropping the frame would leave the error unsignalled, and nghttpd
/// 1.52's answer, GOAWAY(FRAME_SIZE_ERROR) (a stream error may be treated as a
/// connection error, §5.4), would end every other stream for one broken frame. The id
/// is then closed: remembered as reset, not used, so lower and higher ids still open;
/// HEADERS on it later are decoded (HPACK) and ignored like any frame on a stream we
/// reset.
#[test]
fn s6_3_priority_with_wrong_length_on_idle_stream_is_rst_stream_frame_size_error() {
    let mut peer = server();
    peer.send_raw(kind::PRIORITY, 0, 5, &[0, 0, 0, 3, 1, 2]);
    let events = peer.expect_stream_error(5, ErrorCode::FRAME_SIZE_ERROR);
    assert!(events.is_empty(), "{events:?}");
    peer.server_roundtrip(3);
    peer.send_headers(5, &[("x-late", "indexed")], true);
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    let mut fields = GET.to_vec();
    fields.push(("x-late", "indexed"));
    peer.send_headers(9, &fields, true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id, request, .. }] if *id == sid(9) && request.headers()["x-late"] == "indexed"),
        "the block on 5 was decoded: {events:?}"
    );
    peer.frames();
    // Those HEADERS used id 5 (§5.1.1): a lower new id is now out of order.
    peer.send_request(7, true);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 9);
}

/// §5.3.1 (RFC 7540; RFC 9113 §5.3.1 keeps only "A stream cannot depend on itself"):
/// a PRIORITY frame making a stream depend on itself is a stream error of type
/// PROTOCOL_ERROR, on an open stream and on an idle one alike, answered with
/// RST_STREAM for the reasons given for the wrong-length PRIORITY above; nghttpd 1.52
/// closes the connection instead. The idle id is not used by it.
#[test]
fn s5_3_1_self_dependent_priority_is_stream_protocol_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 1, 15]);
    let events = peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(library_reset(&events, 1, ErrorCode::PROTOCOL_ERROR), None);
    peer.send_raw(kind::PRIORITY, 0, 9, &[0, 0, 0, 9, 15]);
    let events = peer.expect_stream_error(9, ErrorCode::PROTOCOL_ERROR);
    assert!(events.is_empty(), "{events:?}");
    peer.server_roundtrip(3);
    peer.server_roundtrip(7);
    peer.server_roundtrip(11);
}

/// §6.3: PRIORITY "can be sent on a stream in any state, including idle or closed",
/// and "does not affect the state of any stream": a PRIORITY on stream 7 does not
/// open it, so stream 3 can still be opened after it.
#[test]
fn s6_3_priority_on_idle_and_closed_streams_is_accepted_and_opens_nothing() {
    let mut peer = server();
    peer.server_roundtrip(1);
    peer.send_raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 15]);
    peer.send_raw(kind::PRIORITY, 0, 7, &[0x80, 0, 0, 1, 200]);
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    peer.server_roundtrip(3);
    peer.server_roundtrip(7);
}

// ---- §6.4 RST_STREAM ----

/// §6.4: "If a RST_STREAM frame is received with a stream identifier of 0x00, the
/// recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_4_rst_stream_on_stream_zero_is_connection_protocol_error() {
    let mut peer = server();
    peer.send_raw(kind::RST_STREAM, 0, 0, &8u32.to_be_bytes());
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.4: "If a RST_STREAM frame identifying an idle stream is received, the recipient
/// MUST treat this as a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_4_rst_stream_on_idle_stream_is_connection_protocol_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::RST_STREAM, 0, 3, &8u32.to_be_bytes());
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
}

/// §6.4: "A RST_STREAM frame with a length other than 4 octets MUST be treated as a
/// connection error of type FRAME_SIZE_ERROR."
#[test]
fn s6_4_rst_stream_with_wrong_length_is_connection_frame_size_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8, 0]);
    peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 1);
}

/// §6.4: "After receiving a RST_STREAM on a stream, the receiver MUST NOT send
/// additional frames for that stream": data the application had queued is dropped.
#[test]
fn s6_4_nothing_more_is_sent_on_a_stream_the_peer_reset() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.conn
        .send_response(sid(1), &support::response(200), false)
        .unwrap();
    peer.frames();
    peer.conn
        .send_data(sid(1), Bytes::from_static(b"queued"), false)
        .unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-t", "1".parse().unwrap());
    peer.conn.send_trailers(sid(1), &trailers).unwrap();
    peer.send_raw(kind::RST_STREAM, 0, 1, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_silence();
    let events = peer.take_stream_events();
    match events.as_slice() {
        [Event::StreamError {
            id,
            error:
                Error::Reset {
                    code,
                    initiator: Initiator::Remote,
                    reason: None,
                    ..
                },
            fate: None,
        }] => {
            assert_eq!(*id, sid(1));
            assert_eq!(*code, ErrorCode::CANCEL);
        }
        other => panic!("{other:?}"),
    }
    assert!(peer
        .conn
        .send_data(sid(1), Bytes::from_static(b"more"), true)
        .is_err());
    peer.expect_silence();
}

/// §6.4 with §10.5 (CVE-2023-44487): streams opened and reset at once cost the peer
/// nothing; past `FloodLimits::max_resets` per window the connection ends with
/// ENHANCE_YOUR_CALM.
#[test]
fn s6_4_rapid_reset_flood_is_enhance_your_calm() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.flood = FloodLimits {
            max_resets: 3,
            ..FloodLimits::default()
        };
        c
    });
    for id in [1, 3, 5] {
        open(&mut peer, id);
        peer.send_raw(kind::RST_STREAM, 0, id, &ErrorCode::CANCEL.0.to_be_bytes());
        peer.expect_silence();
        peer.take_stream_events();
    }
    open(&mut peer, 7);
    peer.send_raw(kind::RST_STREAM, 0, 7, &ErrorCode::CANCEL.0.to_be_bytes());
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 7);
}

/// §10.5: the reset budget is per window of `FloodLimits::window`; it starts afresh.
#[test]
fn s6_4_reset_budget_is_renewed_every_window() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.flood = FloodLimits {
            window: Duration::from_secs(1),
            max_resets: 2,
            ..FloodLimits::default()
        };
        c
    });
    let mut id = 1;
    for _ in 0..3 {
        for _ in 0..2 {
            open(&mut peer, id);
            peer.send_raw(kind::RST_STREAM, 0, id, &ErrorCode::CANCEL.0.to_be_bytes());
            peer.take_stream_events();
            id += 2;
        }
        peer.expect_silence();
        peer.advance(Duration::from_secs(1));
    }
    assert!(!peer.conn.is_closed());
    peer.server_roundtrip(id);
}

// ---- §6.5 SETTINGS ----

/// §6.5: "If an endpoint receives a SETTINGS frame whose Stream Identifier field is
/// anything other than 0x00, the endpoint MUST respond with a connection error of type
/// PROTOCOL_ERROR."
#[test]
fn s6_5_settings_on_non_zero_stream_is_connection_protocol_error() {
    let mut peer = server();
    peer.send_raw(kind::SETTINGS, 0, 1, &[]);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.5: "A SETTINGS frame with a length other than a multiple of 6 octets MUST be
/// treated as a connection error of type FRAME_SIZE_ERROR."
#[test]
fn s6_5_settings_length_not_multiple_of_6_is_frame_size_error() {
    let mut peer = server();
    peer.send_raw(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100, 0]);
    peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 0);
}

/// §6.5: "Receipt of a SETTINGS frame with the ACK flag set and a length field value
/// other than 0 MUST be treated as a connection error of type FRAME_SIZE_ERROR."
#[test]
fn s6_5_settings_ack_with_payload_is_frame_size_error() {
    let mut peer = server();
    peer.send_raw(
        kind::SETTINGS,
        flag::ACK,
        0,
        &settings_payload(&[(0x3, 100)]),
    );
    peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 0);
}

/// §6.5.2 SETTINGS_ENABLE_PUSH: "Any value other than 0 or 1 MUST be treated as a
/// connection error of type PROTOCOL_ERROR."
#[test]
fn s6_5_2_enable_push_other_than_0_or_1_is_protocol_error() {
    let mut peer = server();
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x2, 2)]));
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.5.2: "A client MUST treat receipt of a SETTINGS frame with SETTINGS_ENABLE_PUSH
/// set to 1 as a connection error of type PROTOCOL_ERROR." (0 is fine.)
#[test]
fn s6_5_2_client_receiving_enable_push_1_is_protocol_error() {
    let mut peer = client();
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x2, 0)]));
    peer.expect_frames(&[settings_ack()]);
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x2, 1)]));
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.5.2 SETTINGS_INITIAL_WINDOW_SIZE: "Values above the maximum flow-control window
/// size of 2^31-1 MUST be treated as a connection error of type FLOW_CONTROL_ERROR."
#[test]
fn s6_5_2_initial_window_size_above_2_31_minus_1_is_flow_control_error() {
    let mut peer = server();
    peer.send_raw(
        kind::SETTINGS,
        0,
        0,
        &settings_payload(&[(0x4, (1 << 31) - 1)]),
    );
    peer.expect_frames(&[settings_ack()]);
    peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x4, 1 << 31)]));
    peer.expect_conn_error(ErrorCode::FLOW_CONTROL_ERROR, 0);
}

/// §6.5.2 SETTINGS_MAX_FRAME_SIZE: values outside 2^14..=2^24-1 "MUST be treated as a
/// connection error of type PROTOCOL_ERROR".
#[test]
fn s6_5_2_max_frame_size_out_of_range_is_protocol_error() {
    for bad in [0, 16_383, 1 << 24, u32::MAX] {
        let mut peer = server();
        for good in [16_384, (1 << 24) - 1] {
            peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x5, good)]));
            peer.expect_frames(&[settings_ack()]);
        }
        peer.send_raw(kind::SETTINGS, 0, 0, &settings_payload(&[(0x5, bad)]));
        peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
    }
}

/// §6.5.2: "An endpoint that receives a SETTINGS frame with any unknown or unsupported
/// identifier MUST ignore that setting" (and §5.5); the known ones still apply.
#[test]
fn s6_5_2_unknown_settings_are_ignored() {
    let mut peer = client();
    let payload = settings_payload(&[(0xff, 7), (0x3, 1), (0x4242, u32::MAX), (0x0, 1)]);
    peer.send_raw(kind::SETTINGS, 0, 0, &payload);
    peer.expect_frames(&[settings_ack()]);
    let events = peer.take_stream_events();
    let expected = Settings {
        max_concurrent_streams: Some(1),
        ..Settings::default()
    };
    assert!(
        matches!(events.as_slice(), [Event::PeerSettings(s)] if *s == expected),
        "{events:?}"
    );
    assert_eq!(peer.conn.peer_max_concurrent_streams(), 1);
    peer.client_roundtrip();
}

/// §6.5.3: "Once all values have been processed, the recipient MUST immediately emit a
/// SETTINGS frame with the ACK flag set", and the values apply at once.
#[test]
fn s6_5_3_settings_are_applied_and_acknowledged_immediately() {
    let mut peer = client();
    peer.send_raw(
        kind::SETTINGS,
        0,
        0,
        &settings_payload(&[(0x3, 7), (0x3, 5)]),
    );
    peer.expect_frames(&[settings_ack()]);
    // The last value of a repeated setting wins.
    assert_eq!(peer.conn.peer_max_concurrent_streams(), 5);
}

/// §6.5.3: "If the sender of a SETTINGS frame does not receive an acknowledgment within
/// a reasonable amount of time, it MAY issue a connection error of type
/// SETTINGS_TIMEOUT." This engine does, after `Config::settings_timeout`.
#[test]
fn s6_5_3_unacknowledged_settings_time_out_with_settings_timeout() {
    let mut peer = Peer::server_unacked(Config::default());
    assert_eq!(
        peer.conn.poll_timeout(),
        Some(peer.now + Duration::from_secs(10))
    );
    peer.advance(Duration::from_millis(9_999));
    peer.expect_silence();
    assert!(!peer.conn.is_closed());
    peer.advance(Duration::from_millis(1));
    peer.expect_conn_error(ErrorCode::SETTINGS_TIMEOUT, 0);
}

/// §6.5 with §10.5 (CVE-2019-9515): past `FloodLimits::max_settings` SETTINGS frames
/// per window the connection ends with ENHANCE_YOUR_CALM; the budget renews each window.
#[test]
fn s6_5_settings_flood_is_enhance_your_calm() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.flood = FloodLimits {
            window: Duration::from_secs(1),
            max_settings: 3,
            ..FloodLimits::default()
        };
        c
    });
    for _ in 0..2 {
        // A fresh window (the handshake's SETTINGS and ACK counted in the first one).
        peer.advance(Duration::from_secs(1));
        for _ in 0..3 {
            peer.send_raw(kind::SETTINGS, 0, 0, &[]);
        }
        peer.expect_frames(&[settings_ack(), settings_ack(), settings_ack()]);
    }
    peer.send_raw(kind::SETTINGS, 0, 0, &[]);
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 0);
}

/// §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE with §10.5.1: a request whose field section is
/// larger than the limit is answered 431 (the request is not processed, and the
/// client is asked to stop sending with RST_STREAM(NO_ERROR), §8.1), and the whole
/// block is still decoded so that HPACK state stays in step: fields indexed after the
/// limit was crossed are referenced by the next request.
#[test]
fn s6_5_2_header_list_above_max_header_list_size_gets_431_and_hpack_stays_in_sync() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.max_header_list_size = 250;
        c
    });
    let big = "b".repeat(300);
    let mut fields = GET.to_vec();
    fields.push(("x-big", &big));
    fields.push(("x-small", "v1"));
    peer.send_headers(1, &fields, false);
    let frames = peer.frames();
    assert!(
        matches!(frames.as_slice(), [Frame::Headers(Headers { stream_id, end_stream: true, .. }), Frame::RstStream(r)]
            if *stream_id == sid(1) && *r == steadfast_proto::frame::RstStream::new(sid(1), ErrorCode::NO_ERROR)),
        "{frames:?}"
    );
    let (_, status, _) = peer.blocks.pop().unwrap();
    assert_eq!(status, [(":status".to_string(), "431".to_string())]);
    assert!(
        peer.take_stream_events().is_empty(),
        "the application never sees it"
    );
    // The rest of that request is ignored.
    peer.send_data(1, b"body", true);
    peer.expect_silence();
    let mut fields = GET.to_vec();
    fields.push(("x-small", "v1"));
    peer.send_headers(3, &fields, true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id, request, .. }] if *id == sid(3) && request.headers()["x-small"] == "v1"),
        "{events:?}"
    );
    assert_eq!(
        peer.decoder.dynamic_entries().count(),
        1,
        "the 431 was indexed"
    );
}

/// A limit as large as h2's and grpc-go's default (16 MiB), with field blocks allowed
/// to be as large as 30,000 tiny fields need.
fn huge_header_lists() -> Config {
    {
        let mut c = Config::default();
        c.max_header_list_size = 16 << 20;
        c.max_header_block_size = 1 << 20;
        c
    }
}

/// 30,000 distinct tiny fields: fewer bytes than a 16 MiB header list, more fields than
/// an `http::HeaderMap` can hold (about 24,576).
fn many_fields(first: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = first
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    fields.extend((0..30_000).map(|i| (format!("x{i}"), String::new())));
    fields
}

/// Sends a field block as HEADERS and as many CONTINUATION frames as 16,384-byte
/// frames need.
fn send_large_block(peer: &mut Peer, id: u32, fields: &[(String, String)], end_stream: bool) {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let block = peer.block(&fields);
    let mut chunks = block.chunks(16_384).peekable();
    let end = if end_stream { flag::END_STREAM } else { 0 };
    let first = chunks.next().unwrap();
    let flags = end
        | if chunks.peek().is_none() {
            flag::END_HEADERS
        } else {
            0
        };
    peer.send_raw(kind::HEADERS, flags, id, first);
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() {
            flag::END_HEADERS
        } else {
            0
        };
        peer.send_raw(kind::CONTINUATION, flags, id, chunk);
    }
}

/// §6.5.2 with §10.5.1: a request with more fields than the engine can represent
/// (30,000, under a 16 MiB SETTINGS_MAX_HEADER_LIST_SIZE) is treated like one above
/// the limit, answered 431, never a panic; the connection goes on.
#[test]
fn s6_5_2_request_with_more_fields_than_a_header_map_holds_gets_431() {
    let mut peer = server_with(huge_header_lists());
    send_large_block(&mut peer, 1, &many_fields(&GET), true);
    let frames = peer.frames();
    assert!(
        matches!(frames.as_slice(), [Frame::Headers(Headers { stream_id, end_stream: true, .. })] if *stream_id == sid(1)),
        "{frames:?}"
    );
    let (_, status, _) = peer.blocks.pop().unwrap();
    assert_eq!(status, [(":status".to_string(), "431".to_string())]);
    assert!(peer.take_stream_events().is_empty());
    peer.server_roundtrip(3);
}

/// §6.5.2: a response with 30,000 fields (under a 16 MiB limit) is a stream error, as
/// a response above the limit is, never a panic.
#[test]
fn s6_5_2_response_with_more_fields_than_a_header_map_holds_is_a_stream_error() {
    let mut peer = Peer::client_with(huge_header_lists(), Settings::default());
    let id = peer.client_open(&request("GET", "/"), true);
    send_large_block(
        &mut peer,
        id.get(),
        &many_fields(&[(":status", "200")]),
        true,
    );
    let events = peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
    library_reset(&events, id.get(), ErrorCode::PROTOCOL_ERROR);
    peer.client_roundtrip();
}

/// §6.5.2: trailers with 30,000 fields (under a 16 MiB limit) are a stream error, never
/// a panic.
#[test]
fn s6_5_2_trailers_with_more_fields_than_a_header_map_holds_are_a_stream_error() {
    let mut peer = Peer::client_with(huge_header_lists(), Settings::default());
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(id.get(), &[(":status", "200")], false);
    peer.take_stream_events();
    send_large_block(&mut peer, id.get(), &many_fields(&[]), true);
    let events = peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
    library_reset(&events, id.get(), ErrorCode::PROTOCOL_ERROR);
    peer.client_roundtrip();
}

// ---- §6.6 PUSH_PROMISE ----

/// §6.5.2/§6.6: "A client that has both set this parameter to 0 and had it acknowledged
/// MUST treat the receipt of a PUSH_PROMISE frame as a connection error of type
/// PROTOCOL_ERROR." This client always advertises 0, and any PUSH_PROMISE follows the
/// server's processing of that SETTINGS (it answers a request), so it is rejected
/// even before the acknowledgement arrives. The rules a PUSH_PROMISE could also break
/// (§6.6: associated stream neither open nor half-closed (local), promised id not
/// idle; a field block continued by CONTINUATION) end the same way.
#[test]
fn s6_6_push_promise_to_client_that_disabled_push_is_protocol_error() {
    // (associated stream, promised stream, END_HEADERS)
    for (stream, promised, end_headers) in [
        (1, 2, true),
        (1, 2, false),
        (3, 2, true),
        (1, 1, true),
        (1, 0, true),
    ] {
        let mut peer = client();
        let id = peer.client_open(&request("GET", "/"), true);
        let mut payload = u32::to_be_bytes(promised).to_vec();
        payload.extend_from_slice(&peer.block(&GET));
        let flags = if end_headers { flag::END_HEADERS } else { 0 };
        peer.send_raw(kind::PUSH_PROMISE, flags, stream, &payload);
        let (_, events) = peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::StreamError { id: i, fate: Some(Fate::MaybeProcessed), .. } if *i == id)),
            "{events:?}"
        );
    }
}

/// §6.6: PUSH_PROMISE on stream 0 is a connection PROTOCOL_ERROR.
#[test]
fn s6_6_push_promise_on_stream_zero_is_protocol_error() {
    let mut peer = client();
    peer.send_raw(
        kind::PUSH_PROMISE,
        flag::END_HEADERS,
        0,
        &[0, 0, 0, 2, 0x82],
    );
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

// ---- §6.7 PING ----

/// §6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a PING
/// frame with the ACK flag set in response, with an identical frame payload."
#[test]
fn s6_7_ping_is_acknowledged_with_identical_payload() {
    let mut peer = server();
    peer.send_raw(kind::PING, 0, 0, b"\x00\x01\x02\x03\xfc\xfd\xfe\xff");
    peer.expect_frames(&[ping_ack(*b"\x00\x01\x02\x03\xfc\xfd\xfe\xff")]);
}

/// §6.7: "An endpoint MUST NOT respond to PING frames containing this [ACK] flag."
#[test]
fn s6_7_ping_ack_is_never_answered() {
    let mut peer = server();
    peer.send_raw(kind::PING, flag::ACK, 0, b"unasked!");
    peer.expect_silence();
    assert!(
        peer.take_stream_events().is_empty(),
        "an unsolicited ACK is not reported"
    );
    peer.conn.ping(*b"asked!!!").unwrap();
    peer.expect_frames(&[Frame::Ping(Ping {
        payload: *b"asked!!!",
        ack: false,
    })]);
    peer.send_raw(kind::PING, flag::ACK, 0, b"asked!!!");
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(matches!(events.as_slice(), [Event::PingAck(p)] if p == b"asked!!!"));
}

/// §6.7: "If a PING frame is received with a Stream Identifier field value other than
/// 0x00, the recipient MUST respond with a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_7_ping_on_non_zero_stream_is_protocol_error() {
    let mut peer = server();
    peer.send_raw(kind::PING, 0, 1, b"12345678");
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.7: "Receipt of a PING frame with a length field value other than 8 MUST be
/// treated as a connection error of type FRAME_SIZE_ERROR."
#[test]
fn s6_7_ping_with_wrong_length_is_frame_size_error() {
    for payload in [&b"1234567"[..], b"123456789", b""] {
        let mut peer = server();
        peer.send_raw(kind::PING, 0, 0, payload);
        peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 0);
    }
}

/// §6.7 with §10.5 (CVE-2019-9512): past `FloodLimits::max_pings` PINGs per window the
/// connection ends with ENHANCE_YOUR_CALM; the PINGs before it were answered.
#[test]
fn s6_7_ping_flood_is_enhance_your_calm() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.flood = FloodLimits {
            max_pings: 3,
            ..FloodLimits::default()
        };
        c
    });
    for i in 0..3u8 {
        peer.send_raw(kind::PING, 0, 0, &[i; 8]);
    }
    peer.expect_frames(&[ping_ack([0; 8]), ping_ack([1; 8]), ping_ack([2; 8])]);
    peer.send_raw(kind::PING, 0, 0, &[3; 8]);
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 0);
}

/// §10.5: a peer that sends PINGs but never reads the acknowledgements makes them pile
/// up; past `Config::max_pending_control_bytes` the connection ends with
/// ENHANCE_YOUR_CALM.
#[test]
fn s6_7_unread_ping_acks_are_enhance_your_calm() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.max_pending_control_bytes = 100;
        c
    });
    // 17 bytes per acknowledgement: the sixth one passes 100.
    for i in 1..=5u8 {
        peer.send_raw(kind::PING, 0, 0, &[i; 8]);
    }
    assert!(!peer.conn.is_closed());
    peer.send_raw(kind::PING, 0, 0, &[6; 8]);
    assert!(peer.conn.is_closed());
    let frames = peer.frames();
    let acks: Vec<Frame> = (1..=6u8).map(|i| ping_ack([i; 8])).collect();
    assert_eq!(&frames[..6], &acks[..]);
    match &frames[6..] {
        [Frame::GoAway(g)] => {
            assert_eq!(g.0.code, ErrorCode::ENHANCE_YOUR_CALM);
            assert_eq!(g.0.last_stream_id, sid(0));
        }
        other => panic!("{other:?}"),
    }
}

// ---- §6.8 GOAWAY (frame rules; semantics are in rfc9113_streams.rs) ----

/// §6.8: "An endpoint MUST treat a GOAWAY frame with a stream identifier other than
/// 0x00 as a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_8_goaway_on_non_zero_stream_is_protocol_error() {
    let mut peer = client();
    peer.send_raw(kind::GOAWAY, 0, 1, &[0; 8]);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §4.2/§6.8: a GOAWAY shorter than its mandatory 8 bytes is a FRAME_SIZE_ERROR.
#[test]
fn s6_8_goaway_shorter_than_8_bytes_is_frame_size_error() {
    let mut peer = client();
    peer.send_raw(kind::GOAWAY, 0, 0, &[0; 7]);
    peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 0);
}

// ---- §6.9 WINDOW_UPDATE (frame rules; flow control is in rfc9113_streams.rs) ----

/// §6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a
/// connection error of type FRAME_SIZE_ERROR", on a stream as on the connection.
#[test]
fn s6_9_window_update_with_wrong_length_is_connection_frame_size_error() {
    for stream in [0, 1] {
        let mut peer = server();
        open(&mut peer, 1);
        peer.send_raw(kind::WINDOW_UPDATE, 0, stream, &[0, 0, 1, 0, 0]);
        peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 1);
    }
}

// ---- §6.10 CONTINUATION ----

/// §6.10: "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or
/// CONTINUATION frame without the END_HEADERS flag set. A recipient that observes
/// violation of this rule MUST respond with a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_10_continuation_without_headers_is_protocol_error() {
    let mut peer = server();
    let block = peer.block(&GET);
    peer.send_raw(kind::CONTINUATION, flag::END_HEADERS, 1, &block);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.10: a CONTINUATION after a HEADERS that had END_HEADERS is not preceded by a
/// frame "without the END_HEADERS flag set".
#[test]
fn s6_10_continuation_after_end_headers_is_protocol_error() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x82]);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
}

/// §6.10: "If a CONTINUATION frame is received with a Stream Identifier field of 0x00,
/// the recipient MUST respond with a connection error of type PROTOCOL_ERROR."
#[test]
fn s6_10_continuation_on_stream_zero_is_protocol_error() {
    let mut peer = server();
    let block = peer.block(&GET);
    peer.send_raw(kind::HEADERS, 0, 1, &block[..2]);
    peer.send_raw(kind::CONTINUATION, flag::END_HEADERS, 0, &block[2..]);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
}

/// §6.2/§6.10/§4.3: after a HEADERS without END_HEADERS, "A receiver MUST treat the
/// receipt of any other type of frame or a frame on a different stream as a connection
/// error of type PROTOCOL_ERROR" — here DATA, PRIORITY (§6.3), PING, SETTINGS,
/// WINDOW_UPDATE and RST_STREAM.
#[test]
fn s6_10_other_frame_type_inside_field_block_is_protocol_error() {
    let interlopers: [(u8, u32, &[u8]); 6] = [
        (kind::DATA, 1, b"x"),
        (kind::PRIORITY, 1, &[0, 0, 0, 0, 1]),
        (kind::PING, 0, b"12345678"),
        (kind::SETTINGS, 0, b""),
        (kind::WINDOW_UPDATE, 0, &[0, 0, 0, 1]),
        (kind::RST_STREAM, 1, &[0, 0, 0, 8]),
    ];
    for (k, stream, payload) in interlopers {
        let mut peer = server();
        open(&mut peer, 1);
        let block = peer.block(&GET);
        peer.send_raw(kind::HEADERS, 0, 3, &block[..2]);
        peer.expect_silence();
        peer.send_raw(k, 0, stream, payload);
        peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
    }
}

/// §6.10: a CONTINUATION (or a HEADERS) on a different stream inside a field block is
/// a connection PROTOCOL_ERROR.
#[test]
fn s6_10_frame_on_other_stream_inside_field_block_is_protocol_error() {
    for k in [kind::CONTINUATION, kind::HEADERS] {
        let mut peer = server();
        let block = peer.block(&GET);
        peer.send_raw(kind::HEADERS, 0, 1, &block[..2]);
        peer.send_raw(k, flag::END_HEADERS, 3, &block[2..]);
        peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 0);
    }
}

/// §6.10: "Any number of CONTINUATION frames can be sent": a block split over several,
/// empty ones included, is reassembled.
#[test]
fn s6_10_field_block_split_over_continuations_is_reassembled() {
    let mut peer = server();
    let block = peer.block(&GET);
    peer.send_raw(kind::HEADERS, flag::END_STREAM, 1, &block[..1]);
    peer.send_raw(kind::CONTINUATION, 0, 1, &block[1..2]);
    peer.send_raw(kind::CONTINUATION, 0, 1, &[]);
    peer.send_raw(kind::CONTINUATION, 0, 1, &block[2..4]);
    peer.expect_silence();
    assert!(peer.take_stream_events().is_empty());
    peer.send_raw(kind::CONTINUATION, flag::END_HEADERS, 1, &block[4..]);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Request { id, end_stream: true, .. }] if *id == sid(1))
    );
    peer.server_roundtrip(3);
}

/// §10.5 (CVE-2024-27316 "CONTINUATION flood"): more than
/// `Config::max_continuation_frames` CONTINUATION frames for one field block end the
/// connection with ENHANCE_YOUR_CALM.
#[test]
fn s6_10_too_many_continuation_frames_is_enhance_your_calm() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.max_continuation_frames = 2;
        c
    });
    let block = peer.block(&GET);
    peer.send_raw(kind::HEADERS, flag::END_STREAM, 1, &block[..1]);
    peer.send_raw(kind::CONTINUATION, 0, 1, &block[1..2]);
    peer.send_raw(kind::CONTINUATION, flag::END_HEADERS, 1, &block[2..]);
    assert_eq!(
        peer.take_stream_events().len(),
        1,
        "two CONTINUATION frames are allowed"
    );
    peer.conn
        .send_response(sid(1), &support::response(204), true)
        .unwrap();
    peer.frames();
    peer.send_raw(kind::HEADERS, 0, 3, &[0x82]);
    peer.send_raw(kind::CONTINUATION, 0, 3, &[0x86]);
    peer.send_raw(kind::CONTINUATION, 0, 3, &[0x84]);
    peer.expect_silence();
    peer.send_raw(kind::CONTINUATION, 0, 3, &[0x41]);
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 1);
}

/// §10.5: a field block larger than `Config::max_header_block_size` before decoding
/// ends the connection with ENHANCE_YOUR_CALM (it cannot be skipped: HPACK state).
#[test]
fn s6_10_oversized_field_block_is_enhance_your_calm() {
    let mut config = Config::default();
    config.max_header_block_size = 100;
    let mut peer = server_with(config.clone());
    peer.send_raw(kind::HEADERS, 0, 1, &[0x40; 60]);
    peer.send_raw(kind::CONTINUATION, 0, 1, &[0x40; 40]);
    peer.expect_silence();
    peer.send_raw(kind::CONTINUATION, 0, 1, &[0x40]);
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 0);

    let mut peer = server_with(config);
    peer.send_raw(kind::HEADERS, 0, 1, &[0x40; 101]);
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 0);
}

/// §10.5: empty CONTINUATION frames count against `FloodLimits::max_empty_frames`.
#[test]
fn s6_10_empty_continuation_flood_is_enhance_your_calm() {
    let mut peer = server_with({
        let mut c = Config::default();
        c.flood = FloodLimits {
            max_empty_frames: 2,
            ..FloodLimits::default()
        };
        c
    });
    peer.send_raw(kind::HEADERS, 0, 1, &[0x82]);
    peer.send_raw(kind::CONTINUATION, 0, 1, &[]);
    peer.send_raw(kind::CONTINUATION, 0, 1, &[]);
    peer.expect_silence();
    peer.send_raw(kind::CONTINUATION, 0, 1, &[]);
    peer.expect_conn_error(ErrorCode::ENHANCE_YOUR_CALM, 0);
}

// ---- §7 Error Codes ----

/// §7: every defined error code has its RFC name, a description, and displays as its
/// name.
#[test]
fn s7_every_error_code_has_its_name_and_description() {
    let defined = [
        (ErrorCode::NO_ERROR, 0x0, "NO_ERROR"),
        (ErrorCode::PROTOCOL_ERROR, 0x1, "PROTOCOL_ERROR"),
        (ErrorCode::INTERNAL_ERROR, 0x2, "INTERNAL_ERROR"),
        (ErrorCode::FLOW_CONTROL_ERROR, 0x3, "FLOW_CONTROL_ERROR"),
        (ErrorCode::SETTINGS_TIMEOUT, 0x4, "SETTINGS_TIMEOUT"),
        (ErrorCode::STREAM_CLOSED, 0x5, "STREAM_CLOSED"),
        (ErrorCode::FRAME_SIZE_ERROR, 0x6, "FRAME_SIZE_ERROR"),
        (ErrorCode::REFUSED_STREAM, 0x7, "REFUSED_STREAM"),
        (ErrorCode::CANCEL, 0x8, "CANCEL"),
        (ErrorCode::COMPRESSION_ERROR, 0x9, "COMPRESSION_ERROR"),
        (ErrorCode::CONNECT_ERROR, 0xa, "CONNECT_ERROR"),
        (ErrorCode::ENHANCE_YOUR_CALM, 0xb, "ENHANCE_YOUR_CALM"),
        (ErrorCode::INADEQUATE_SECURITY, 0xc, "INADEQUATE_SECURITY"),
        (ErrorCode::HTTP_1_1_REQUIRED, 0xd, "HTTP_1_1_REQUIRED"),
    ];
    let mut descriptions = std::collections::HashSet::new();
    for (code, value, name) in defined {
        assert_eq!(code, ErrorCode(value));
        assert_eq!(u32::from(code), value);
        assert_eq!(ErrorCode::from(value), code);
        assert_eq!(code.name(), Some(name));
        assert_eq!(code.to_string(), name);
        assert_eq!(format!("{code:?}"), format!("ErrorCode({name})"));
        let description = code.description();
        assert!(
            !description.is_empty() && description != "unknown error code",
            "{name}"
        );
        assert!(
            descriptions.insert(description),
            "{name} has its own description"
        );
    }
}

/// §7: "Unknown or unsupported error codes MUST NOT trigger any special behavior":
/// they are kept as sent and display as unknown.
#[test]
fn s7_unknown_error_codes_display_as_unknown() {
    for value in [0xe, 0xff, 0xdead_beef, u32::MAX] {
        let code = ErrorCode(value);
        assert_eq!(code.name(), None);
        assert_eq!(code.description(), "unknown error code");
        assert_eq!(code.to_string(), format!("unknown error code {value:#x}"));
        assert_eq!(format!("{code:?}"), format!("ErrorCode({value:#x})"));
    }
}

/// §7 (and §5.5): an unknown code in RST_STREAM or GOAWAY is reported as it is and
/// handled like any other code.
#[test]
fn s7_unknown_error_code_in_rst_stream_and_goaway_triggers_no_special_behaviour() {
    let mut peer = server();
    open(&mut peer, 1);
    peer.send_raw(kind::RST_STREAM, 0, 1, &0xdead_u32.to_be_bytes());
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(matches!(
        events.as_slice(),
        [Event::StreamError {
            error: Error::Reset {
                code: ErrorCode(0xdead),
                initiator: Initiator::Remote,
                ..
            },
            ..
        }]
    ));
    peer.server_roundtrip(3);

    let mut peer = client();
    let id = peer.client_open(&request("GET", "/"), true);
    let mut payload = id.get().to_be_bytes().to_vec();
    payload.extend_from_slice(&0xbeef_u32.to_be_bytes());
    peer.send_raw(kind::GOAWAY, 0, 0, &payload);
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(matches!(events.as_slice(), [Event::GoAwayReceived(g)] if g.code == ErrorCode(0xbeef)));
    // The stream at the last-stream-id still completes.
    peer.send_headers(id.get(), &[(":status", "200")], true);
    let events = peer.take_stream_events();
    assert!(matches!(&events[0], Event::Response { .. }), "{events:?}");
    match events.last() {
        Some(Event::Closed(Some(Error::GoAway {
            goaway,
            initiator: Initiator::Remote,
            ..
        }))) => {
            assert_eq!(goaway.code, ErrorCode(0xbeef));
        }
        other => panic!("{other:?}"),
    }
}
