//! GOAWAY frames (RFC 9113 §6.8).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{require_connection, FrameError, FrameHeader, Kind, StreamId};
use crate::ids::{ErrorCode, GoAway};

/// A GOAWAY frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAwayFrame(pub GoAway);

impl GoAwayFrame {
    pub(crate) fn decode(header: FrameHeader, mut payload: Bytes) -> Result<Self, FrameError> {
        require_connection(&header, "GOAWAY frame on a stream")?;
        if payload.len() < 8 {
            return Err(FrameError::Connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "GOAWAY frame shorter than 8 bytes",
            ));
        }
        let last_stream_id = StreamId::new(payload.get_u32());
        let code = ErrorCode(payload.get_u32());
        Ok(Self(GoAway {
            code,
            last_stream_id,
            debug_data: payload,
        }))
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        let g = &self.0;
        FrameHeader::encode(8 + g.debug_data.len(), Kind::GoAway, 0, StreamId::ZERO, dst);
        dst.put_u32(g.last_stream_id.get());
        dst.put_u32(g.code.0);
        dst.put_slice(&g.debug_data);
    }
}
