//! Connection configuration and limits.

use std::time::Duration;

use crate::error::ConfigError;
use crate::frame::{Settings, DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE};

/// Which side of the connection this endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends the connection preface and opens streams.
    Client,
    /// Accepts streams.
    Server,
}

/// Settings and limits for one connection.
///
/// Defaults suit a general-purpose client or server; every limit that bounds memory or
/// work caused by the peer is here, so a runtime can tighten them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// SETTINGS_HEADER_TABLE_SIZE we advertise: the HPACK table the peer may use.
    pub header_table_size: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce on peer-initiated
    /// streams (excess streams are refused with REFUSED_STREAM).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise: the receive window of each stream.
    ///
    /// Default 1 MiB, as hyper's server (its client: 2 MiB); nghttp2 and the h2 crate
    /// keep the RFC's 65,535, which caps an upload at 64 KiB per round trip. Larger
    /// windows carry bulk uploads with fewer stops: over loopback, with 4 MiB per
    /// stream and 16 MiB per connection a single upload takes about a quarter less
    /// CPU per MB than with 1 and 2 MiB, for nghttpd as for steadfast (`bench/bulk.py
    /// --window-bits 22,24`); but each stream may then make this endpoint buffer that
    /// much while its application does not read.
    pub initial_stream_window: u32,
    /// The connection-level receive window (raised from 65,535 with a WINDOW_UPDATE),
    /// shared by all streams: it bounds what one peer can make this endpoint buffer,
    /// however many streams it opens. Default 2 MiB: two streams at full speed.
    pub initial_connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce on decoded field blocks.
    pub max_header_list_size: u32,
    /// Advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441, server only).
    pub enable_connect_protocol: bool,
    /// Released receive capacity is announced with WINDOW_UPDATE once it reaches this
    /// fraction (in percent) of the window; lower values send more, smaller updates.
    pub window_update_percent: u8,
    /// A SETTINGS frame not acknowledged within this time fails the connection with
    /// SETTINGS_TIMEOUT.
    pub settings_timeout: Duration,
    /// During graceful shutdown, how long to wait for the PING that follows the first
    /// GOAWAY before sending the final one anyway.
    pub shutdown_ping_timeout: Duration,
    /// The largest field block accepted across HEADERS and CONTINUATION frames, in
    /// bytes, before it is decoded.
    pub max_header_block_size: usize,
    /// The most CONTINUATION frames accepted for one field block.
    pub max_continuation_frames: usize,
    /// How many field blocks whose decoded header list exceeds
    /// `max_header_list_size` are answered one by one (a server replies 431 and
    /// resets the stream) before the connection is closed with
    /// GOAWAY(ENHANCE_YOUR_CALM, `too many field blocks over SETTINGS_MAX_HEADER_LIST_SIZE`).
    /// A block that decodes to more than four times `max_header_list_size` is an
    /// HPACK bomb (a few bytes referencing a large table entry again and again) and
    /// closes the connection at once, with
    /// GOAWAY(ENHANCE_YOUR_CALM, `HPACK bomb: ...`). Default 4.
    pub max_oversized_header_blocks: u32,
    /// How many recently reset streams are remembered, so that frames the peer sent
    /// before it saw our RST_STREAM are ignored rather than treated as errors.
    pub max_reset_streams_remembered: usize,
    /// The most bytes of control frames (PING and SETTINGS acknowledgements, RST_STREAM)
    /// that may wait for the transport before the peer is told to calm down.
    pub max_pending_control_bytes: usize,
    /// Budgets for frames a peer can make this endpoint process or answer.
    pub flood: FloodLimits,
    /// The most DATA bytes `poll_transmit` writes per call, to keep output batches
    /// bounded while still filling a socket buffer. Default 256 KiB: one vectored
    /// write of 16 frames of 16 KiB for a single stream.
    pub max_transmit_data: usize,
    /// Send keepalive PINGs to detect a dead peer (gRFC A8). A client uses this per A8;
    /// a server may too (set [`Keepalive::without_calls`] to ping whether or not
    /// streams are open, as gRPC servers do). `None` (the default): never.
    pub keepalive: Option<Keepalive>,
    /// Police the PINGs the peer sends (gRFC A8 server enforcement, as grpc-go does):
    /// a peer that pings more often than the policy allows is sent
    /// GOAWAY(ENHANCE_YOUR_CALM, `too_many_pings`) and the connection closes. `None`
    /// (the default): PINGs are only subject to [`FloodLimits::max_pings`].
    pub ping_policy: Option<PingPolicy>,
    /// (gRFC A9) After this long without any open stream, in either direction, start a
    /// graceful shutdown with debug data `max_idle`: GOAWAY(NO_ERROR, last-stream-id
    /// 2^31-1) and a PING, then the final GOAWAY(NO_ERROR). The clock starts when the
    /// connection is created and restarts whenever the last stream closes. `None` (the
    /// default): no limit; [`Config::server`]: 5 minutes.
    pub max_connection_idle: Option<Duration>,
    /// The peer's half of the handshake — for a server, the client's connection
    /// preface and its first SETTINGS; for a client, the server's SETTINGS — must
    /// arrive within this time of the connection's creation, or the connection closes
    /// with GOAWAY(SETTINGS_TIMEOUT, `handshake_timeout`). (Our own SETTINGS must also
    /// be acknowledged within `settings_timeout`.) `None` (the default): only
    /// `settings_timeout` applies; [`Config::server`]: 10 seconds.
    pub handshake_timeout: Option<Duration>,
    /// How long a stream may wait for the peer's next DATA (with payload or
    /// END_STREAM) or trailers once the message head arrived — a request body on a
    /// server, a response body on a client — before it is reset with
    /// RST_STREAM(CANCEL): the endpoint no longer wants a body that stopped arriving.
    /// The clock pauses while flow control keeps the peer from sending (the
    /// application has not consumed what arrived), and restarts when the window
    /// reopens. Streams that are quiet by design (long-lived gRPC streams) need a
    /// larger value or `None`. `None` (the default): no limit; [`Config::server`]:
    /// 60 seconds (as nghttpd, which sends INTERNAL_ERROR).
    pub stream_recv_timeout: Option<Duration>,
    /// How long a stream may wait on the peer to take its DATA — queued DATA not a
    /// byte of which is written, or a body under way (a server's response head sent)
    /// with no flow-control window left — before it is reset with
    /// RST_STREAM(CANCEL): the peer stopped reading (no WINDOW_UPDATE, or it does not
    /// read the socket). Any byte written restarts the clock; a stream whose window is
    /// open and that has nothing queued is never late. Progress is looked at every
    /// quarter of the timeout, so the reset comes 1 to 1.25 timeouts after the last
    /// byte moved. The same
    /// caution as for `stream_recv_timeout` applies to streams whose reader pauses by
    /// design. `None` (the default): no limit; [`Config::server`]: 60 seconds (as
    /// nghttpd's write timeout, which sends INTERNAL_ERROR).
    pub stream_send_timeout: Option<Duration>,
    /// (gRFC A9) This long after the connection was created, start a graceful shutdown
    /// with debug data `max_age`. A9 asks for ±10% jitter: the runtime applies it to the
    /// value it passes here. `None` (the default): no limit.
    pub max_connection_age: Option<Duration>,
    /// (gRFC A9) How long streams may still run after the `max_age` shutdown began;
    /// then the connection is closed at once with GOAWAY(NO_ERROR, `max_age_grace`) and
    /// the remaining streams fail. Only used with `max_connection_age`. `None` (the
    /// default): streams may take as long as they need.
    pub max_connection_age_grace: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            header_table_size: 4096,
            max_concurrent_streams: 256,
            initial_stream_window: 1 << 20,
            initial_connection_window: 2 << 20,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 64 << 10,
            enable_connect_protocol: false,
            window_update_percent: 50,
            settings_timeout: Duration::from_secs(10),
            shutdown_ping_timeout: Duration::from_secs(5),
            max_header_block_size: 80 << 10,
            max_continuation_frames: 64,
            max_oversized_header_blocks: 4,
            max_reset_streams_remembered: 1024,
            max_pending_control_bytes: 64 << 10,
            flood: FloodLimits::default(),
            max_transmit_data: 256 << 10,
            keepalive: None,
            ping_policy: None,
            max_connection_idle: None,
            handshake_timeout: None,
            stream_recv_timeout: None,
            stream_send_timeout: None,
            max_connection_age: None,
            max_connection_age_grace: None,
        }
    }
}

impl Config {
    /// The defaults with the time bounds a public server needs against slow or
    /// hostile clients: [`handshake_timeout`](Self::handshake_timeout) 10 s,
    /// [`stream_recv_timeout`](Self::stream_recv_timeout) and
    /// [`stream_send_timeout`](Self::stream_send_timeout) 60 s, and
    /// [`max_connection_idle`](Self::max_connection_idle) 5 minutes. With
    /// `max_concurrent_streams`, the flood budgets and the header limits of
    /// [`Config::default`], every resource a client can hold has a bound and a clock.
    pub fn server() -> Self {
        Self {
            handshake_timeout: Some(Duration::from_secs(10)),
            stream_recv_timeout: Some(Duration::from_secs(60)),
            stream_send_timeout: Some(Duration::from_secs(60)),
            max_connection_idle: Some(Duration::from_secs(5 * 60)),
            ..Self::default()
        }
    }

    /// Checks every value a peer would reject, or that would stop the connection
    /// from working, so a bad configuration fails where it is made, in words, rather
    /// than as a GOAWAY from the peer. [`Connection::new`](crate::Connection::new)
    /// calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let window = |field, value: u32| {
            if value > MAX_WINDOW_SIZE {
                return Err(ConfigError::new(
                    field,
                    value,
                    "exceeds 2^31-1, the largest flow-control window (RFC 9113 §6.9.1): \
                     the peer would close the connection with FLOW_CONTROL_ERROR",
                ));
            }
            Ok(())
        };
        if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&self.max_frame_size) {
            return Err(ConfigError::new(
                "max_frame_size",
                self.max_frame_size,
                "must be between 16,384 and 16,777,215 (RFC 9113 §6.5.2): the peer would \
                 close the connection with PROTOCOL_ERROR",
            ));
        }
        window("initial_stream_window", self.initial_stream_window)?;
        window("initial_connection_window", self.initial_connection_window)?;
        if !(1..=100).contains(&self.window_update_percent) {
            return Err(ConfigError::new(
                "window_update_percent",
                self.window_update_percent,
                "must be between 1 and 100 (a percentage of the window)",
            ));
        }
        if self.max_transmit_data == 0 {
            return Err(ConfigError::new(
                "max_transmit_data",
                0,
                "must be at least 1: with 0, no DATA would ever be sent",
            ));
        }
        if let Some(keepalive) = &self.keepalive {
            if keepalive.time.is_zero() || keepalive.timeout.is_zero() {
                return Err(ConfigError::new(
                    "keepalive",
                    format!("time {:?}, timeout {:?}", keepalive.time, keepalive.timeout),
                    "time and timeout must be above zero (a zero time would ping without \
                     pause)",
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn local_settings(&self, role: Role) -> Settings {
        Settings {
            header_table_size: Some(self.header_table_size),
            enable_push: (role == Role::Client).then_some(false),
            max_concurrent_streams: Some(self.max_concurrent_streams),
            initial_window_size: Some(self.initial_stream_window),
            max_frame_size: Some(self.max_frame_size),
            max_header_list_size: Some(self.max_header_list_size),
            enable_connect_protocol: (role == Role::Server && self.enable_connect_protocol)
                .then_some(true),
        }
    }
}

/// How many frames of each costly kind a peer may cause per `window`; exceeding one
/// fails the connection with GOAWAY(ENHANCE_YOUR_CALM).
///
/// These stop floods that cost the peer little and us much: rapid stream resets
/// (CVE-2023-44487), PING and SETTINGS floods (CVE-2019-9512/9515), and empty frames
/// (CVE-2019-9518).
#[derive(Clone, Debug)]
pub struct FloodLimits {
    /// The accounting period.
    pub window: Duration,
    /// Streams reset by the peer, or by us because of the peer's frames.
    pub max_resets: u32,
    /// PING frames received that need an acknowledgement.
    pub max_pings: u32,
    /// SETTINGS frames received.
    pub max_settings: u32,
    /// DATA frames without payload or END_STREAM, CONTINUATION frames without
    /// payload, and connection WINDOW_UPDATE frames that answer nothing: ones that
    /// raise the connection send window above the largest value it ever had (so they
    /// return no credit for DATA this endpoint sent) while no stream waits for that
    /// window. Peers that return credit as DATA arrives, however often, never count;
    /// enlarging the window (at the start, or as a bandwidth estimate grows) counts
    /// once per frame, which no legitimate peer does anywhere near this often.
    pub max_empty_frames: u32,
}

impl Default for FloodLimits {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            max_resets: 1000,
            max_pings: 1000,
            max_settings: 100,
            max_empty_frames: 1000,
        }
    }
}

/// Keepalive PINGs sent by this endpoint (gRFC A8).
///
/// When `time` has passed since the last bytes were read, a PING is sent; if nothing at
/// all is read within `timeout` after it, the peer is presumed dead and the connection
/// fails with [`Error::KeepaliveTimeout`](crate::Error::KeepaliveTimeout), without a
/// GOAWAY. Any bytes read count as a sign of life, not only the PING's ACK.
///
/// A peer that enforces a PING policy (as gRPC servers do, 5 minutes by default)
/// answers PINGs that come too often with GOAWAY(ENHANCE_YOUR_CALM) and the debug data
/// `too_many_pings`; A8 asks the client to double its `time` for the next connection.
/// gRPC also clamps `time` to at least 10 seconds for a client; that is left to the
/// runtime.
#[derive(Clone, Debug)]
pub struct Keepalive {
    /// How long without reading anything before a PING is sent.
    pub time: Duration,
    /// How long to wait for any bytes after the PING before the connection is declared
    /// dead. Default 20 seconds.
    pub timeout: Duration,
    /// Also send PINGs while no stream is open. Default false: an idle connection is
    /// left quiet (a gRPC server would count such PINGs as abuse unless it permits
    /// them).
    pub without_calls: bool,
}

impl Keepalive {
    /// Keepalive PINGs after `time` without reading, with the default `timeout` (20
    /// seconds) and only while streams are open.
    pub fn new(time: Duration) -> Self {
        Self {
            time,
            timeout: Duration::from_secs(20),
            without_calls: false,
        }
    }
}

/// How often the peer may send PINGs (gRFC A8 server enforcement, modelled on
/// grpc-go).
///
/// Each PING received less than `min_time` after the previous one (or, while no stream
/// is open and `permit_without_calls` is false, less than 2 hours after it) is a
/// strike; the first PING is never one. When this endpoint sends HEADERS or DATA, the
/// strikes are forgiven and the next PING is free, as in grpc-go and gRPC C++. When
/// the strikes exceed `max_strikes`, the connection closes with
/// GOAWAY(ENHANCE_YOUR_CALM, `too_many_pings`).
#[derive(Clone, Debug)]
pub struct PingPolicy {
    /// The least time the peer must leave between PINGs. Default 5 minutes.
    pub min_time: Duration,
    /// Allow PINGs every `min_time` while no stream is open. Default false: then a
    /// PING less than 2 hours after the previous one is a strike.
    pub permit_without_calls: bool,
    /// How many strikes are tolerated; one more closes the connection. Default 2.
    pub max_strikes: u32,
}

impl Default for PingPolicy {
    fn default() -> Self {
        Self {
            min_time: Duration::from_secs(5 * 60),
            permit_without_calls: false,
            max_strikes: 2,
        }
    }
}
