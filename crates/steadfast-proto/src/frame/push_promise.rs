//! PUSH_PROMISE frames (RFC 9113 §6.6). steadfast never enables push: clients
//! advertise SETTINGS_ENABLE_PUSH=0 and treat a PUSH_PROMISE as a connection error;
//! the frame is still decoded so its errors are reported precisely.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{flags, require_stream, FrameError, FrameHeader, Kind, StreamId};
use crate::ids::ErrorCode;

/// A PUSH_PROMISE frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushPromise {
    /// The stream the promise is associated with.
    pub stream_id: StreamId,
    /// The stream the server promises to open.
    pub promised_id: StreamId,
    /// The first fragment of the promised request's field block.
    pub fragment: Bytes,
    /// END_HEADERS.
    pub end_headers: bool,
}

impl PushPromise {
    pub(crate) fn decode(header: FrameHeader, mut payload: Bytes) -> Result<Self, FrameError> {
        require_stream(&header, "PUSH_PROMISE frame on stream 0")?;
        let padded = header.flags & flags::PADDED != 0;
        if payload.len() < usize::from(padded) + 4 {
            return Err(FrameError::Connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "PUSH_PROMISE frame too short",
            ));
        }
        let pad_len = if padded {
            usize::from(payload.get_u8())
        } else {
            0
        };
        let promised_id = StreamId::new(payload.get_u32());
        if pad_len > payload.len() {
            return Err(FrameError::Connection(
                ErrorCode::PROTOCOL_ERROR,
                "PUSH_PROMISE padding exceeds the space left for the field block",
            ));
        }
        payload.truncate(payload.len() - pad_len);
        Ok(Self {
            stream_id: header.stream_id,
            promised_id,
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
            4 + self.fragment.len(),
            Kind::PushPromise,
            fl,
            self.stream_id,
            dst,
        );
        dst.put_u32(self.promised_id.get());
        dst.put_slice(&self.fragment);
    }
}
