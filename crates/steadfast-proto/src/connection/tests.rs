//! Unit tests that look inside the connection: costs that behaviour alone cannot show.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::frame::{Data, Frame, Headers};

fn encode(frame: Frame) -> BytesMut {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    buf
}

/// A server with `streams` open request streams (ids 1, 3, …), handshake done, its
/// output drained.
fn server_with_streams(streams: u32, now: Instant) -> Connection {
    let config = Config {
        max_concurrent_streams: streams,
        ..Config::default()
    };
    let mut conn = Connection::new(Role::Server, config, now).expect("a valid config");
    conn.handle_read(PREFACE, now);
    conn.handle_read(
        &encode(Frame::Settings(SettingsFrame::Values(Settings::default()))),
        now,
    );
    let mut encoder = Encoder::new();
    for i in 0..streams {
        let mut block = BytesMut::new();
        let fields: [(&[u8], &[u8]); 4] = [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", b"example.test"),
            (b":path", b"/"),
        ];
        encoder.encode(
            fields.iter().map(|(name, value)| steadfast_hpack::Field {
                name,
                value,
                sensitive: false,
            }),
            &mut block,
        );
        let headers = Headers {
            stream_id: StreamId::new(2 * i + 1),
            priority: None,
            fragment: block.freeze(),
            end_stream: false,
            end_headers: true,
        };
        conn.handle_read(&encode(Frame::Headers(headers)), now);
    }
    while conn.poll_event().is_some() {}
    conn.poll_transmit(now, &mut BytesMut::new());
    assert_eq!(conn.active_streams(), (0, streams as usize));
    conn
}

/// A connection WINDOW_UPDATE schedules only the streams that wait for the connection
/// window, not every open stream.
#[test]
fn connection_window_update_visits_only_blocked_streams() {
    let now = Instant::now();
    let mut conn = server_with_streams(10_000, now);
    let res = http::Response::new(());
    conn.send_response(StreamId::new(1), &res, false).unwrap();
    conn.send_data(StreamId::new(1), Bytes::from(vec![0; 65_535]), false)
        .unwrap();
    for _ in 0..8 {
        conn.poll_transmit(now, &mut BytesMut::new());
    }
    assert_eq!(conn.send_window, crate::window::Window::new(0));
    for id in [3, 5] {
        conn.send_response(StreamId::new(id), &res, false).unwrap();
        conn.send_data(StreamId::new(id), Bytes::from_static(b"x"), true)
            .unwrap();
    }
    conn.poll_transmit(now, &mut BytesMut::new());
    assert_eq!(conn.conn_blocked_live, 2);
    let before = conn.schedule_calls;
    for _ in 0..100 {
        let update = Frame::WindowUpdate(WindowUpdate::new(StreamId::ZERO, 1));
        conn.handle_read(&encode(update), now);
    }
    let mut out = BytesMut::new();
    conn.poll_transmit(now, &mut out);
    assert!(
        conn.schedule_calls - before <= 2,
        "{} streams visited",
        conn.schedule_calls - before
    );
    let mut expected = BytesMut::new();
    for id in [3, 5] {
        Data::encode_parts(StreamId::new(id), b"x", true, &mut expected);
    }
    assert_eq!(out, expected);
}

#[test]
fn deadlines_of_finished_streams_do_not_pile_up() {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Client, Config::default(), now).expect("a valid config");
    conn.handle_read(
        &encode(Frame::Settings(SettingsFrame::Values(Settings::default()))),
        now,
    );
    let request = http::Request::get("http://example.test/").body(()).unwrap();
    let far = now + std::time::Duration::from_secs(3600);
    let mut most = 0;
    for _ in 0..10_000 {
        let id = conn.send_request(&request, true).unwrap();
        conn.set_deadline(id, far).unwrap();
        // The stream ends without its deadline (as a reset would end it).
        conn.reset(id, ErrorCode::CANCEL).unwrap();
        most = most.max(conn.timers.deadlines.len());
    }
    // At most twice the open streams (one at a time here) plus 32, not 10,000.
    assert!(most <= 2 + 32, "{most} entries kept");
}
