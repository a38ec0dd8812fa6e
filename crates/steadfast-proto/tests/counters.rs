//! RST_STREAM and GOAWAY frames counted by code on both ends of a connection.

mod support;

use std::sync::Arc;

use steadfast_proto::{ErrorCode, FrameCounters, FrameCounts, CODE_NAMES};
use support::{request, Pair};

/// The count of `code` in a [`FrameCounts`] slot array.
fn of(counts: &steadfast_proto::ByCode, code: &str) -> u64 {
    let i = CODE_NAMES.iter().position(|n| *n == code).unwrap();
    counts[i]
}

#[test]
fn each_end_counts_what_it_wrote_and_read_by_code() {
    let mut pair = Pair::new();
    let client = Arc::new(FrameCounters::default());
    let server = Arc::new(FrameCounters::default());
    pair.client.count_frames_into(client.clone());
    pair.server.count_frames_into(server.clone());

    // Two requests: the client cancels one, the server refuses the other.
    let cancelled = pair
        .client
        .send_request(&request("GET", "/a"), true)
        .unwrap();
    let refused = pair
        .client
        .send_request(&request("GET", "/b"), true)
        .unwrap();
    pair.drive();
    pair.client.reset(cancelled, ErrorCode::CANCEL).unwrap();
    pair.server
        .reset(refused, ErrorCode::REFUSED_STREAM)
        .unwrap();
    pair.drive();
    let now = pair.now;
    pair.server
        .shutdown_now_with(now, bytes::Bytes::from_static(b"drain"));
    pair.drive();

    let (c, s) = (client.get(), server.get());
    assert_eq!(of(&c.rst_stream_sent, "CANCEL"), 1);
    assert_eq!(of(&s.rst_stream_received, "CANCEL"), 1);
    assert_eq!(of(&s.rst_stream_sent, "REFUSED_STREAM"), 1);
    assert_eq!(of(&c.rst_stream_received, "REFUSED_STREAM"), 1);
    assert_eq!(of(&s.goaway_sent, "NO_ERROR"), 1);
    assert_eq!(of(&c.goaway_received, "NO_ERROR"), 1);
    // Nothing else was counted.
    let total = |f: &FrameCounts| {
        [
            f.rst_stream_sent,
            f.rst_stream_received,
            f.goaway_sent,
            f.goaway_received,
        ]
        .iter()
        .flatten()
        .sum::<u64>()
    };
    assert_eq!(total(&c), 3);
    assert_eq!(total(&s), 3);
}

#[test]
fn unknown_codes_are_counted_as_other() {
    let mut pair = Pair::new();
    let server = Arc::new(FrameCounters::default());
    pair.server.count_frames_into(server.clone());
    let id = pair
        .client
        .send_request(&request("GET", "/a"), true)
        .unwrap();
    pair.drive();
    pair.client.reset(id, ErrorCode(0x77)).unwrap();
    pair.drive();
    assert_eq!(of(&server.get().rst_stream_received, "other"), 1);
}
