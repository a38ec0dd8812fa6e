//! The HTTP/2 frame layer (RFC 9113 §4 and §6): one file per frame type.
//!
//! Decoding enforces every rule that can be checked on a frame alone (lengths, stream
//! ids, flags, field ranges) and classifies each violation as a connection or a stream
//! error exactly as RFC 9113 does. Rules that depend on stream state live in
//! the connection state machine.

mod continuation;
mod data;
mod go_away;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod window_update;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

pub use self::continuation::Continuation;
pub use self::data::Data;
pub use self::go_away::GoAwayFrame;
pub use self::headers::Headers;
pub use self::ping::Ping;
pub use self::priority::{Priority, PrioritySpec};
pub use self::push_promise::PushPromise;
pub use self::rst_stream::RstStream;
pub use self::settings::{Settings, SettingsFrame};
pub use self::window_update::WindowUpdate;
use crate::ids::ErrorCode;
pub use crate::ids::{StreamId, StreamIdHasher, StreamIdMap};

/// The length of the fixed frame header (RFC 9113 §4.1).
pub const HEADER_LEN: usize = 9;
/// The smallest value SETTINGS_MAX_FRAME_SIZE may take, and its initial value.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest value SETTINGS_MAX_FRAME_SIZE may take.
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// The largest flow-control window and the largest WINDOW_UPDATE increment.
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;

/// Frame type codes (RFC 9113 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Data = 0x0,
    Headers = 0x1,
    Priority = 0x2,
    RstStream = 0x3,
    Settings = 0x4,
    PushPromise = 0x5,
    Ping = 0x6,
    GoAway = 0x7,
    WindowUpdate = 0x8,
    Continuation = 0x9,
}

/// Flag bits shared by several frame types.
pub(crate) mod flags {
    pub(crate) const END_STREAM: u8 = 0x1;
    pub(crate) const ACK: u8 = 0x1;
    pub(crate) const END_HEADERS: u8 = 0x4;
    pub(crate) const PADDED: u8 = 0x8;
    pub(crate) const PRIORITY: u8 = 0x20;
}

/// The 9-byte header that precedes every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type code; unknown types are kept so they can be skipped.
    pub kind: u8,
    /// Flag bits.
    pub flags: u8,
    /// The stream the frame belongs to.
    pub stream_id: StreamId,
}

impl FrameHeader {
    /// Parses a frame header from the first 9 bytes of `buf`, if there are 9.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let b: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Self {
            length: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream_id: StreamId::new(u32::from_be_bytes([b[5], b[6], b[7], b[8]])),
        })
    }

    pub(crate) fn encode(
        length: usize,
        kind: Kind,
        flags: u8,
        stream_id: StreamId,
        dst: &mut BytesMut,
    ) {
        debug_assert!(length <= MAX_MAX_FRAME_SIZE as usize);
        let len = (length as u32).to_be_bytes();
        dst.put_slice(&len[1..]);
        dst.put_u8(kind as u8);
        dst.put_u8(flags);
        dst.put_u32(stream_id.get());
    }
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// DATA (§6.1).
    Data(Data),
    /// HEADERS (§6.2).
    Headers(Headers),
    /// PRIORITY (§6.3); deprecated, parsed and ignored.
    Priority(Priority),
    /// RST_STREAM (§6.4).
    RstStream(RstStream),
    /// SETTINGS (§6.5).
    Settings(SettingsFrame),
    /// PUSH_PROMISE (§6.6).
    PushPromise(PushPromise),
    /// PING (§6.7).
    Ping(Ping),
    /// GOAWAY (§6.8).
    GoAway(GoAwayFrame),
    /// WINDOW_UPDATE (§6.9).
    WindowUpdate(WindowUpdate),
    /// CONTINUATION (§6.10).
    Continuation(Continuation),
    /// A frame of a type this implementation does not know; it is ignored (§4.1, §5.5).
    Unknown(FrameHeader),
}

impl Frame {
    /// Appends the frame's wire encoding to `dst`.
    ///
    /// The caller keeps payloads within the peer's SETTINGS_MAX_FRAME_SIZE; unknown
    /// frames are encoded as a header with an empty payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Data(f) => f.encode(dst),
            Self::Headers(f) => f.encode(dst),
            Self::Priority(f) => f.encode(dst),
            Self::RstStream(f) => f.encode(dst),
            Self::Settings(f) => f.encode(dst),
            Self::PushPromise(f) => f.encode(dst),
            Self::Ping(f) => f.encode(dst),
            Self::GoAway(f) => f.encode(dst),
            Self::WindowUpdate(f) => f.encode(dst),
            Self::Continuation(f) => f.encode(dst),
            Self::Unknown(h) => {
                let len = (0u32).to_be_bytes();
                dst.put_slice(&len[1..]);
                dst.put_u8(h.kind);
                dst.put_u8(h.flags);
                dst.put_u32(h.stream_id.get());
            }
        }
    }

    /// The stream the frame belongs to (0 for connection frames).
    pub fn stream_id(&self) -> StreamId {
        match self {
            Self::Data(f) => f.stream_id,
            Self::Headers(f) => f.stream_id,
            Self::Priority(f) => f.stream_id,
            Self::RstStream(f) => f.stream_id,
            Self::PushPromise(f) => f.stream_id,
            Self::WindowUpdate(f) => f.stream_id,
            Self::Continuation(f) => f.stream_id,
            Self::Unknown(h) => h.stream_id,
            Self::Settings(_) | Self::Ping(_) | Self::GoAway(_) => StreamId::ZERO,
        }
    }
}

/// A rule of RFC 9113 that a frame broke, classified as the RFC classifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The whole connection must fail with GOAWAY(code).
    Connection(ErrorCode, &'static str),
    /// Only this stream must be reset with RST_STREAM(code).
    Stream(StreamId, ErrorCode, &'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connection(code, why) => write!(f, "connection error {code}: {why}"),
            Self::Stream(id, code, why) => write!(f, "stream {id} error {code}: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Decodes one frame from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame. A frame longer than
/// `max_frame_size` is rejected as soon as its header is readable, so the buffer never
/// has to grow past one maximum-size frame. On success the frame's bytes are removed
/// from `buf`; payloads are zero-copy slices of it.
pub fn decode(buf: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>, FrameError> {
    let Some(header) = FrameHeader::parse(buf) else {
        return Ok(None);
    };
    if header.length > max_frame_size {
        // §4.2: oversized frames are a connection error when they could alter connection
        // state; a frame whose payload we will not buffer always could (HPACK state,
        // flow control), so we treat every oversized frame that way.
        return Err(FrameError::Connection(
            ErrorCode::FRAME_SIZE_ERROR,
            "frame larger than SETTINGS_MAX_FRAME_SIZE",
        ));
    }
    let total = HEADER_LEN + header.length as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    let payload = frame.split_off(HEADER_LEN).freeze();
    decode_payload(header, payload).map(Some)
}

/// Decodes a frame whose header was already parsed.
pub fn decode_payload(header: FrameHeader, payload: Bytes) -> Result<Frame, FrameError> {
    Ok(match header.kind {
        0x0 => Frame::Data(Data::decode(header, payload)?),
        0x1 => Frame::Headers(Headers::decode(header, payload)?),
        0x2 => Frame::Priority(Priority::decode(header, payload)?),
        0x3 => Frame::RstStream(RstStream::decode(header, payload)?),
        0x4 => Frame::Settings(SettingsFrame::decode(header, payload)?),
        0x5 => Frame::PushPromise(PushPromise::decode(header, payload)?),
        0x6 => Frame::Ping(Ping::decode(header, payload)?),
        0x7 => Frame::GoAway(GoAwayFrame::decode(header, payload)?),
        0x8 => Frame::WindowUpdate(WindowUpdate::decode(header, payload)?),
        0x9 => Frame::Continuation(Continuation::decode(header, payload)?),
        _ => Frame::Unknown(header),
    })
}

/// Rejects stream 0 for frame types that belong to a stream.
fn require_stream(header: &FrameHeader, what: &'static str) -> Result<(), FrameError> {
    if header.stream_id.is_zero() {
        return Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR, what));
    }
    Ok(())
}

/// Rejects a non-zero stream for connection-level frame types.
fn require_connection(header: &FrameHeader, what: &'static str) -> Result<(), FrameError> {
    if !header.stream_id.is_zero() {
        return Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR, what));
    }
    Ok(())
}

/// Strips padding (§6.1, §6.2, §6.6): returns the payload without the pad-length byte
/// and the padding.
fn strip_padding(header: &FrameHeader, mut payload: Bytes) -> Result<Bytes, FrameError> {
    if header.flags & flags::PADDED == 0 {
        return Ok(payload);
    }
    let Some(&pad_len) = payload.first() else {
        return Err(FrameError::Connection(
            ErrorCode::FRAME_SIZE_ERROR,
            "padded frame too short for its pad length field",
        ));
    };
    let pad_len = usize::from(pad_len);
    if pad_len >= payload.len() {
        return Err(FrameError::Connection(
            ErrorCode::PROTOCOL_ERROR,
            "padding length not less than the frame payload",
        ));
    }
    payload.truncate(payload.len() - pad_len);
    let _ = bytes::Buf::get_u8(&mut payload);
    Ok(payload)
}

#[cfg(test)]
mod tests;
