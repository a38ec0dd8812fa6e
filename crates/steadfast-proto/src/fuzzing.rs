//! Entry points for the fuzz targets under `fuzz/`, kept in the crate so that unit
//! tests run them too and they never stop compiling.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::frame;
use crate::{Config, Connection, ErrorCode, Event, Keepalive, PingPolicy, Role, StreamId, PREFACE};

/// Decodes `data` as a sequence of frames; must never panic.
pub fn frame_decode(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = frame::decode(&mut buf, frame::DEFAULT_MAX_FRAME_SIZE) {
        // Whatever decodes must encode again.
        let mut out = BytesMut::new();
        frame.encode(&mut out);
    }
}

/// A little reader over fuzz input that yields zeros once exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, max: usize) -> &[u8] {
        let n = (usize::from(self.byte()) % (max + 1)).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn small_config() -> Config {
    Config {
        initial_stream_window: 1024,
        initial_connection_window: 4096,
        max_concurrent_streams: 4,
        max_header_list_size: 4096,
        max_header_block_size: 8192,
        max_continuation_frames: 4,
        max_reset_streams_remembered: 8,
        max_pending_control_bytes: 4096,
        ..Config::default()
    }
}

/// `small_config` with every timer armed, on the scale of the fuzzer's clock steps.
fn timers_config(without_calls: bool) -> Config {
    Config {
        keepalive: Some(Keepalive {
            time: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            without_calls,
        }),
        ping_policy: Some(PingPolicy {
            min_time: Duration::from_secs(1),
            ..PingPolicy::default()
        }),
        max_connection_idle: Some(Duration::from_secs(3)),
        max_connection_age: Some(Duration::from_secs(5)),
        max_connection_age_grace: Some(Duration::from_secs(2)),
        handshake_timeout: Some(Duration::from_secs(2)),
        stream_recv_timeout: Some(Duration::from_secs(1)),
        stream_send_timeout: Some(Duration::from_secs(1)),
        ..small_config()
    }
}

/// Stateful fuzzing of one endpoint: random frames from a hostile peer interleaved
/// with random application commands and clock steps. Must never panic, and the
/// connection's buffers must stay bounded.
pub fn connection(data: &[u8]) {
    let mut input = Input(data);
    let first = input.byte();
    let role = if first % 2 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let config = match first % 8 {
        2 | 3 => timers_config(false),
        4 | 5 => timers_config(true),
        _ => small_config(),
    };
    let mut now = Instant::now();
    let mut conn = Connection::new(role, config, now);
    let mut out = BytesMut::new();
    let handshake = input.byte() % 8 != 0;
    if role == Role::Server && handshake {
        conn.handle_read(PREFACE, now);
    }
    if handshake {
        // Most runs get past the handshake so that the state machine is exercised.
        let mut settings = BytesMut::new();
        frame::Frame::Settings(frame::SettingsFrame::Values(Default::default()))
            .encode(&mut settings);
        conn.handle_read(&settings, now);
    }
    let mut encoder = steadfast_hpack::Encoder::new();
    let mut known: Vec<StreamId> = Vec::new();
    while !input.is_empty() {
        match input.byte() % 14 {
            12 => {
                // A well-formed field block on a chosen stream: a request (to a server)
                // or a response (to a client), or trailers.
                let id = match role {
                    Role::Server => StreamId::new(u32::from(input.byte() % 16) * 2 + 1),
                    Role::Client => pick(&mut input, &known, &conn),
                };
                let fields: &[(&[u8], &[u8])] = match (role, input.byte() % 3) {
                    (_, 0) => &[(b"grpc-status", b"0")],
                    (Role::Server, _) => &[
                        (b":method", b"POST"),
                        (b":scheme", b"http"),
                        (b":path", b"/svc/M"),
                        (b"content-type", b"application/grpc"),
                    ],
                    (Role::Client, _) => &[(b":status", b"200"), (b"content-length", b"3")],
                };
                let mut block = BytesMut::new();
                encoder.encode(
                    fields.iter().map(|(name, value)| steadfast_hpack::Field {
                        name,
                        value,
                        sensitive: false,
                    }),
                    &mut block,
                );
                let flags = 0x4 | (input.byte() & 0x1);
                let mut buf = BytesMut::new();
                buf.extend_from_slice(&(block.len() as u32).to_be_bytes()[1..]);
                buf.extend_from_slice(&[0x1, flags]);
                buf.extend_from_slice(&id.get().to_be_bytes());
                buf.extend_from_slice(&block);
                conn.handle_read(&buf, now);
            }
            13 => {
                // DATA on a known stream.
                let id = pick(&mut input, &known, &conn);
                let end = input.byte() & 0x1;
                let payload = input.bytes(100).to_vec();
                let mut buf = BytesMut::new();
                buf.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
                buf.extend_from_slice(&[0x0, end]);
                buf.extend_from_slice(&id.get().to_be_bytes());
                buf.extend_from_slice(&payload);
                conn.handle_read(&buf, now);
            }
            0..=4 => {
                // A raw frame with arbitrary header fields and payload.
                let kind = input.byte() % 12;
                let flags = input.byte();
                let stream = u32::from(input.byte() % 16);
                let payload = input.bytes(64).to_vec();
                let mut buf = Vec::with_capacity(9 + payload.len());
                buf.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
                buf.extend_from_slice(&[kind, flags]);
                buf.extend_from_slice(&stream.to_be_bytes());
                buf.extend_from_slice(&payload);
                conn.handle_read(&buf, now);
            }
            5 => {
                let raw = input.bytes(32).to_vec();
                conn.handle_read(&raw, now);
            }
            6 => {
                let req = http::Request::builder()
                    .uri("http://fuzz.test/")
                    .body(())
                    .unwrap_or_default();
                if let Ok(id) = conn.send_request(&req, input.byte() % 2 == 0) {
                    known.push(id);
                }
            }
            7 => {
                let id = pick(&mut input, &known, &conn);
                let _ = conn.send_response(id, &http::Response::new(()), input.byte() % 2 == 0);
                let data = Bytes::copy_from_slice(input.bytes(200));
                let _ = conn.send_data(id, data, input.byte() % 2 == 0);
            }
            8 => {
                let id = pick(&mut input, &known, &conn);
                let _ = conn.reset(id, ErrorCode(u32::from(input.byte() % 14)));
                let n = usize::from(input.byte()) * 8;
                conn.release_capacity(id, n);
            }
            9 => now += Duration::from_millis(u64::from(input.byte()) * 100),
            10 => match input.byte() % 4 {
                0 => conn.graceful_shutdown(now),
                1 => {
                    let _ = conn.ping(
                        input
                            .u32()
                            .to_be_bytes()
                            .repeat(2)
                            .try_into()
                            .unwrap_or([0; 8]),
                    );
                }
                2 => conn.handle_eof(now),
                _ => conn.close(ErrorCode::INTERNAL_ERROR, Bytes::new()),
            },
            _ => {
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    conn.handle_timeout(now);
                    // A timer still due would make a runtime spin.
                    if let Some(t) = conn.poll_timeout() {
                        assert!(t > now, "timer still due after handle_timeout");
                    }
                }
            }
        }
        out.clear();
        conn.poll_transmit(now, &mut out);
        while let Some(event) = conn.poll_event() {
            if let Event::Request { id, .. } = event {
                known.push(id);
            }
        }
        assert!(out.len() < 1 << 20, "unbounded output");
    }
}

fn pick(input: &mut Input<'_>, known: &[StreamId], _conn: &Connection) -> StreamId {
    if known.is_empty() {
        StreamId::new(u32::from(input.byte()))
    } else {
        known[usize::from(input.byte()) % known.len()]
    }
}

/// Two correct endpoints under random application commands: whatever the commands,
/// neither may ever detect a protocol error in the other. Returns how many body
/// chunks and trailer sections were delivered, so tests can check the run did work.
pub fn pair(data: &[u8]) -> usize {
    let mut delivered = 0;
    let mut input = Input(data);
    let mut now = Instant::now();
    let mut client = Connection::new(Role::Client, small_config(), now);
    let mut server = Connection::new(Role::Server, small_config(), now);
    let mut client_streams: Vec<StreamId> = Vec::new();
    let mut server_streams: Vec<StreamId> = Vec::new();
    let mut wire = BytesMut::new();
    while !input.is_empty() {
        match input.byte() % 8 {
            0 => {
                let req = http::Request::builder()
                    .method(if input.byte() % 2 == 0 { "GET" } else { "POST" })
                    .uri("http://fuzz.test/p")
                    .header("x-n", input.byte().to_string())
                    .body(())
                    .unwrap_or_default();
                if let Ok(id) = client.send_request(&req, input.byte() % 2 == 0) {
                    client_streams.push(id);
                }
            }
            1 => {
                if let Some(&id) = pick_from(&mut input, &client_streams) {
                    let data = Bytes::copy_from_slice(input.bytes(255));
                    let _ = client.send_data(id, data, input.byte() % 2 == 0);
                }
            }
            2 => {
                if let Some(&id) = pick_from(&mut input, &server_streams) {
                    let _ = server.send_response(id, &http::Response::new(()), false);
                    let data = Bytes::copy_from_slice(input.bytes(255));
                    let _ = server.send_data(id, data, false);
                    if input.byte() % 2 == 0 {
                        let mut t = http::HeaderMap::new();
                        t.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let _ = server.send_trailers(id, &t);
                    }
                }
            }
            3 => {
                let client_side = input.byte() % 2 == 0;
                let (conn, ids) = if client_side {
                    (&mut client, &client_streams)
                } else {
                    (&mut server, &server_streams)
                };
                if let Some(&id) = pick_from(&mut input, ids) {
                    let _ = conn.reset(id, ErrorCode::CANCEL);
                }
            }
            4 => match input.byte() {
                // Rare, so that most runs keep the connection long enough to matter.
                0..=3 => server.graceful_shutdown(now),
                4..=5 => client.graceful_shutdown(now),
                _ => {}
            },
            5 => now += Duration::from_millis(u64::from(input.byte()) * 10),
            _ => {}
        }
        // Deliver everything, releasing received data as an application would.
        for _ in 0..64 {
            wire.clear();
            let a = client.poll_transmit(now, &mut wire);
            server.handle_read(&wire, now);
            wire.clear();
            let b = server.poll_transmit(now, &mut wire);
            client.handle_read(&wire, now);
            for (conn, ids) in [
                (&mut client, &mut client_streams),
                (&mut server, &mut server_streams),
            ] {
                while let Some(event) = conn.poll_event() {
                    check_no_protocol_error(&event);
                    match event {
                        Event::Request { id, .. } => ids.push(id),
                        Event::Data { id, data, .. } => {
                            delivered += 1;
                            conn.release_capacity(id, data.len());
                        }
                        Event::Trailers { .. } | Event::Response { .. } => delivered += 1,
                        _ => {}
                    }
                }
            }
            if a + b == 0 {
                break;
            }
        }
        for conn in [&mut client, &mut server] {
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                conn.handle_timeout(now);
            }
        }
    }
    delivered
}

fn pick_from<'a, T>(input: &mut Input<'_>, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(usize::from(input.byte()) % items.len())
    }
}

fn check_no_protocol_error(event: &Event) {
    use crate::{Error, Initiator};
    let error = match event {
        Event::StreamError { error, .. } | Event::Closed(Some(error)) => error,
        _ => return,
    };
    if let Error::GoAway {
        initiator: Initiator::Library,
        goaway,
        reason,
    } = error
    {
        // Only a SETTINGS timeout may come from the clock, not from the peer.
        assert_eq!(
            goaway.code,
            ErrorCode::SETTINGS_TIMEOUT,
            "protocol error between correct peers: {reason:?}"
        );
    }
    if let Error::Reset {
        initiator: Initiator::Library,
        code,
        reason,
        ..
    } = error
    {
        panic!("stream error {code} between correct peers: {reason:?}");
    }
}

#[cfg(test)]
mod tests {
    fn inputs(seed: u64, count: usize, max_len: usize) -> impl Iterator<Item = Vec<u8>> {
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..count).map(move |_| {
            let len = (next() as usize) % max_len;
            (0..len).map(|_| next() as u8).collect()
        })
    }

    #[test]
    fn frame_decode_survives_random_input() {
        for input in inputs(1, 5_000, 256) {
            super::frame_decode(&input);
        }
    }

    #[test]
    fn connection_survives_random_frames_and_commands() {
        for input in inputs(2, 3_000, 512) {
            super::connection(&input);
        }
    }

    #[test]
    fn correct_peers_never_see_protocol_errors() {
        let delivered: usize = inputs(3, 2_000, 1024)
            .map(|input| super::pair(&input))
            .sum();
        // The random commands must actually move requests, bodies and trailers.
        assert!(delivered > 3_000, "only {delivered} deliveries");
    }
}
