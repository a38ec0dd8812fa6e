//! CONTINUATION frames (RFC 9113 §6.10).

use bytes::{BufMut, Bytes, BytesMut};

use super::{flags, require_stream, FrameError, FrameHeader, Kind, StreamId};

/// A CONTINUATION frame: a further fragment of a field block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Continuation {
    /// The stream.
    pub stream_id: StreamId,
    /// The fragment.
    pub fragment: Bytes,
    /// END_HEADERS: the field block is complete.
    pub end_headers: bool,
}

impl Continuation {
    pub(crate) fn decode(header: FrameHeader, payload: Bytes) -> Result<Self, FrameError> {
        require_stream(&header, "CONTINUATION frame on stream 0")?;
        Ok(Self {
            stream_id: header.stream_id,
            fragment: payload,
            end_headers: header.flags & flags::END_HEADERS != 0,
        })
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        let fl = if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        };
        FrameHeader::encode(
            self.fragment.len(),
            Kind::Continuation,
            fl,
            self.stream_id,
            dst,
        );
        dst.put_slice(&self.fragment);
    }
}
