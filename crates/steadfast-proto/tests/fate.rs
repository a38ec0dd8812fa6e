//! The one promise: a stream whose fate says retry-safe (`NotSent`, `Refused`) was
//! never handed to the server's application.
//!
//! A scripted case for the failure that broke it (HEADERS encoded but not yet handed
//! to the transport when the connection fails), then a property: a client against a
//! server whose every legal move is random — answer, reset with any code, shed with
//! REFUSED_STREAM before processing, GOAWAY (graceful, immediate, with an error, or a
//! raw one with any legal last-stream-id), crash — with bytes delivered in random
//! slices so that every race between them occurs. `FATE_SEED=N` replays one seed;
//! `FATE_TRACE=1` prints its actions.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use steadfast_proto::frame::{Frame, GoAwayFrame};
use steadfast_proto::{Config, ErrorCode, Event, Fate, GoAway, Settings, StreamId};
use steadfast_testkit::Rng;
use support::{client, kind, request, response, Pair};

/// A connection error detected while a request's HEADERS are encoded but not yet
/// handed to the transport: the request fails `NotSent`, so its HEADERS must never be
/// written — only the GOAWAY goes out. (Before, the HEADERS followed the stream's
/// `NotSent` report onto the wire, where a server could process them.)
#[test]
fn a_request_reported_not_sent_after_a_connection_error_is_never_written() {
    let mut peer = client();
    let id = peer.conn.send_request(&request("POST", "/"), true).unwrap();
    // A PING of the wrong length: FRAME_SIZE_ERROR, a connection error (§6.7).
    peer.send_raw(kind::PING, 0, 0, &[0; 7]);
    let (_, events) = peer.expect_conn_error(ErrorCode::FRAME_SIZE_ERROR, 0);
    let fates: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::StreamError { id, fate, .. } => Some((*id, *fate)),
            _ => None,
        })
        .collect();
    assert_eq!(fates, [(id, Some(Fate::NotSent))]);
}

/// The same when the application closes the connection, and when the transport
/// reports EOF, before the HEADERS were handed over.
#[test]
fn close_and_eof_before_flush_leave_unsent_requests_unwritten() {
    for eof in [false, true] {
        let mut peer = client();
        let id = peer.conn.send_request(&request("GET", "/"), true).unwrap();
        if eof {
            peer.conn.handle_eof(peer.now);
        } else {
            peer.conn.close(ErrorCode::NO_ERROR, Bytes::new());
        }
        let frames = peer.frames();
        assert!(
            frames.iter().all(|f| !matches!(f, Frame::Headers(_))),
            "eof={eof}: {frames:?}"
        );
        let events = peer.take_events();
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::StreamError { id: i, fate: Some(Fate::NotSent), .. } if *i == id
            )),
            "eof={eof}: {events:?}"
        );
    }
}

/// Error codes a server may reset a processed stream with: every code of the RFC's
/// table but REFUSED_STREAM (which promises no processing), and an unknown one.
const RESET_CODES: [ErrorCode; 13] = [
    ErrorCode::NO_ERROR,
    ErrorCode::PROTOCOL_ERROR,
    ErrorCode::INTERNAL_ERROR,
    ErrorCode::FLOW_CONTROL_ERROR,
    ErrorCode::SETTINGS_TIMEOUT,
    ErrorCode::STREAM_CLOSED,
    ErrorCode::FRAME_SIZE_ERROR,
    ErrorCode::CANCEL,
    ErrorCode::COMPRESSION_ERROR,
    ErrorCode::CONNECT_ERROR,
    ErrorCode::ENHANCE_YOUR_CALM,
    ErrorCode::INADEQUATE_SECURITY,
    ErrorCode(0x77),
];

/// What the server-side harness knows, to judge the client's fates by.
#[derive(Default)]
struct ServerView {
    /// Streams whose request reached the server's application (a `Request` event).
    seen: HashSet<StreamId>,
    /// Of those, the ones the application processed (not shed before processing).
    processed: HashSet<StreamId>,
    /// Processed and not yet finished by the server.
    active: Vec<StreamId>,
    /// The lowest last-stream-id of a raw GOAWAY injected: a legal server processes
    /// nothing above it afterwards.
    raw_goaway: Option<StreamId>,
    /// Processed streams that a lying raw GOAWAY (last-stream-id below them) later
    /// disowned: the client cannot tell, so calling them `Refused` is the server's
    /// fault — unless their response head had arrived.
    disowned: HashSet<StreamId>,
}

struct Run {
    pair: Pair,
    rng: Rng,
    server: ServerView,
    client_streams: Vec<StreamId>,
    /// Every stream error the client reported: (id, fate).
    fates: Vec<(StreamId, Option<Fate>)>,
    /// Streams whose response head (final or 1xx) reached the client.
    heads: HashSet<StreamId>,
    crashed: bool,
}

impl Run {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut server_config = Config::default();
        server_config.max_concurrent_streams = 1 + rng.below(4) as u32;
        Self {
            pair: Pair::with_configs(Config::default(), server_config),
            rng,
            server: ServerView::default(),
            client_streams: Vec::new(),
            fates: Vec::new(),
            heads: HashSet::new(),
            crashed: false,
        }
    }

    /// Moves a random slice of the bytes in flight each way, then handles events.
    fn deliver_some(&mut self) {
        let p = &mut self.pair;
        // Sometimes input arrives before the output of the last command was handed
        // to the transport: the window in which fates are easiest to get wrong.
        if self.rng.chance(70) {
            p.client.poll_transmit(p.now, &mut p.to_server);
        }
        if self.rng.chance(70) {
            p.server.poll_transmit(p.now, &mut p.to_client);
        }
        let n = self.rng.below(p.to_server.len() as u64 + 1) as usize;
        if n > 0 {
            let bytes = p.to_server.split_to(n);
            p.server.handle_read(&bytes, p.now);
        }
        let n = self.rng.below(p.to_client.len() as u64 + 1) as usize;
        if n > 0 {
            let bytes = p.to_client.split_to(n);
            p.client.handle_read(&bytes, p.now);
        }
        self.events();
    }

    fn events(&mut self) {
        while let Some(event) = self.pair.server.poll_event() {
            if let Event::Request { id, .. } = event {
                self.server.seen.insert(id);
                let above_raw_goaway = self.server.raw_goaway.is_some_and(|l| id > l);
                if above_raw_goaway || self.rng.chance(25) {
                    // Shed before any processing: the one legal use of REFUSED_STREAM.
                    let _ = self.pair.server.reset(id, ErrorCode::REFUSED_STREAM);
                } else {
                    self.server.processed.insert(id);
                    self.server.active.push(id);
                }
            }
        }
        while let Some(event) = self.pair.client.poll_event() {
            match event {
                Event::StreamError { id, fate, .. } => self.fates.push((id, fate)),
                Event::Response { id, .. } | Event::Informational { id, .. } => {
                    self.heads.insert(id);
                }
                _ => {}
            }
        }
    }

    fn step(&mut self) {
        let now = self.pair.now;
        let action = self.rng.below(16);
        if std::env::var_os("FATE_TRACE").is_some() {
            eprintln!(
                "action {action} client_streams {:?} server {:?}",
                self.client_streams, self.server.active
            );
        }
        match action {
            0..=2 => {
                let end_stream = self.rng.chance(50);
                if let Ok(id) = self
                    .pair
                    .client
                    .send_request(&request("POST", "/"), end_stream)
                {
                    self.client_streams.push(id);
                }
            }
            3 => {
                if let Some(id) = self.rng.pick(&self.client_streams) {
                    let end = self.rng.chance(50);
                    let _ = self
                        .pair
                        .client
                        .send_data(id, Bytes::from_static(b"body"), end);
                }
            }
            4 => {
                if let Some(id) = self.rng.pick(&self.client_streams) {
                    let _ = self.pair.client.reset(id, ErrorCode::CANCEL);
                }
            }
            5 | 6 => {
                if let Some(id) = self.rng.pick(&self.server.active) {
                    let end = self.rng.chance(50);
                    let _ = self.pair.server.send_response(id, &response(200), end);
                    if !end {
                        let _ = self
                            .pair
                            .server
                            .send_data(id, Bytes::from_static(b"x"), true);
                    }
                    self.server.active.retain(|s| *s != id);
                }
            }
            7 => {
                if let Some(id) = self.rng.pick(&self.server.active) {
                    let code = RESET_CODES[self.rng.below(RESET_CODES.len() as u64) as usize];
                    let _ = self.pair.server.reset(id, code);
                    self.server.active.retain(|s| *s != id);
                }
            }
            8 => match self.rng.below(4) {
                0 => self.pair.server.graceful_shutdown(now),
                1 => self
                    .pair
                    .server
                    .shutdown_now_with(now, Bytes::from_static(b"now")),
                2 => {
                    let code = RESET_CODES[self.rng.below(RESET_CODES.len() as u64) as usize];
                    self.pair.server.close(code, Bytes::from_static(b"closing"));
                }
                _ => self.raw_goaway(),
            },
            9 => {
                // The client's own connection error: a PING of the wrong length.
                let p = &mut self.pair;
                p.server.poll_transmit(p.now, &mut p.to_client);
                p.to_client
                    .extend_from_slice(&[0, 0, 7, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            }
            10 if self.rng.chance(20) => self.crash(),
            11 => {
                // Time passes (timers fire); what they write is delivered later.
                let p = &mut self.pair;
                p.now += Duration::from_millis(self.rng.below(3000));
                for conn in [&mut p.client, &mut p.server] {
                    if conn.poll_timeout().is_some_and(|t| t <= p.now) {
                        conn.handle_timeout(p.now);
                    }
                }
            }
            _ => self.deliver_some(),
        }
        self.events();
    }

    /// A GOAWAY the server engine did not write, usually with a last-stream-id a
    /// legal server could send (no lower than a stream its application processed),
    /// sometimes a lower one, as a hostile server might send after responses.
    fn raw_goaway(&mut self) {
        let floor = self
            .server
            .processed
            .iter()
            .map(|id| id.get())
            .max()
            .unwrap_or(0);
        let last = if self.rng.chance(30) {
            let last = StreamId::new(self.rng.below(u64::from(floor) + 1) as u32);
            let disowned = self.server.processed.iter().filter(|id| **id > last);
            self.server.disowned.extend(disowned);
            last
        } else {
            StreamId::new((floor + 2 * self.rng.below(3) as u32).min(StreamId::MAX.get()))
        };
        let p = &mut self.pair;
        p.server.poll_transmit(p.now, &mut p.to_client);
        let mut buf = BytesMut::new();
        Frame::GoAway(GoAwayFrame(GoAway {
            code: ErrorCode::NO_ERROR,
            last_stream_id: last,
            debug_data: Bytes::from_static(b"raw"),
        }))
        .encode(&mut buf);
        p.to_client.extend_from_slice(&buf);
        self.server.raw_goaway = Some(self.server.raw_goaway.map_or(last, |l| l.min(last)));
    }

    /// Moves every byte both ways until neither side writes anything more.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let p = &mut self.pair;
            let wrote = p.client.poll_transmit(p.now, &mut p.to_server)
                + p.server.poll_transmit(p.now, &mut p.to_client);
            if wrote == 0 && p.to_server.is_empty() && p.to_client.is_empty() {
                return;
            }
            let bytes = p.to_server.split();
            p.server.handle_read(&bytes, p.now);
            let bytes = p.to_client.split();
            p.client.handle_read(&bytes, p.now);
            self.events();
        }
        panic!("the pair did not settle");
    }

    /// The server process dies: bytes in flight are lost, both ends see EOF.
    fn crash(&mut self) {
        let p = &mut self.pair;
        p.client.poll_transmit(p.now, &mut p.to_server);
        p.to_server.clear();
        p.to_client.clear();
        p.client.handle_eof(p.now);
        self.crashed = true;
    }

    fn check(&self, seed: u64) {
        for &(id, fate) in &self.fates {
            match fate {
                Some(Fate::NotSent) => assert!(
                    !self.server.seen.contains(&id),
                    "seed {seed}: stream {id:?} reported NotSent, but its request reached the server"
                ),
                Some(Fate::Refused) => {
                    assert!(
                        !self.heads.contains(&id),
                        "seed {seed}: stream {id:?} reported Refused after its response head"
                    );
                    assert!(
                        !self.server.processed.contains(&id) || self.server.disowned.contains(&id),
                        "seed {seed}: stream {id:?} reported Refused, but the server processed it"
                    );
                }
                _ => {}
            }
        }
    }
}

#[test]
fn retry_safe_fates_belong_only_to_streams_the_server_never_processed() {
    let mut totals = [0usize; 3];
    let only: Option<u64> = std::env::var("FATE_SEED").ok().and_then(|s| s.parse().ok());
    for seed in 0..400 {
        if only.is_some_and(|o| o != seed) {
            continue;
        }
        let mut run = Run::new(seed);
        for _ in 0..80 {
            if run.crashed || run.pair.client.is_closed() {
                break;
            }
            run.step();
        }
        // Let whatever is still in flight land.
        if !run.crashed {
            run.settle();
        }
        run.check(seed);
        for (_, fate) in &run.fates {
            match fate {
                Some(Fate::NotSent) => totals[0] += 1,
                Some(Fate::Refused) => totals[1] += 1,
                _ => totals[2] += 1,
            }
        }
    }
    // The property means something only if the runs produced every kind of failure.
    assert!(
        totals.iter().all(|&n| n > 20),
        "NotSent / Refused / other failures: {totals:?}"
    );
}

/// A peer that sets SETTINGS_MAX_CONCURRENT_STREAMS to 0 and then GOAWAY: every
/// request waiting for a slot was never sent, and says so.
#[test]
fn requests_waiting_for_concurrency_fail_not_sent_on_goaway() {
    let settings = Settings {
        max_concurrent_streams: Some(0),
        ..Settings::default()
    };
    let mut peer = support::Peer::client_with(Config::default(), settings);
    let ids: Vec<StreamId> = (0..3)
        .map(|_| peer.conn.send_request(&request("GET", "/"), true).unwrap())
        .collect();
    peer.expect_silence();
    let mut payload = 0u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&0u32.to_be_bytes());
    peer.send_raw(kind::GOAWAY, 0, 0, &payload);
    let events = peer.take_stream_events();
    let fates: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::StreamError { id, fate, .. } => Some((*id, *fate)),
            _ => None,
        })
        .collect();
    let expected: Vec<_> = ids.iter().map(|id| (*id, Some(Fate::NotSent))).collect();
    assert_eq!(fates, expected);
}
