//! Values both the frame layer and the error model speak of: stream ids, error codes
//! and the contents of a GOAWAY. A leaf module, so that `frame` and `error` need not import each other.

use std::fmt;

use bytes::Bytes;

/// A stream identifier: 31 bits, the reserved high bit always clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StreamId(u32);

impl StreamId {
    /// Stream 0: frames about the connection as a whole.
    pub const ZERO: Self = Self(0);
    /// The largest stream id (2^31 - 1).
    pub const MAX: Self = Self((1 << 31) - 1);

    /// Makes a stream id from its 31-bit value, clearing the reserved bit.
    pub const fn new(id: u32) -> Self {
        Self(id & 0x7fff_ffff)
    }

    /// The numeric value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// True for stream 0.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True for client-initiated (odd) ids.
    pub const fn is_client_initiated(self) -> bool {
        self.0 % 2 == 1
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", self.0)
    }
}

/// A fast hasher for maps keyed by [`StreamId`].
///
/// The peer chooses its stream ids, so every bit of the id must reach every bit of the
/// hash: `HashMap` picks the bucket from the low bits and tells keys apart by the top
/// 7, and a plain multiplicative hash makes the low bits depend only on the id's low
/// bits (4,096 ids spaced by 2^17 then share one bucket). `finish` applies MurmurHash3's
/// 64-bit finaliser (`fmix64`), a full avalanche: each input bit flips each output bit
/// with probability close to 1/2.
///
/// Why not SipHash (std's default) or a keyed crate such as `foldhash` or `ahash`: a
/// few multiplies are all a u32 key needs, no dependency is added, and the hash stays
/// deterministic, so event order and fuzz runs reproduce. The finaliser is not keyed:
/// a peer that computes colliding ids offline can still aim at one bucket, but only
/// with the streams it may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS), and
/// opening and resetting streams to do so is bounded by [`crate::FloodLimits`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamIdHasher(u64);

impl StreamIdHasher {
    /// MurmurHash3's `fmix64`.
    const fn fmix64(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^= k >> 33;
        k
    }
}

impl std::hash::Hasher for StreamIdHasher {
    fn finish(&self) -> u64 {
        Self::fmix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `StreamId` (which writes one u32); kept correct for other keys.
        for &b in bytes {
            self.0 = Self::fmix64(self.0 ^ u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        // One u32 per key: the state holds it exactly and `finish` mixes it.
        self.0 = self.0.rotate_left(32) ^ u64::from(n);
    }
}

/// A `HashMap` keyed by stream id, with [`StreamIdHasher`].
pub type StreamIdMap<V> =
    std::collections::HashMap<StreamId, V, std::hash::BuildHasherDefault<StreamIdHasher>>;

impl From<u32> for StreamId {
    fn from(id: u32) -> Self {
        Self::new(id)
    }
}

/// An HTTP/2 error code as carried by RST_STREAM and GOAWAY (RFC 9113 §7).
///
/// Unknown codes are kept as they are: RFC 9113 §7 says they must not trigger special
/// behaviour, and a diagnostic tool must still show what the peer sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown or a stream that ended without an error.
    pub const NO_ERROR: Self = Self(0x0);
    /// A protocol error not covered by a more specific code.
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    /// An unexpected internal error.
    pub const INTERNAL_ERROR: Self = Self(0x2);
    /// The peer violated the flow-control protocol.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// A SETTINGS frame was not acknowledged in time.
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    /// A frame arrived after the stream was half-closed.
    pub const STREAM_CLOSED: Self = Self(0x5);
    /// A frame had an invalid size.
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    /// The stream was refused before any application processing: safe to retry.
    pub const REFUSED_STREAM: Self = Self(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: Self = Self(0x8);
    /// The header compression context can no longer be maintained.
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    /// The connection of a CONNECT request was reset or abnormally closed.
    pub const CONNECT_ERROR: Self = Self(0xa);
    /// The peer behaves in a way that may generate excessive load.
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    /// The transport does not meet minimum security requirements.
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    /// The request must be made over HTTP/1.1.
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    /// The RFC's name for this code, or `None` for a code the RFC does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }

    /// A short description of what the code means, for people reading diagnostics.
    pub fn description(self) -> &'static str {
        match self.0 {
            0x0 => "no error",
            0x1 => "protocol error detected",
            0x2 => "implementation fault",
            0x3 => "flow-control limits exceeded",
            0x4 => "settings not acknowledged in time",
            0x5 => "frame received for a closed stream",
            0x6 => "frame size incorrect",
            0x7 => "stream refused before any processing",
            0x8 => "stream cancelled",
            0x9 => "header compression state not maintained",
            0xa => "TCP connection error for CONNECT method",
            0xb => "processing capacity exceeded",
            0xc => "negotiated TLS parameters not acceptable",
            0xd => "use HTTP/1.1 for the request",
            _ => "unknown error code",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown error code {:#x}", self.0),
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "ErrorCode({name})"),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

/// The contents of a GOAWAY frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// Why the connection is going away.
    pub code: ErrorCode,
    /// The highest stream id the sender may have processed; streams initiated by the
    /// receiver above it were not processed and are safe to retry.
    pub last_stream_id: StreamId,
    /// Opaque diagnostic data (often text such as `max_age` or `too_many_pings`).
    pub debug_data: Bytes,
}

impl fmt::Display for GoAway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GOAWAY(last_stream_id={}, {}",
            self.last_stream_id, self.code
        )?;
        if !self.debug_data.is_empty() {
            write!(
                f,
                ", debug data {:?}",
                String::from_utf8_lossy(&self.debug_data)
            )?;
        }
        f.write_str(")")
    }
}
