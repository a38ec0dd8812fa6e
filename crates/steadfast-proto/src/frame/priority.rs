//! PRIORITY frames (RFC 9113 §6.3). The priority scheme is deprecated by RFC 9113; the
//! frames are parsed, checked and otherwise ignored.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{require_stream, FrameError, FrameHeader, Kind, StreamId};
use crate::ids::ErrorCode;

/// The dependency fields of PRIORITY and of HEADERS with the PRIORITY flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrioritySpec {
    /// The stream this one depends on.
    pub dependency: StreamId,
    /// The exclusive flag.
    pub exclusive: bool,
    /// Weight minus one, as on the wire.
    pub weight: u8,
}

impl PrioritySpec {
    pub(crate) fn parse(dep: u32, weight: u8) -> Self {
        Self {
            dependency: StreamId::new(dep),
            exclusive: dep & 0x8000_0000 != 0,
            weight,
        }
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        let excl = if self.exclusive { 0x8000_0000 } else { 0 };
        dst.put_u32(self.dependency.get() | excl);
        dst.put_u8(self.weight);
    }
}

/// A PRIORITY frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// The stream being prioritised.
    pub stream_id: StreamId,
    /// The priority fields.
    pub spec: PrioritySpec,
}

impl Priority {
    pub(crate) fn decode(header: FrameHeader, mut payload: Bytes) -> Result<Self, FrameError> {
        require_stream(&header, "PRIORITY frame on stream 0")?;
        if payload.len() != 5 {
            // §6.3: a stream error, unlike most size errors.
            return Err(FrameError::Stream(
                header.stream_id,
                ErrorCode::FRAME_SIZE_ERROR,
                "PRIORITY frame length is not 5",
            ));
        }
        let spec = PrioritySpec::parse(payload.get_u32(), payload.get_u8());
        if spec.dependency == header.stream_id {
            return Err(FrameError::Stream(
                header.stream_id,
                ErrorCode::PROTOCOL_ERROR,
                "stream depends on itself",
            ));
        }
        Ok(Self {
            stream_id: header.stream_id,
            spec,
        })
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        FrameHeader::encode(5, Kind::Priority, 0, self.stream_id, dst);
        self.spec.encode(dst);
    }
}
