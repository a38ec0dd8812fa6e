//! Entry points for the fuzz targets under `fuzz/`, kept in the crate so that unit
//! tests run them too and they never stop compiling. Compiled only for tests and with
//! the `fuzzing` feature (which `fuzz/Cargo.toml` enables).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::frame;
use crate::{
    Config, Connection, ErrorCode, Event, Keepalive, PingPolicy, Role, StreamId, StreamState,
    PREFACE,
};

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
    // The configurations here are fixed, valid by construction.
    let mut conn = Connection::new(role, config, now).expect("a valid config");
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
/// neither may ever detect a protocol error in the other, and every head and trailer
/// section is delivered with exactly the fields that were sent (a field block that
/// reached the wire out of HPACK encoding order would decode to other fields, or fail).
/// The server's SETTINGS_MAX_CONCURRENT_STREAMS is low (1 to 3), so requests queue and
/// open as others end, in the same transmit round as other streams' trailers. Returns
/// how many body chunks and trailer sections were delivered, so tests can check the
/// run did work.
pub fn pair(data: &[u8]) -> usize {
    let mut input = Input(data);
    let now = Instant::now();
    let server_config = Config {
        max_concurrent_streams: 1 + u32::from(input.byte() % 3),
        ..small_config()
    };
    let mut p = Pair {
        client: Connection::new(Role::Client, small_config(), now).expect("a valid config"),
        server: Connection::new(Role::Server, server_config, now).expect("a valid config"),
        now,
        client_streams: Vec::new(),
        server_streams: Vec::new(),
        sent: HashMap::new(),
        delivered: 0,
    };
    while !input.is_empty() {
        // Commands pick among live streams, so that they keep acting on streams in
        // every state rather than mostly on finished ones.
        let (client, server) = (&p.client, &p.server);
        p.client_streams
            .retain(|id| client.stream_state(*id).is_some());
        p.server_streams
            .retain(|id| server.stream_state(*id).is_some());
        match input.byte() % 9 {
            0 => {
                let path = format!("/p{}", input.byte());
                let n = input.byte().to_string();
                let req = http::Request::builder()
                    .method(if input.byte() % 2 == 0 { "GET" } else { "POST" })
                    .uri(format!("http://fuzz.test{path}"))
                    .header("x-n", &n)
                    .body(())
                    .unwrap_or_default();
                if let Ok(id) = p.client.send_request(&req, input.byte() % 2 == 0) {
                    p.client_streams.push(id);
                    let fields = vec![(":path".to_string(), path), ("x-n".to_string(), n)];
                    p.sent.insert((true, id, false), fields);
                }
            }
            1 => {
                if let Some(&id) = pick_from(&mut input, &p.client_streams) {
                    let data = Bytes::copy_from_slice(input.bytes(255));
                    let _ = p.client.send_data(id, data, input.byte() % 2 == 0);
                }
            }
            2 => {
                if let Some(&id) = pick_from(&mut input, &p.server_streams) {
                    let r = input.byte().to_string();
                    let res = http::Response::builder()
                        .header("x-r", &r)
                        .body(())
                        .unwrap_or_default();
                    if p.server.send_response(id, &res, false).is_ok() {
                        p.sent
                            .insert((false, id, false), vec![("x-r".to_string(), r)]);
                    }
                    let data = Bytes::copy_from_slice(input.bytes(255));
                    let end = input.byte() % 4;
                    let _ = p.server.send_data(id, data, end == 0);
                    if end == 1 || end == 2 {
                        let status = (input.byte() % 17).to_string();
                        p.send_trailers(false, id, "grpc-status", status);
                    }
                }
            }
            3 => {
                let client_side = input.byte() % 2 == 0;
                let (conn, ids) = if client_side {
                    (&mut p.client, &p.client_streams)
                } else {
                    (&mut p.server, &p.server_streams)
                };
                if let Some(&id) = pick_from(&mut input, ids) {
                    let _ = conn.reset(id, ErrorCode::CANCEL);
                }
            }
            4 => match input.byte() {
                // Rare, so that most runs keep the connection long enough to matter.
                0..=3 => p.server.graceful_shutdown(p.now),
                4..=5 => p.client.graceful_shutdown(p.now),
                _ => {}
            },
            5 => p.now += Duration::from_millis(u64::from(input.byte()) * 10),
            6 => {
                // Client trailers (gRPC client streaming ends this way), also on
                // streams still queued behind the server's concurrency limit.
                if let Some(&id) = pick_from(&mut input, &p.client_streams) {
                    let value = format!("v{}", input.byte());
                    p.send_trailers(true, id, "x-t", value);
                }
            }
            7 => {
                // In one transmit round, the client ends a stream whose response is
                // complete (freeing a slot, which opens a queued stream at once) and
                // ends others with trailers or END_STREAM: the round then both encodes
                // HEADERS and trailers.
                let done: Vec<StreamId> = p
                    .client_streams
                    .iter()
                    .copied()
                    .filter(|id| p.client.stream_state(*id) == Some(StreamState::HalfClosedRemote))
                    .collect();
                if let Some(&id) = pick_from(&mut input, &done) {
                    let _ = p.client.send_data(id, Bytes::new(), true);
                }
                for _ in 0..1 + input.byte() % 3 {
                    if let Some(&id) = pick_from(&mut input, &p.client_streams) {
                        if input.byte() % 2 == 0 {
                            let data = Bytes::copy_from_slice(input.bytes(16));
                            let _ = p.client.send_data(id, data, true);
                        } else {
                            let value = format!("w{}", input.byte());
                            p.send_trailers(true, id, "x-t", value);
                        }
                    }
                }
            }
            _ => {}
        }
        // Usually deliver at once; sometimes let commands pile up, so that one
        // transmit round carries the work of several streams.
        if input.byte() % 4 != 0 {
            p.deliver();
        }
    }
    p.deliver();
    p.delivered
}

/// The state of one [`pair`] run.
struct Pair {
    client: Connection,
    server: Connection,
    now: Instant,
    client_streams: Vec<StreamId>,
    server_streams: Vec<StreamId>,
    /// What each side sent, by (sent by the client, stream, trailers), to compare with
    /// what the other side receives.
    sent: SentFields,
    delivered: usize,
}

impl Pair {
    /// Moves bytes both ways until both sides are idle, releasing received data as an
    /// application would, checking every event; then fires due timers.
    fn deliver(&mut self) {
        let mut wire = BytesMut::new();
        for _ in 0..64 {
            wire.clear();
            let a = self.client.poll_transmit(self.now, &mut wire);
            self.server.handle_read(&wire, self.now);
            // The server's output goes the zero-copy way: vectored, and each buffer
            // read straight into the client's receive buffer (frames split across
            // reads).
            let mut chunks = VecDeque::new();
            let b = self.server.poll_transmit_vectored(self.now, &mut chunks);
            for chunk in chunks {
                self.client.recv_buffer().extend_from_slice(&chunk);
                self.client.handle_received(self.now);
            }
            for (conn, ids, from_client) in [
                (&mut self.client, &mut self.client_streams, false),
                (&mut self.server, &mut self.server_streams, true),
            ] {
                while let Some(event) = conn.poll_event() {
                    check_no_protocol_error(&event);
                    match event {
                        Event::Request { id, request, .. } => {
                            let mut got = vec![(":path".to_string(), request.uri().path().into())];
                            got.extend(fields_of(request.headers()));
                            check_fields(&self.sent, (from_client, id, false), got);
                            ids.push(id);
                        }
                        Event::Response { id, response, .. } => {
                            self.delivered += 1;
                            let got = fields_of(response.headers());
                            check_fields(&self.sent, (from_client, id, false), got);
                        }
                        Event::Trailers { id, trailers } => {
                            self.delivered += 1;
                            let got = fields_of(&trailers);
                            check_fields(&self.sent, (from_client, id, true), got);
                        }
                        Event::Data { id, data, .. } => {
                            self.delivered += 1;
                            conn.release_capacity(id, data.len());
                        }
                        _ => {}
                    }
                }
            }
            if a + b == 0 {
                self.check_nothing_stalled();
                break;
            }
        }
        for conn in [&mut self.client, &mut self.server] {
            if conn.poll_timeout().is_some_and(|t| t <= self.now) {
                conn.handle_timeout(self.now);
            }
        }
    }

    /// Once both sides are idle, no open stream may hold data that both flow-control
    /// windows would let it send (it would wait forever for a WINDOW_UPDATE that
    /// nobody owes it).
    fn check_nothing_stalled(&self) {
        for (conn, ids) in [
            (&self.client, &self.client_streams),
            (&self.server, &self.server_streams),
        ] {
            for &id in ids {
                let open = !matches!(conn.stream_state(id), None | Some(StreamState::Idle));
                if open && conn.buffered_send(id) > 0 {
                    assert_eq!(
                        conn.send_capacity(id),
                        0,
                        "{id:?} holds {} bytes that its windows allow to send",
                        conn.buffered_send(id)
                    );
                }
            }
        }
    }

    fn send_trailers(&mut self, client: bool, id: StreamId, name: &'static str, value: String) {
        let Ok(v) = http::HeaderValue::from_str(&value) else {
            return;
        };
        let mut t = http::HeaderMap::new();
        t.insert(name, v);
        let conn = if client {
            &mut self.client
        } else {
            &mut self.server
        };
        if conn.send_trailers(id, &t).is_ok() {
            self.sent
                .insert((client, id, true), vec![(name.to_string(), value)]);
        }
    }
}

type SentFields = HashMap<(bool, StreamId, bool), Vec<(String, String)>>;

fn fields_of(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_string(), v)
        })
        .collect()
}

fn check_fields(sent: &SentFields, key: (bool, StreamId, bool), got: Vec<(String, String)>) {
    let expected = sent.get(&key);
    assert_eq!(
        expected,
        Some(&got),
        "fields delivered on {:?} (sent by the {}, trailers: {}) differ from those sent",
        key.1,
        if key.0 { "client" } else { "server" },
        key.2
    );
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
