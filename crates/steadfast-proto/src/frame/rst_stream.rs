//! RST_STREAM frames (RFC 9113 §6.4).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{require_stream, FrameError, FrameHeader, Kind, StreamId};
use crate::ids::ErrorCode;

/// A RST_STREAM frame: ends one stream immediately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RstStream {
    /// The stream.
    pub stream_id: StreamId,
    /// Why.
    pub code: ErrorCode,
}

impl RstStream {
    /// Builds the frame.
    pub fn new(stream_id: StreamId, code: ErrorCode) -> Self {
        Self { stream_id, code }
    }

    pub(crate) fn decode(header: FrameHeader, mut payload: Bytes) -> Result<Self, FrameError> {
        require_stream(&header, "RST_STREAM frame on stream 0")?;
        if payload.len() != 4 {
            return Err(FrameError::Connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "RST_STREAM frame length is not 4",
            ));
        }
        Ok(Self {
            stream_id: header.stream_id,
            code: ErrorCode(payload.get_u32()),
        })
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        FrameHeader::encode(4, Kind::RstStream, 0, self.stream_id, dst);
        dst.put_u32(self.code.0);
    }
}
