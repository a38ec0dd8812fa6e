//! WINDOW_UPDATE frames (RFC 9113 §6.9).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{FrameError, FrameHeader, Kind, StreamId};
use crate::ids::ErrorCode;

/// A WINDOW_UPDATE frame. A zero increment is kept here and rejected by the
/// connection, because whether it is a stream or a connection error depends on the
/// stream's state (§6.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The stream, or 0 for the connection window.
    pub stream_id: StreamId,
    /// The increment (31 bits).
    pub increment: u32,
}

impl WindowUpdate {
    /// Builds the frame.
    pub fn new(stream_id: StreamId, increment: u32) -> Self {
        Self {
            stream_id,
            increment,
        }
    }

    pub(crate) fn decode(header: FrameHeader, mut payload: Bytes) -> Result<Self, FrameError> {
        if payload.len() != 4 {
            return Err(FrameError::Connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE frame length is not 4",
            ));
        }
        Ok(Self {
            stream_id: header.stream_id,
            increment: payload.get_u32() & 0x7fff_ffff,
        })
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        FrameHeader::encode(4, Kind::WindowUpdate, 0, self.stream_id, dst);
        dst.put_u32(self.increment);
    }
}
