//! Test support: an in-memory pair of endpoints on a virtual clock, and a scripted
//! peer that speaks raw frames to one endpoint under test.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use steadfast_hpack::{Decoder, Encoder, Field};
use steadfast_proto::frame::{self, Frame, Headers, SettingsFrame};
use steadfast_proto::{
    Config, Connection, Error, ErrorCode, Event, Fate, GoAway, Initiator, Role, Settings, StreamId,
    PREFACE,
};

/// A client and a server joined by an in-memory transport.
pub struct Pair {
    pub client: Connection,
    pub server: Connection,
    pub now: Instant,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    /// Bytes in flight, per direction, so tests can hold delivery back.
    pub to_server: BytesMut,
    pub to_client: BytesMut,
}

impl Pair {
    pub fn new() -> Self {
        Self::with_configs(Config::default(), Config::default())
    }

    pub fn with_configs(client: Config, server: Config) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            client: Connection::new(Role::Client, client, now).expect("a valid config"),
            server: Connection::new(Role::Server, server, now).expect("a valid config"),
            now,
            client_events: Vec::new(),
            server_events: Vec::new(),
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
        };
        pair.drive();
        pair
    }

    /// Moves bytes both ways until neither side has anything to write.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            let a = self.client.poll_transmit(self.now, &mut self.to_server);
            let b = self.server.poll_transmit(self.now, &mut self.to_client);
            let progressed = a + b > 0 || !self.to_server.is_empty() || !self.to_client.is_empty();
            if !self.to_server.is_empty() {
                let bytes = self.to_server.split();
                self.server.handle_read(&bytes, self.now);
            }
            if !self.to_client.is_empty() {
                let bytes = self.to_client.split();
                self.client.handle_read(&bytes, self.now);
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            if !progressed {
                return;
            }
        }
        panic!("pair did not settle");
    }

    /// Advances the virtual clock, firing due timers.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        for conn in [&mut self.client, &mut self.server] {
            if conn.poll_timeout().is_some_and(|t| t <= self.now) {
                conn.handle_timeout(self.now);
            }
        }
        self.drive();
    }

    /// Advances the virtual clock by `by`, firing every timer of both sides at its own
    /// deadline, in order, and moving bytes after each. Panics if a timer is still due
    /// right after `handle_timeout` acted on it (a busy loop for a runtime).
    pub fn run_for(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= end);
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            for conn in [&mut self.client, &mut self.server] {
                if conn.poll_timeout().is_some_and(|t| t <= self.now) {
                    conn.handle_timeout(self.now);
                    assert_not_due(conn, self.now);
                }
            }
            self.drive();
        }
        self.now = end;
        self.drive();
    }

    pub fn take_client_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.client_events)
    }

    pub fn take_server_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.server_events)
    }
}

/// A runtime calls `handle_timeout` whenever `poll_timeout` has passed: a timer still
/// due right after it acted would make the runtime spin.
pub fn assert_not_due(conn: &Connection, now: Instant) {
    if let Some(t) = conn.poll_timeout() {
        assert!(
            t > now,
            "a timer is still due after handle_timeout ({:?} late)",
            now - t
        );
    }
}

pub fn request(method: &str, path: &str) -> http::Request<()> {
    http::Request::builder()
        .method(method)
        .uri(format!("http://example.test{path}"))
        .body(())
        .unwrap()
}

pub fn response(status: u16) -> http::Response<()> {
    http::Response::builder().status(status).body(()).unwrap()
}

/// Frame type codes, for [`Peer::send_raw`].
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Flag bits, for [`Peer::send_raw`].
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Shorthand for a stream id.
pub fn sid(id: u32) -> StreamId {
    StreamId::new(id)
}

/// A SETTINGS payload from (identifier, value) pairs, in order.
pub fn settings_payload(entries: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 6);
    for (id, value) in entries {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

/// The RST_STREAM frame `id`/`code`, for exact comparisons.
pub fn rst(id: u32, code: ErrorCode) -> Frame {
    Frame::RstStream(frame::RstStream::new(sid(id), code))
}

/// The WINDOW_UPDATE frame `id`/`increment`, for exact comparisons.
pub fn window_update(id: u32, increment: u32) -> Frame {
    Frame::WindowUpdate(frame::WindowUpdate::new(sid(id), increment))
}

/// The single `Event::StreamError` for `id` in `events`, which must be a reset this
/// library initiated with `code`; returns its fate.
pub fn library_reset(events: &[Event], id: u32, code: ErrorCode) -> Option<Fate> {
    let errors: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::StreamError { id: i, .. } if *i == sid(id)))
        .collect();
    match errors.as_slice() {
        [Event::StreamError {
            error:
                Error::Reset {
                    stream_id,
                    code: c,
                    initiator: Initiator::Library,
                    reason: Some(_),
                },
            fate,
            ..
        }] if *stream_id == sid(id) && *c == code => *fate,
        other => panic!(
            "expected one library RST_STREAM({id}, {code}) event, got {other:?} in {events:?}"
        ),
    }
}

/// A field block the endpoint sent, decoded: (stream, fields, END_STREAM).
pub type Block = (StreamId, Vec<(String, String)>, bool);

/// A scripted peer: encodes frames by hand and checks exactly what the connection
/// under test writes back.
pub struct Peer {
    pub conn: Connection,
    pub now: Instant,
    pub encoder: Encoder,
    pub decoder: Decoder,
    inbox: BytesMut,
    pub events: Vec<Event>,
    /// Field blocks the endpoint sent, decoded by [`Peer::frames`] in order: (stream,
    /// fields, END_STREAM).
    pub blocks: Vec<Block>,
    /// A field block whose CONTINUATION frames have not all been read yet.
    partial_block: Option<(StreamId, BytesMut, bool)>,
}

impl Peer {
    /// A server under test, with the client preface and an empty SETTINGS already
    /// exchanged; the server's own SETTINGS are consumed and acknowledged.
    pub fn server(config: Config) -> Self {
        let mut peer = Self::raw(Role::Server, config);
        peer.send_bytes(PREFACE);
        peer.send(Frame::Settings(SettingsFrame::Values(Settings::default())));
        peer.handshake(true);
        peer
    }

    /// A client under test, handshake done.
    pub fn client(config: Config) -> Self {
        let mut peer = Self::raw(Role::Client, config);
        let preface = peer.read_bytes(PREFACE.len());
        assert_eq!(&preface[..], PREFACE);
        peer.send(Frame::Settings(SettingsFrame::Values(Settings::default())));
        peer.handshake(true);
        peer
    }

    /// Like [`Peer::server`], with these SETTINGS from the peer; the handshake's events
    /// are discarded, so `take_events` only returns what follows.
    pub fn server_with(config: Config, settings: Settings) -> Self {
        let mut peer = Self::raw(Role::Server, config);
        peer.send_bytes(PREFACE);
        peer.send(Frame::Settings(SettingsFrame::Values(settings)));
        peer.handshake(true);
        peer.take_events();
        peer
    }

    /// Like [`Peer::client`], with these SETTINGS from the peer; the handshake's events
    /// are discarded.
    pub fn client_with(config: Config, settings: Settings) -> Self {
        let mut peer = Self::raw(Role::Client, config);
        let preface = peer.read_bytes(PREFACE.len());
        assert_eq!(&preface[..], PREFACE);
        peer.send(Frame::Settings(SettingsFrame::Values(settings)));
        peer.handshake(true);
        peer.take_events();
        peer
    }

    /// A server under test that got the preface and an empty SETTINGS (and acknowledged
    /// it), but whose own SETTINGS the peer never acknowledges. Events are discarded.
    pub fn server_unacked(config: Config) -> Self {
        let mut peer = Self::raw(Role::Server, config);
        peer.send_bytes(PREFACE);
        peer.send(Frame::Settings(SettingsFrame::Values(Settings::default())));
        peer.handshake(false);
        peer.take_events();
        peer
    }

    /// A server under test that has received nothing; what it wrote on its own (its
    /// SETTINGS and maybe a WINDOW_UPDATE) is already read.
    pub fn server_unestablished(config: Config) -> Self {
        let mut peer = Self::raw(Role::Server, config);
        peer.frames();
        peer
    }

    /// A client under test that has received nothing; its preface, SETTINGS and maybe a
    /// WINDOW_UPDATE are already read.
    pub fn client_unestablished(config: Config) -> Self {
        let mut peer = Self::raw(Role::Client, config);
        let preface = peer.read_bytes(PREFACE.len());
        assert_eq!(&preface[..], PREFACE);
        peer.frames();
        peer
    }

    /// The connection under test, nothing exchanged yet.
    pub fn raw(role: Role, config: Config) -> Self {
        let now = Instant::now();
        Self {
            conn: Connection::new(role, config, now).expect("a valid config"),
            now,
            encoder: Encoder::new(),
            decoder: Decoder::new(4096),
            inbox: BytesMut::new(),
            events: Vec::new(),
            blocks: Vec::new(),
            partial_block: None,
        }
    }

    fn handshake(&mut self, ack: bool) {
        // The endpoint's SETTINGS (and maybe a connection WINDOW_UPDATE), then its
        // ACK of ours, in some order.
        let mut saw_settings = false;
        let mut saw_ack = false;
        while !(saw_settings && saw_ack) {
            match self.recv().expect("handshake frame") {
                Frame::Settings(SettingsFrame::Values(_)) => saw_settings = true,
                Frame::Settings(SettingsFrame::Ack) => saw_ack = true,
                Frame::WindowUpdate(w) if w.stream_id.is_zero() => {}
                other => panic!("unexpected frame during handshake: {other:?}"),
            }
        }
        if ack {
            self.send(Frame::Settings(SettingsFrame::Ack));
        }
        self.pump_events();
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.conn.handle_read(bytes, self.now);
        self.pump_events();
    }

    pub fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        self.send_bytes(&buf);
    }

    /// Sends a raw frame: header fields and payload exactly as given.
    pub fn send_raw(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut buf = Vec::with_capacity(9 + payload.len());
        let len = (payload.len() as u32).to_be_bytes();
        buf.extend_from_slice(&len[1..]);
        buf.push(kind);
        buf.push(flags);
        buf.extend_from_slice(&stream.to_be_bytes());
        buf.extend_from_slice(payload);
        self.send_bytes(&buf);
    }

    /// HPACK-encodes fields with the peer's encoder.
    pub fn block(&mut self, fields: &[(&str, &str)]) -> Bytes {
        let mut buf = BytesMut::new();
        self.encoder.encode(
            fields.iter().map(|(n, v)| Field {
                name: n.as_bytes(),
                value: v.as_bytes(),
                sensitive: false,
            }),
            &mut buf,
        );
        buf.freeze()
    }

    pub fn send_headers(&mut self, id: u32, fields: &[(&str, &str)], end_stream: bool) {
        let fragment = self.block(fields);
        self.send(Frame::Headers(Headers {
            stream_id: StreamId::new(id),
            priority: None,
            fragment,
            end_stream,
            end_headers: true,
        }));
    }

    pub fn send_request(&mut self, id: u32, end_stream: bool) {
        self.send_headers(
            id,
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "example.test"),
                (":path", "/"),
            ],
            end_stream,
        );
    }

    pub fn send_data(&mut self, id: u32, data: &[u8], end_stream: bool) {
        self.send(Frame::Data(frame::Data::new(
            StreamId::new(id),
            Bytes::copy_from_slice(data),
            end_stream,
        )));
    }

    fn pump_events(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            self.events.push(e);
        }
    }

    fn fill(&mut self) {
        self.conn.poll_transmit(self.now, &mut self.inbox);
        self.pump_events();
    }

    pub fn read_bytes(&mut self, n: usize) -> Bytes {
        self.fill();
        assert!(
            self.inbox.len() >= n,
            "expected {n} bytes, have {}",
            self.inbox.len()
        );
        self.inbox.split_to(n).freeze()
    }

    /// The next frame the endpoint wrote, if any.
    pub fn recv(&mut self) -> Option<Frame> {
        self.fill();
        frame::decode(&mut self.inbox, frame::MAX_MAX_FRAME_SIZE)
            .expect("endpoint wrote a valid frame")
    }

    /// All frames written so far.
    pub fn recv_all(&mut self) -> Vec<Frame> {
        std::iter::from_fn(|| self.recv()).collect()
    }

    /// Asserts the endpoint wrote nothing.
    pub fn expect_silence(&mut self) {
        let frames = self.recv_all();
        assert!(frames.is_empty(), "expected no frames, got {frames:?}");
    }

    /// Expects a GOAWAY with this code as the next frame, and the connection closed.
    pub fn expect_goaway(&mut self, code: steadfast_proto::ErrorCode) -> steadfast_proto::GoAway {
        let frames = self.recv_all();
        let goaway = frames
            .iter()
            .find_map(|f| match f {
                Frame::GoAway(g) => Some(g.0.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("expected GOAWAY({code}), got {frames:?}"));
        assert_eq!(goaway.code, code, "GOAWAY code; frames: {frames:?}");
        assert!(
            self.conn.is_closed(),
            "connection should be closed after GOAWAY({code})"
        );
        goaway
    }

    /// Expects a RST_STREAM on `id` with this code, and the connection still open.
    pub fn expect_rst(&mut self, id: u32, code: steadfast_proto::ErrorCode) {
        let frames = self.recv_all();
        let found = frames.iter().any(|f| {
            matches!(f, Frame::RstStream(r) if r.stream_id == StreamId::new(id) && r.code == code)
        });
        assert!(found, "expected RST_STREAM({id}, {code}), got {frames:?}");
        assert!(
            !self.conn.is_closed(),
            "connection must stay open after a stream error"
        );
        assert!(
            !frames.iter().any(|f| matches!(f, Frame::GoAway(_))),
            "a stream error must not send GOAWAY: {frames:?}"
        );
    }

    /// Decodes a HEADERS frame's block with the peer's decoder.
    pub fn decode(&mut self, fragment: &[u8]) -> Vec<(String, String)> {
        self.decoder
            .decode(fragment, 1 << 20)
            .expect("valid HPACK")
            .fields
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                )
            })
            .collect()
    }

    /// Like [`Peer::take_events`], without the bookkeeping events `StreamsAvailable`
    /// (reported whenever a locally opened stream ends) and `StreamClosed` (whenever a
    /// stream completes normally).
    pub fn take_stream_events(&mut self) -> Vec<Event> {
        let mut events = self.take_events();
        events.retain(|e| !matches!(e, Event::StreamsAvailable | Event::StreamClosed { .. }));
        events
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.pump_events();
        std::mem::take(&mut self.events)
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.conn.poll_timeout().is_some_and(|t| t <= self.now) {
            self.conn.handle_timeout(self.now);
        }
        self.pump_events();
    }

    /// Advances the virtual clock by `by`, firing every timer at its own deadline, in
    /// order. Panics if a timer is still due right after `handle_timeout` acted on it.
    pub fn run_for(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(t) = self.conn.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.conn.handle_timeout(self.now);
            assert_not_due(&self.conn, self.now);
            self.pump_events();
        }
        self.now = end;
    }

    /// All frames written so far, decoding every field block the endpoint sent (in
    /// order, so the peer's HPACK decoder stays in step) into [`Peer::blocks`].
    pub fn frames(&mut self) -> Vec<Frame> {
        let frames = self.recv_all();
        for f in &frames {
            match f {
                Frame::Headers(h) => {
                    assert!(
                        self.partial_block.is_none(),
                        "HEADERS inside a field block: {frames:?}"
                    );
                    self.partial_block =
                        Some((h.stream_id, BytesMut::from(&h.fragment[..]), h.end_stream));
                    if h.end_headers {
                        self.finish_block();
                    }
                }
                Frame::Continuation(c) => {
                    let (id, block, _) = self
                        .partial_block
                        .as_mut()
                        .expect("CONTINUATION without HEADERS");
                    assert_eq!(*id, c.stream_id, "CONTINUATION on another stream");
                    block.extend_from_slice(&c.fragment);
                    if c.end_headers {
                        self.finish_block();
                    }
                }
                other => assert!(
                    self.partial_block.is_none(),
                    "{other:?} inside a field block"
                ),
            }
        }
        frames
    }

    fn finish_block(&mut self) {
        let (id, block, end_stream) = self.partial_block.take().expect("field block");
        let fields = self.decode(&block);
        self.blocks.push((id, fields, end_stream));
    }

    /// The decoded field blocks read so far, emptied.
    pub fn take_blocks(&mut self) -> Vec<Block> {
        std::mem::take(&mut self.blocks)
    }

    /// Asserts the endpoint wrote exactly these frames.
    pub fn expect_frames(&mut self, expected: &[Frame]) {
        let frames = self.frames();
        assert_eq!(frames, expected, "frames written by the endpoint");
    }

    /// Asserts a connection error: the endpoint wrote exactly one frame, GOAWAY with this
    /// code and last-stream-id and a debug text, it is closed with nothing left to
    /// write, its sticky error is that GOAWAY (initiated by the library), the
    /// application's last event is `Closed` with it, and every stream still open
    /// failed with it. Further input is ignored. Returns the GOAWAY and the events.
    pub fn expect_conn_error(
        &mut self,
        code: ErrorCode,
        last_stream_id: u32,
    ) -> (GoAway, Vec<Event>) {
        let frames = self.frames();
        let goaway = match frames.as_slice() {
            [Frame::GoAway(g)] => g.0.clone(),
            other => panic!("expected only GOAWAY({code}, last={last_stream_id}), got {other:?}"),
        };
        assert_eq!(goaway.code, code, "GOAWAY code ({goaway})");
        assert_eq!(
            goaway.last_stream_id,
            sid(last_stream_id),
            "GOAWAY last-stream-id ({goaway})"
        );
        assert!(!goaway.debug_data.is_empty(), "GOAWAY says why");
        assert!(self.conn.is_closed(), "closed after a connection error");
        assert!(
            self.conn.is_done(),
            "nothing left to write after the GOAWAY"
        );
        let reason = String::from_utf8(goaway.debug_data.to_vec()).expect("debug text");
        let expected = Error::GoAway {
            goaway: goaway.clone(),
            initiator: Initiator::Library,
            reason: Some(reason.into()),
        };
        assert_eq!(self.conn.error(), Some(&expected));
        let events = self.take_events();
        match events.last() {
            Some(Event::Closed(Some(e))) => assert_eq!(e, &expected),
            other => panic!("expected Closed({expected:?}) last, got {other:?} in {events:?}"),
        }
        for e in &events {
            if let Event::StreamError { error, .. } = e {
                if matches!(error, Error::GoAway { .. }) {
                    assert_eq!(error, &expected);
                }
            }
        }
        // The connection is finished: nothing more is processed or written.
        self.send_raw(kind::PING, 0, 0, b"after!!!");
        assert!(self.recv_all().is_empty());
        assert!(self.take_events().is_empty());
        (goaway, events)
    }

    /// Asserts a stream error: the endpoint wrote exactly RST_STREAM(id, code) and the
    /// connection stays open. Returns the events.
    pub fn expect_stream_error(&mut self, id: u32, code: ErrorCode) -> Vec<Event> {
        self.expect_frames(&[rst(id, code)]);
        assert!(
            !self.conn.is_closed(),
            "a stream error must not close the connection"
        );
        assert_eq!(
            self.conn.stream_state(sid(id)),
            None,
            "stream {id} is closed"
        );
        self.take_stream_events()
    }

    /// (Server under test) A GET on `id` gets through: one `Request` event, and the
    /// response the application sends reaches the wire.
    pub fn server_roundtrip(&mut self, id: u32) {
        self.send_request(id, true);
        let events = self.take_stream_events();
        match events.as_slice() {
            [Event::Request {
                id: i,
                end_stream: true,
                request,
            }] if *i == sid(id) => assert_eq!(request.uri().path(), "/"),
            other => panic!("expected the request on stream {id}, got {other:?}"),
        }
        self.conn
            .send_response(sid(id), &response(200), true)
            .unwrap();
        let frames = self.frames();
        assert!(
            matches!(frames.as_slice(), [Frame::Headers(h)] if h.stream_id == sid(id) && h.end_stream),
            "response HEADERS on {id}: {frames:?}"
        );
        let (bid, fields, _) = self.blocks.pop().unwrap();
        assert_eq!(bid, sid(id));
        assert_eq!(fields, [(":status".to_string(), "200".to_string())]);
        assert_eq!(self.conn.stream_state(sid(id)), None);
        self.take_stream_events();
    }

    /// (Client under test) Opens a stream with `request` and reads its HEADERS.
    pub fn client_open(&mut self, req: &http::Request<()>, end_stream: bool) -> StreamId {
        let id = self.conn.send_request(req, end_stream).unwrap();
        let frames = self.frames();
        assert!(
            matches!(frames.as_slice(), [Frame::Headers(h)] if h.stream_id == id && h.end_stream == end_stream),
            "request HEADERS on {id:?}: {frames:?}"
        );
        id
    }

    /// (Client under test) A GET gets through: the response reaches the application.
    pub fn client_roundtrip(&mut self) -> StreamId {
        let id = self.client_open(&request("GET", "/"), true);
        self.send_headers(id.get(), &[(":status", "200")], true);
        let events = self.take_stream_events();
        match events.as_slice() {
            [Event::Response {
                id: i,
                response,
                end_stream: true,
            }] if *i == id => assert_eq!(response.status(), 200),
            other => panic!("expected the response on {id:?}, got {other:?}"),
        }
        self.expect_silence();
        id
    }
}

/// A server under test, handshake done, with default settings on both sides.
pub fn server() -> Peer {
    Peer::server_with(Config::default(), Settings::default())
}

/// A server under test with this configuration.
pub fn server_with(config: Config) -> Peer {
    Peer::server_with(config, Settings::default())
}

/// A client under test, handshake done, with default settings on both sides.
pub fn client() -> Peer {
    Peer::client_with(Config::default(), Settings::default())
}

/// The pseudo-headers of a plain GET request.
pub const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "http"),
    (":authority", "example.test"),
    (":path", "/"),
];
