use bytes::{Bytes, BytesMut};

use super::*;
use crate::ids::GoAway;

fn roundtrip(frame: Frame) {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    let decoded = decode(&mut buf, MAX_MAX_FRAME_SIZE).unwrap().unwrap();
    assert_eq!(decoded, frame);
    assert!(buf.is_empty());
}

fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    let len = (payload.len() as u32).to_be_bytes();
    buf.extend_from_slice(&len[1..]);
    buf.extend_from_slice(&[kind, flags]);
    buf.extend_from_slice(&stream.to_be_bytes());
    buf.extend_from_slice(payload);
    buf
}

fn decode_raw(
    kind: u8,
    flags: u8,
    stream: u32,
    payload: &[u8],
) -> Result<Option<Frame>, FrameError> {
    decode(&mut raw(kind, flags, stream, payload), MAX_MAX_FRAME_SIZE)
}

#[test]
fn every_frame_type_roundtrips() {
    let id = StreamId::new(5);
    roundtrip(Frame::Data(Data::new(
        id,
        Bytes::from_static(b"body"),
        true,
    )));
    roundtrip(Frame::Headers(Headers {
        stream_id: id,
        priority: Some(PrioritySpec {
            dependency: StreamId::new(3),
            exclusive: true,
            weight: 15,
        }),
        fragment: Bytes::from_static(b"\x82"),
        end_stream: false,
        end_headers: true,
    }));
    roundtrip(Frame::Priority(Priority {
        stream_id: id,
        spec: PrioritySpec {
            dependency: StreamId::ZERO,
            exclusive: false,
            weight: 255,
        },
    }));
    roundtrip(Frame::RstStream(RstStream::new(id, ErrorCode::CANCEL)));
    roundtrip(Frame::Settings(SettingsFrame::Ack));
    roundtrip(Frame::Settings(SettingsFrame::Values(Settings {
        header_table_size: Some(0),
        enable_push: Some(false),
        max_concurrent_streams: Some(100),
        initial_window_size: Some(MAX_WINDOW_SIZE),
        max_frame_size: Some(MAX_MAX_FRAME_SIZE),
        max_header_list_size: Some(1 << 20),
        enable_connect_protocol: Some(true),
    })));
    roundtrip(Frame::PushPromise(PushPromise {
        stream_id: id,
        promised_id: StreamId::new(2),
        fragment: Bytes::from_static(b"\x82\x84"),
        end_headers: false,
    }));
    roundtrip(Frame::Ping(Ping {
        payload: *b"abcdefgh",
        ack: true,
    }));
    roundtrip(Frame::GoAway(GoAwayFrame(GoAway {
        code: ErrorCode(0xdead),
        last_stream_id: StreamId::new(7),
        debug_data: Bytes::from_static(b"max_age"),
    })));
    roundtrip(Frame::WindowUpdate(WindowUpdate::new(id, MAX_WINDOW_SIZE)));
    roundtrip(Frame::Continuation(Continuation {
        stream_id: id,
        fragment: Bytes::from_static(b"\x86"),
        end_headers: true,
    }));
}

#[test]
fn partial_input_waits_for_more() {
    let full = raw(0x0, 0x1, 1, b"hello");
    for cut in 0..full.len() {
        let mut part = BytesMut::from(&full[..cut]);
        assert_eq!(
            decode(&mut part, DEFAULT_MAX_FRAME_SIZE).unwrap(),
            None,
            "cut at {cut}"
        );
        assert_eq!(part.len(), cut, "nothing consumed");
    }
}

#[test]
fn oversized_frame_rejected_from_its_header_alone() {
    // Only the 9-byte header: the 20,000-byte payload need never be buffered.
    let mut header = BytesMut::from(&raw(0x0, 0, 1, &vec![0; 20_000])[..9]);
    assert_eq!(
        decode(&mut header, DEFAULT_MAX_FRAME_SIZE),
        Err(FrameError::Connection(
            ErrorCode::FRAME_SIZE_ERROR,
            "frame larger than SETTINGS_MAX_FRAME_SIZE"
        ))
    );
}

#[test]
fn padding_is_stripped_and_counted_for_flow_control() {
    let mut payload = vec![3u8];
    payload.extend_from_slice(b"abc");
    payload.extend_from_slice(&[0, 0, 0]);
    let Some(Frame::Data(d)) = decode_raw(0x0, flags::PADDED, 1, &payload).unwrap() else {
        panic!("not DATA")
    };
    assert_eq!(&d.data[..], b"abc");
    assert_eq!(d.flow_controlled_len, 7);

    // Padding as long as the rest of the payload is a PROTOCOL_ERROR (§6.1).
    let err = decode_raw(0x0, flags::PADDED, 1, &[3, 0, 0]).unwrap_err();
    assert!(matches!(
        err,
        FrameError::Connection(ErrorCode::PROTOCOL_ERROR, _)
    ));
    // A padded frame with no room for the pad length.
    let err = decode_raw(0x0, flags::PADDED, 1, &[]).unwrap_err();
    assert!(matches!(
        err,
        FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR, _)
    ));

    let mut hp = vec![2u8, 0x82];
    hp.extend_from_slice(&[0, 0]);
    let Some(Frame::Headers(h)) =
        decode_raw(0x1, flags::PADDED | flags::END_HEADERS, 1, &hp).unwrap()
    else {
        panic!("not HEADERS")
    };
    assert_eq!(&h.fragment[..], b"\x82");
    let err = decode_raw(0x1, flags::PADDED, 1, &[5, 0x82]).unwrap_err();
    assert!(matches!(
        err,
        FrameError::Connection(ErrorCode::PROTOCOL_ERROR, _)
    ));
}

#[test]
fn stream_id_rules_of_section_6() {
    let conn_err = |r: Result<Option<Frame>, FrameError>| {
        matches!(r, Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR, _)))
    };
    assert!(conn_err(decode_raw(0x0, 0, 0, b"x")), "DATA on 0");
    assert!(conn_err(decode_raw(0x1, 0x4, 0, b"\x82")), "HEADERS on 0");
    assert!(conn_err(decode_raw(0x2, 0, 0, &[0; 5])), "PRIORITY on 0");
    assert!(conn_err(decode_raw(0x3, 0, 0, &[0; 4])), "RST_STREAM on 0");
    assert!(conn_err(decode_raw(0x4, 0, 1, &[])), "SETTINGS on a stream");
    assert!(
        conn_err(decode_raw(0x5, 0x4, 0, &[0; 4])),
        "PUSH_PROMISE on 0"
    );
    assert!(conn_err(decode_raw(0x6, 0, 1, &[0; 8])), "PING on a stream");
    assert!(
        conn_err(decode_raw(0x7, 0, 1, &[0; 8])),
        "GOAWAY on a stream"
    );
    assert!(conn_err(decode_raw(0x9, 0x4, 0, b"")), "CONTINUATION on 0");
    // WINDOW_UPDATE is valid on both.
    assert!(decode_raw(0x8, 0, 0, &[0, 0, 0, 1]).is_ok());
    assert!(decode_raw(0x8, 0, 3, &[0, 0, 0, 1]).is_ok());
}

#[test]
fn length_rules_of_section_6() {
    let size_err = |r: Result<Option<Frame>, FrameError>| {
        matches!(
            r,
            Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR, _))
        )
    };
    assert!(size_err(decode_raw(0x3, 0, 1, &[0; 3])), "RST_STREAM not 4");
    assert!(
        size_err(decode_raw(0x4, 0, 0, &[0; 5])),
        "SETTINGS not a multiple of 6"
    );
    assert!(
        size_err(decode_raw(0x4, 0x1, 0, &[0; 6])),
        "SETTINGS ACK with payload"
    );
    assert!(size_err(decode_raw(0x6, 0, 0, &[0; 7])), "PING not 8");
    assert!(size_err(decode_raw(0x7, 0, 0, &[0; 7])), "GOAWAY under 8");
    assert!(
        size_err(decode_raw(0x8, 0, 0, &[0; 5])),
        "WINDOW_UPDATE not 4"
    );
    assert!(
        size_err(decode_raw(0x1, 0x20, 1, &[0; 4])),
        "HEADERS too short for priority"
    );
    // PRIORITY's size error is a stream error (§6.3).
    assert_eq!(
        decode_raw(0x2, 0, 3, &[0; 4]),
        Err(FrameError::Stream(
            StreamId::new(3),
            ErrorCode::FRAME_SIZE_ERROR,
            "PRIORITY frame length is not 5"
        ))
    );
}

#[test]
fn settings_value_ranges() {
    let setting = |id: u16, v: u32| {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&v.to_be_bytes());
        decode_raw(0x4, 0, 0, &p)
    };
    assert!(matches!(
        setting(0x2, 2),
        Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR, _))
    ));
    assert!(matches!(
        setting(0x4, 1 << 31),
        Err(FrameError::Connection(ErrorCode::FLOW_CONTROL_ERROR, _))
    ));
    assert!(matches!(
        setting(0x5, 16_383),
        Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR, _))
    ));
    assert!(matches!(
        setting(0x5, 1 << 24),
        Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR, _))
    ));
    assert!(matches!(
        setting(0x8, 2),
        Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR, _))
    ));
    // Unknown settings are ignored (§6.5.2).
    assert_eq!(
        setting(0x99, 12345).unwrap(),
        Some(Frame::Settings(SettingsFrame::Values(Settings::default())))
    );
}

#[test]
fn reserved_bits_are_ignored() {
    // The reserved bit of the stream id (§4.1) and of the WINDOW_UPDATE increment.
    let Some(Frame::WindowUpdate(w)) = decode_raw(0x8, 0, 0x8000_0003, &[0x80, 0, 0, 9]).unwrap()
    else {
        panic!()
    };
    assert_eq!(w.stream_id, StreamId::new(3));
    assert_eq!(w.increment, 9);
}

#[test]
fn unknown_frame_types_are_kept_to_be_ignored() {
    let f = decode_raw(0xfa, 0xff, 7, b"anything").unwrap().unwrap();
    assert!(matches!(f, Frame::Unknown(h) if h.kind == 0xfa && h.length == 8));
}

#[test]
fn goaway_keeps_unknown_codes_and_debug_data() {
    let mut p = 9u32.to_be_bytes().to_vec();
    p.extend_from_slice(&0x1234u32.to_be_bytes());
    p.extend_from_slice(b"why");
    let Some(Frame::GoAway(g)) = decode_raw(0x7, 0, 0, &p).unwrap() else {
        panic!()
    };
    assert_eq!(g.0.code, ErrorCode(0x1234));
    assert_eq!(g.0.code.to_string(), "unknown error code 0x1234");
    assert_eq!(g.0.last_stream_id, StreamId::new(9));
    assert_eq!(&g.0.debug_data[..], b"why");
}

#[test]
fn decoder_never_panics_on_random_input() {
    let mut rng = steadfast_testkit::Rng::new(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = rng.index(64);
        let mut bytes = rng.bytes(len);
        if bytes.len() >= 3 {
            // Keep lengths small so frames complete.
            bytes[0] = 0;
            bytes[1] = 0;
            bytes[2] %= 48;
        }
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode(&mut buf, DEFAULT_MAX_FRAME_SIZE) {}
    }
}

/// How many distinct buckets of a 8,192-bucket table (where `HashMap` keeps 4,096
/// entries) the hashes of `ids` fall into.
fn distinct_buckets(ids: impl Iterator<Item = u32>) -> usize {
    use std::hash::BuildHasher;
    let build = std::hash::BuildHasherDefault::<StreamIdHasher>::default();
    let buckets: std::collections::HashSet<u64> = ids
        .map(|id| build.hash_one(StreamId::new(id)) & 8191)
        .collect();
    buckets.len()
}

/// A peer chooses its stream ids: ids that differ only in high bits (here spaced by
/// 2^17) must spread over the table like any others. Random placement of 4,096 keys
/// in 8,192 buckets fills about 3,220 of them; a hash whose low bits depend only on
/// the id's low bits puts all of these in one.
#[test]
fn stream_id_hash_spreads_ids_that_differ_only_in_high_bits() {
    let spaced = distinct_buckets((0..4096).map(|i| (i << 17) | 1));
    assert!(spaced > 3_000, "spaced ids fill only {spaced} buckets");
    let sequential = distinct_buckets((0..4096).map(|i| 2 * i + 1));
    assert!(
        sequential > 3_000,
        "sequential ids fill only {sequential} buckets"
    );
    // The top bits, which `HashMap` uses to tell keys of one bucket apart, too.
    use std::hash::BuildHasher;
    let build = std::hash::BuildHasherDefault::<StreamIdHasher>::default();
    let tags: std::collections::HashSet<u64> = (0..4096)
        .map(|i| build.hash_one(StreamId::new((i << 17) | 1)) >> 57)
        .collect();
    assert_eq!(tags.len(), 128, "top 7 bits of the hash");
}
