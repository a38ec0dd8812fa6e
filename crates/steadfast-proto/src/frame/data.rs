//! DATA frames (RFC 9113 §6.1).

use bytes::{BufMut, Bytes, BytesMut};

use super::{flags, require_stream, strip_padding, FrameError, FrameHeader, Kind, StreamId};

/// A DATA frame: a chunk of a message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    /// The stream.
    pub stream_id: StreamId,
    /// The body bytes, padding removed.
    pub data: Bytes,
    /// END_STREAM: the sender's last frame on this stream.
    pub end_stream: bool,
    /// The whole payload length including padding: what flow control counts (§6.9).
    pub flow_controlled_len: u32,
}

impl Data {
    /// A DATA frame without padding.
    pub fn new(stream_id: StreamId, data: Bytes, end_stream: bool) -> Self {
        let flow_controlled_len = data.len() as u32;
        Self {
            stream_id,
            data,
            end_stream,
            flow_controlled_len,
        }
    }

    pub(crate) fn decode(header: FrameHeader, payload: Bytes) -> Result<Self, FrameError> {
        require_stream(&header, "DATA frame on stream 0")?;
        let data = strip_padding(&header, payload)?;
        Ok(Self {
            stream_id: header.stream_id,
            data,
            end_stream: header.flags & flags::END_STREAM != 0,
            flow_controlled_len: header.length,
        })
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        Self::encode_parts(self.stream_id, &self.data, self.end_stream, dst);
    }

    /// Writes a DATA frame's header and payload without building a `Data`.
    pub(crate) fn encode_parts(
        stream_id: StreamId,
        data: &[u8],
        end_stream: bool,
        dst: &mut BytesMut,
    ) {
        Self::encode_header(stream_id, data.len(), end_stream, dst);
        dst.put_slice(data);
    }

    /// Writes only the 9-byte header of a DATA frame whose payload of `len` bytes
    /// follows separately.
    pub(crate) fn encode_header(
        stream_id: StreamId,
        len: usize,
        end_stream: bool,
        dst: &mut BytesMut,
    ) {
        let fl = if end_stream { flags::END_STREAM } else { 0 };
        FrameHeader::encode(len, Kind::Data, fl, stream_id, dst);
    }
}
