//! SETTINGS frames (RFC 9113 §6.5) and the settings values themselves.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{
    flags, require_connection, FrameError, FrameHeader, Kind, StreamId, DEFAULT_MAX_FRAME_SIZE,
    MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE,
};
use crate::ids::ErrorCode;

/// A set of SETTINGS values; `None` means "not included in the frame".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1).
    pub header_table_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH (0x2).
    pub enable_push: Option<bool>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4).
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE (0x5).
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    pub max_header_list_size: Option<u32>,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8, RFC 8441).
    pub enable_connect_protocol: Option<bool>,
}

impl Settings {
    /// Each value present in `other` replaces the one here.
    pub fn merge(&mut self, other: &Settings) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            header_table_size,
            enable_push,
            max_concurrent_streams,
            initial_window_size,
            max_frame_size,
            max_header_list_size,
            enable_connect_protocol
        );
    }

    fn entries(&self) -> impl Iterator<Item = (u16, u32)> {
        [
            (0x1, self.header_table_size),
            (0x2, self.enable_push.map(u32::from)),
            (0x3, self.max_concurrent_streams),
            (0x4, self.initial_window_size),
            (0x5, self.max_frame_size),
            (0x6, self.max_header_list_size),
            (0x8, self.enable_connect_protocol.map(u32::from)),
        ]
        .into_iter()
        .filter_map(|(id, v)| v.map(|v| (id, v)))
    }
}

/// A SETTINGS frame: values, or an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsFrame {
    /// New values from the sender.
    Values(Settings),
    /// Acknowledges the receiver's last SETTINGS.
    Ack,
}

impl SettingsFrame {
    pub(crate) fn decode(header: FrameHeader, mut payload: Bytes) -> Result<Self, FrameError> {
        require_connection(&header, "SETTINGS frame on a stream")?;
        if header.flags & flags::ACK != 0 {
            if !payload.is_empty() {
                return Err(FrameError::Connection(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "SETTINGS acknowledgement with a payload",
                ));
            }
            return Ok(Self::Ack);
        }
        if !payload.len().is_multiple_of(6) {
            return Err(FrameError::Connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "SETTINGS frame length is not a multiple of 6",
            ));
        }
        let mut s = Settings::default();
        while payload.has_remaining() {
            let id = payload.get_u16();
            let value = payload.get_u32();
            match id {
                0x1 => s.header_table_size = Some(value),
                0x2 => {
                    s.enable_push = Some(bool_setting(value, "SETTINGS_ENABLE_PUSH not 0 or 1")?)
                }
                0x3 => s.max_concurrent_streams = Some(value),
                0x4 => {
                    if value > MAX_WINDOW_SIZE {
                        return Err(FrameError::Connection(
                            ErrorCode::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                        ));
                    }
                    s.initial_window_size = Some(value);
                }
                0x5 => {
                    if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                        return Err(FrameError::Connection(
                            ErrorCode::PROTOCOL_ERROR,
                            "SETTINGS_MAX_FRAME_SIZE outside 2^14..2^24-1",
                        ));
                    }
                    s.max_frame_size = Some(value);
                }
                0x6 => s.max_header_list_size = Some(value),
                0x8 => {
                    s.enable_connect_protocol = Some(bool_setting(
                        value,
                        "SETTINGS_ENABLE_CONNECT_PROTOCOL not 0 or 1",
                    )?)
                }
                // §6.5.2: unknown settings are ignored.
                _ => {}
            }
        }
        Ok(Self::Values(s))
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Ack => FrameHeader::encode(0, Kind::Settings, flags::ACK, StreamId::ZERO, dst),
            Self::Values(s) => {
                let n = s.entries().count();
                FrameHeader::encode(6 * n, Kind::Settings, 0, StreamId::ZERO, dst);
                for (id, v) in s.entries() {
                    dst.put_u16(id);
                    dst.put_u32(v);
                }
            }
        }
    }
}

fn bool_setting(value: u32, what: &'static str) -> Result<bool, FrameError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR, what)),
    }
}
