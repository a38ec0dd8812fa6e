//! Test support: an in-memory pair of endpoints on a virtual clock, and a scripted
//! peer that speaks raw frames to one endpoint under test.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use steadfast_hpack::{Decoder, Encoder, Field};
use steadfast_proto::frame::{self, Frame, Headers, SettingsFrame};
use steadfast_proto::{Config, Connection, Event, Role, Settings, StreamId, PREFACE};

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
            client: Connection::new(Role::Client, client, now),
            server: Connection::new(Role::Server, server, now),
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

    pub fn take_client_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.client_events)
    }

    pub fn take_server_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.server_events)
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

/// A scripted peer: encodes frames by hand and checks exactly what the connection
/// under test writes back.
pub struct Peer {
    pub conn: Connection,
    pub now: Instant,
    pub encoder: Encoder,
    pub decoder: Decoder,
    inbox: BytesMut,
    pub events: Vec<Event>,
}

impl Peer {
    /// A server under test, with the client preface and an empty SETTINGS already
    /// exchanged; the server's own SETTINGS are consumed and acknowledged.
    pub fn server(config: Config) -> Self {
        let mut peer = Self::raw(Role::Server, config);
        peer.send_bytes(PREFACE);
        peer.send(Frame::Settings(SettingsFrame::Values(Settings::default())));
        peer.handshake();
        peer
    }

    /// A client under test, handshake done.
    pub fn client(config: Config) -> Self {
        let mut peer = Self::raw(Role::Client, config);
        let preface = peer.read_bytes(PREFACE.len());
        assert_eq!(&preface[..], PREFACE);
        peer.send(Frame::Settings(SettingsFrame::Values(Settings::default())));
        peer.handshake();
        peer
    }

    /// The connection under test, nothing exchanged yet.
    pub fn raw(role: Role, config: Config) -> Self {
        let now = Instant::now();
        Self {
            conn: Connection::new(role, config, now),
            now,
            encoder: Encoder::new(),
            decoder: Decoder::new(4096),
            inbox: BytesMut::new(),
            events: Vec::new(),
        }
    }

    fn handshake(&mut self) {
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
        self.send(Frame::Settings(SettingsFrame::Ack));
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
            &[(":method", "GET"), (":scheme", "http"), (":authority", "example.test"), (":path", "/")],
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

    fn read_bytes(&mut self, n: usize) -> Bytes {
        self.fill();
        assert!(self.inbox.len() >= n, "expected {n} bytes, have {}", self.inbox.len());
        self.inbox.split_to(n).freeze()
    }

    /// The next frame the endpoint wrote, if any.
    pub fn recv(&mut self) -> Option<Frame> {
        self.fill();
        frame::decode(&mut self.inbox, frame::MAX_MAX_FRAME_SIZE).expect("endpoint wrote a valid frame")
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
        assert!(self.conn.is_closed(), "connection should be closed after GOAWAY({code})");
        goaway
    }

    /// Expects a RST_STREAM on `id` with this code, and the connection still open.
    pub fn expect_rst(&mut self, id: u32, code: steadfast_proto::ErrorCode) {
        let frames = self.recv_all();
        let found = frames.iter().any(|f| {
            matches!(f, Frame::RstStream(r) if r.stream_id == StreamId::new(id) && r.code == code)
        });
        assert!(found, "expected RST_STREAM({id}, {code}), got {frames:?}");
        assert!(!self.conn.is_closed(), "connection must stay open after a stream error");
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
}
