//! PING frames (RFC 9113 §6.7).

use bytes::{BufMut, Bytes, BytesMut};

use super::{flags, require_connection, FrameError, FrameHeader, Kind, StreamId};
use crate::ids::ErrorCode;

/// A PING frame or its acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    /// The opaque 8 bytes, echoed by the acknowledgement.
    pub payload: [u8; 8],
    /// ACK flag.
    pub ack: bool,
}

impl Ping {
    pub(crate) fn decode(header: FrameHeader, payload: Bytes) -> Result<Self, FrameError> {
        require_connection(&header, "PING frame on a stream")?;
        let payload: [u8; 8] = payload[..].try_into().map_err(|_| {
            FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR, "PING frame length is not 8")
        })?;
        Ok(Self {
            payload,
            ack: header.flags & flags::ACK != 0,
        })
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        let fl = if self.ack { flags::ACK } else { 0 };
        FrameHeader::encode(8, Kind::Ping, fl, StreamId::ZERO, dst);
        dst.put_slice(&self.payload);
    }
}
