//! Bulk transfer: how much one `poll_transmit` carries, fairness between streams
//! within it, vectored output that does not copy DATA, and reading straight into the
//! engine's receive buffer.

mod support;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use steadfast_proto::frame::{self, Frame, WindowUpdate, DEFAULT_MAX_FRAME_SIZE};
use steadfast_proto::{Config, Event, Fate, Settings, StreamId};
use support::*;

const FRAME: usize = DEFAULT_MAX_FRAME_SIZE as usize;

/// Peer SETTINGS with a large stream window, so only the transmit budget limits a call.
fn wide_open() -> Settings {
    Settings {
        initial_window_size: Some(16 << 20),
        ..Settings::default()
    }
}

/// A server under test whose peer opened large windows (stream and connection), with
/// a request open on each of `ids` and its response head sent.
fn server_with_open_windows(ids: &[u32]) -> Peer {
    let mut peer = Peer::server_with(Config::default(), wide_open());
    peer.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::ZERO,
        64 << 20,
    )));
    for &id in ids {
        peer.send_request(id, true);
        peer.conn
            .send_response(sid(id), &response(200), false)
            .unwrap();
    }
    peer.frames();
    peer.take_events();
    peer
}

fn decode_all(mut wire: BytesMut) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(f) = frame::decode(&mut wire, frame::MAX_MAX_FRAME_SIZE).unwrap() {
        frames.push(f);
    }
    assert!(wire.is_empty(), "a partial frame was written");
    frames
}

/// (stream, payload length) of each DATA frame.
fn data_frames(frames: &[Frame]) -> Vec<(u32, usize)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) => Some((d.stream_id.get(), d.data.len())),
            _ => None,
        })
        .collect()
}

fn transmit_once(peer: &mut Peer) -> Vec<Frame> {
    let mut wire = BytesMut::new();
    peer.conn.poll_transmit(peer.now, &mut wire);
    decode_all(wire)
}

fn body(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn one_transmit_carries_several_frames_of_one_stream_up_to_the_budget() {
    let mut peer = server_with_open_windows(&[1]);
    let budget = Config::default().max_transmit_data;
    peer.conn.send_data(sid(1), body(1 << 20, 1), true).unwrap();
    let data = data_frames(&transmit_once(&mut peer));
    assert_eq!(data.len(), budget / FRAME, "{data:?}");
    assert!(data.iter().all(|&(id, len)| id == 1 && len == FRAME));
    // The rest follows in further calls, budget by budget, to the last byte.
    let mut total: usize = data.iter().map(|d| d.1).sum();
    let mut calls = 1;
    loop {
        let frames = transmit_once(&mut peer);
        if frames.is_empty() {
            break;
        }
        calls += 1;
        total += data_frames(&frames).iter().map(|d| d.1).sum::<usize>();
    }
    assert_eq!(total, 1 << 20);
    assert_eq!(calls, (1 << 20) / budget);
}

#[test]
fn a_transmit_stops_at_the_stream_window_and_the_budget_can_be_raised() {
    let mut config = Config::default();
    config.max_transmit_data = 1 << 20;
    let mut peer = Peer::server_with(
        config,
        Settings {
            initial_window_size: Some(100_000),
            ..Settings::default()
        },
    );
    peer.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::ZERO,
        64 << 20,
    )));
    peer.send_request(1, true);
    peer.conn
        .send_response(sid(1), &response(200), false)
        .unwrap();
    peer.frames();
    peer.conn.send_data(sid(1), body(1 << 20, 2), true).unwrap();
    let data = data_frames(&transmit_once(&mut peer));
    let sent: usize = data.iter().map(|d| d.1).sum();
    assert_eq!(sent, 100_000, "the stream window, in one call: {data:?}");
    assert!(transmit_once(&mut peer).is_empty());
}

#[test]
fn streams_take_turns_frame_by_frame_within_one_transmit() {
    let mut peer = server_with_open_windows(&[1, 3]);
    let budget = Config::default().max_transmit_data;
    peer.conn.send_data(sid(1), body(1 << 20, 1), true).unwrap();
    peer.conn.send_data(sid(3), body(1 << 20, 3), true).unwrap();
    let data = data_frames(&transmit_once(&mut peer));
    let ids: Vec<u32> = data.iter().map(|d| d.0).collect();
    let expected: Vec<u32> = [1, 3].repeat(budget / FRAME / 2);
    assert_eq!(ids, expected);
    // The next call goes on with the same alternation.
    let next: Vec<u32> = data_frames(&transmit_once(&mut peer))
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(next, expected);
}

#[test]
fn a_short_body_is_not_held_behind_a_long_one() {
    let mut peer = server_with_open_windows(&[1, 3]);
    peer.conn.send_data(sid(1), body(4 << 20, 1), true).unwrap();
    peer.conn
        .send_data(sid(3), body(3 * FRAME, 3), true)
        .unwrap();
    let frames = transmit_once(&mut peer);
    let data = data_frames(&frames);
    // Stream 3 is done within the first six frames, its END_STREAM included.
    assert_eq!(&data[..6], &[(1, FRAME), (3, FRAME)].repeat(3)[..]);
    let end3 = frames
        .iter()
        .position(|f| matches!(f, Frame::Data(d) if d.stream_id == sid(3) && d.end_stream));
    assert!(end3.is_some_and(|i| i < 7), "{end3:?}");
}

/// Runs the same exchange on two servers, drains one with `poll_transmit` and the
/// other with `poll_transmit_vectored`: the bytes are the same, and large payloads are
/// the application's own memory.
#[test]
fn vectored_output_is_the_flat_output_without_copying_payloads() {
    let bodies = [body(200_000, 1), body(700, 2), body(FRAME + 5, 3)];
    let run = |vectored: bool| {
        let mut peer = server_with_open_windows(&[1, 3, 5]);
        for (id, b) in [1, 3, 5].into_iter().zip(&bodies) {
            peer.conn.send_data(sid(id), b.clone(), false).unwrap();
        }
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-done", "1".parse().unwrap());
        peer.conn.send_trailers(sid(3), &trailers).unwrap();
        peer.conn.send_data(sid(5), Bytes::new(), true).unwrap();
        // A PING acknowledgement queued before, so output starts with a control frame.
        peer.send(Frame::Ping(frame::Ping {
            payload: *b"12345678",
            ack: false,
        }));
        let mut chunks = VecDeque::new();
        let mut flat = BytesMut::new();
        loop {
            let n = if vectored {
                peer.conn.poll_transmit_vectored(peer.now, &mut chunks)
            } else {
                peer.conn.poll_transmit(peer.now, &mut flat)
            };
            if n == 0 {
                break;
            }
        }
        (flat, chunks)
    };
    let (flat, _) = run(false);
    let (_, chunks) = run(true);
    let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(joined, &flat[..]);
    assert!(decode_all(flat).len() > 10);
    // Every 16 KiB payload of stream 1 is a slice of its body, not a copy.
    let within = |c: &Bytes, b: &Bytes| {
        let (start, end) = (b.as_ptr() as usize, b.as_ptr() as usize + b.len());
        c.as_ptr() as usize >= start && c.as_ptr() as usize + c.len() <= end
    };
    let zero_copy = chunks.iter().filter(|c| within(c, &bodies[0])).count();
    assert_eq!(zero_copy, 200_000usize.div_ceil(FRAME));
    // The 700-byte body is small enough to be copied next to its frame header.
    assert!(!chunks.iter().any(|c| within(c, &bodies[1])));
}

/// The fate rule holds with vectored output: a request's HEADERS leave when the
/// output holding them is handed over, including HEADERS written within that very
/// call, when a stream ending there frees the only slot; and they follow that
/// stream's last DATA on the wire, in the order they were encoded.
#[test]
fn vectored_transmit_marks_requests_sent_and_keeps_encoding_order() {
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
    assert_eq!(peer.conn.fate(three), Some(Fate::NotSent));
    peer.send_headers(one.get(), &[(":status", "200")], true);
    peer.take_stream_events();
    peer.conn.send_data(one, body(5000, 9), true).unwrap();
    assert_eq!(peer.conn.fate(three), Some(Fate::NotSent));
    let mut chunks = VecDeque::new();
    peer.conn.poll_transmit_vectored(peer.now, &mut chunks);
    assert_eq!(peer.conn.fate(three), Some(Fate::MaybeProcessed));
    let wire: BytesMut = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let frames = decode_all(wire);
    let order: Vec<(u32, &str)> = frames
        .iter()
        .map(|f| match f {
            Frame::Data(d) => (d.stream_id.get(), "DATA"),
            Frame::Headers(h) => (h.stream_id.get(), "HEADERS"),
            _ => (0, "other"),
        })
        .filter(|(id, _)| *id != 0)
        .collect();
    assert_eq!(order, [(1, "DATA"), (3, "HEADERS")]);
    let Frame::Headers(h) = frames
        .iter()
        .find(|f| matches!(f, Frame::Headers(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let fields = peer.decode(&h.fragment);
    assert!(fields.contains(&(":path".to_string(), "/three".to_string())));
}

#[test]
fn received_data_is_a_slice_of_the_receive_buffer() {
    let mut peer = Peer::server(Config::default());
    peer.send_request(1, false);
    peer.take_events();
    let payload = body(FRAME, 4);
    let mut wire = BytesMut::new();
    Frame::Data(frame::Data::new(sid(1), payload.clone(), true)).encode(&mut wire);
    // Read in two pieces, the first ending inside the payload, into room reserved
    // beforehand (as a runtime does before each read).
    let buf = peer.conn.recv_buffer();
    buf.reserve(wire.len());
    let payload_at = buf.as_ptr() as usize + buf.len() + frame::HEADER_LEN;
    buf.extend_from_slice(&wire[..100]);
    peer.conn.handle_received(peer.now);
    assert!(
        peer.take_events().is_empty(),
        "no event for a partial frame"
    );
    assert_eq!(
        peer.conn.recv_buffer().len(),
        100,
        "the partial frame is kept"
    );
    peer.conn.recv_buffer().extend_from_slice(&wire[100..]);
    peer.conn.handle_received(peer.now);
    let events = peer.take_events();
    let data = events
        .iter()
        .find_map(|e| match e {
            Event::Data {
                data, end_stream, ..
            } => {
                assert!(end_stream);
                Some(data.clone())
            }
            _ => None,
        })
        .expect("a Data event");
    assert_eq!(data, payload);
    assert_eq!(data.as_ptr() as usize, payload_at, "the payload was copied");
    assert!(peer.conn.recv_buffer().is_empty());
}

/// Any split of the same bytes between reads gives the same events as `handle_read`.
#[test]
fn handle_received_sees_what_handle_read_sees_at_any_split() {
    let mut wire = BytesMut::new();
    let mut script = Peer::server(Config::default());
    let block = script.block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "example.test"),
        (":path", "/up"),
    ]);
    Frame::Headers(frame::Headers {
        stream_id: sid(1),
        priority: None,
        fragment: block,
        end_stream: false,
        end_headers: true,
    })
    .encode(&mut wire);
    for i in 0..3u8 {
        Frame::Data(frame::Data::new(sid(1), body(3000, i), i == 2)).encode(&mut wire);
    }
    let events_of = |feed: &dyn Fn(&mut Peer)| {
        let mut peer = Peer::server(Config::default());
        feed(&mut peer);
        format!("{:?}", peer.take_events())
    };
    let expected = events_of(&|p| p.conn.handle_read(&wire, p.now));
    assert!(expected.contains("Request") && expected.contains("Data"));
    for step in [1, 7, 9, 100, 4096] {
        let got = events_of(&|p| {
            for piece in wire.chunks(step) {
                p.conn.recv_buffer().extend_from_slice(piece);
                p.conn.handle_received(p.now);
            }
        });
        assert_eq!(got, expected, "reads of {step} bytes");
    }
}

#[test]
fn a_closed_connection_drops_what_is_appended_to_its_buffer() {
    let mut peer = Peer::server(Config::default());
    peer.send_bytes(b"\x00\x00\x00\x09\x00\x00\x00\x00\x00"); // not a valid frame
    peer.take_events();
    assert!(peer.conn.is_closed());
    peer.conn.recv_buffer().extend_from_slice(&[0; 1000]);
    peer.conn.handle_received(peer.now);
    assert!(peer.conn.recv_buffer().is_empty());
    assert!(peer.take_events().is_empty());
}
