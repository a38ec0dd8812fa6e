//! HEADERS frames (RFC 9113 §6.2).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::priority::PrioritySpec;
use super::{flags, require_stream, FrameError, FrameHeader, Kind, StreamId};
use crate::ids::ErrorCode;

/// A HEADERS frame: opens a stream or carries trailers, with the first fragment of a
/// field block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    /// The stream.
    pub stream_id: StreamId,
    /// The deprecated priority fields, when the PRIORITY flag was set.
    pub priority: Option<PrioritySpec>,
    /// The start of the HPACK-encoded field block, padding removed.
    pub fragment: Bytes,
    /// END_STREAM.
    pub end_stream: bool,
    /// END_HEADERS: no CONTINUATION follows.
    pub end_headers: bool,
}

impl Headers {
    pub(crate) fn decode(header: FrameHeader, mut payload: Bytes) -> Result<Self, FrameError> {
        require_stream(&header, "HEADERS frame on stream 0")?;
        let padded = header.flags & flags::PADDED != 0;
        let has_priority = header.flags & flags::PRIORITY != 0;
        let min_len = usize::from(padded) + if has_priority { 5 } else { 0 };
        if payload.len() < min_len {
            // A field block frame: any size error is a connection error (§4.2).
            return Err(FrameError::Connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "HEADERS frame too short for its padding and priority fields",
            ));
        }
        let pad_len = if padded {
            usize::from(payload.get_u8())
        } else {
            0
        };
        let priority = if has_priority {
            Some(PrioritySpec::parse(payload.get_u32(), payload.get_u8()))
        } else {
            None
        };
        if pad_len > payload.len() {
            return Err(FrameError::Connection(
                ErrorCode::PROTOCOL_ERROR,
                "HEADERS padding exceeds the space left for the field block",
            ));
        }
        payload.truncate(payload.len() - pad_len);
        // A stream that depends on itself (RFC 7540 §5.3.1) is a stream error, but the
        // field block must still be decoded to keep HPACK state in step (§4.3): the
        // connection checks it once the block is complete, not the frame decoder.
        Ok(Self {
            stream_id: header.stream_id,
            priority,
            fragment: payload,
            end_stream: header.flags & flags::END_STREAM != 0,
            end_headers: header.flags & flags::END_HEADERS != 0,
        })
    }

    /// Writes only the frame header, for a payload of `len` bytes written separately
    /// (no priority fields).
    pub(crate) fn encode_header(&self, len: usize, dst: &mut BytesMut) {
        let mut fl = 0;
        if self.end_stream {
            fl |= flags::END_STREAM;
        }
        if self.end_headers {
            fl |= flags::END_HEADERS;
        }
        FrameHeader::encode(len, Kind::Headers, fl, self.stream_id, dst);
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        let mut fl = 0;
        if self.end_stream {
            fl |= flags::END_STREAM;
        }
        if self.end_headers {
            fl |= flags::END_HEADERS;
        }
        let mut len = self.fragment.len();
        if self.priority.is_some() {
            fl |= flags::PRIORITY;
            len += 5;
        }
        FrameHeader::encode(len, Kind::Headers, fl, self.stream_id, dst);
        if let Some(p) = self.priority {
            p.encode(dst);
        }
        dst.put_slice(&self.fragment);
    }
}
