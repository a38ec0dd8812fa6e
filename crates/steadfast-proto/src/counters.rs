//! Counts of the RST_STREAM and GOAWAY frames a connection sent and received, by
//! error code, for metrics.
//!
//! One [`FrameCounters`] may be shared by many connections (a server's, or a
//! client's): each counts into it with a relaxed atomic add when it writes or reads
//! one of these frames, so counting costs nothing on the frames that carry data.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ids::ErrorCode;

/// Codes counted one by one: RFC 9113's NO_ERROR (0x0) to HTTP_1_1_REQUIRED (0xd);
/// every other code is counted together as `other`.
const KNOWN: usize = 14;

/// Slots of a count by code: the known codes, then `other`.
pub const CODE_SLOTS: usize = KNOWN + 1;

/// The label of each slot of a [`ByCode`]: the RFC's names, then `other`.
pub const CODE_NAMES: [&str; CODE_SLOTS] = [
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
    "other",
];

/// A count per error code, indexed like [`CODE_NAMES`].
pub type ByCode = [u64; CODE_SLOTS];

fn slot(code: ErrorCode) -> usize {
    usize::try_from(code.0).map_or(KNOWN, |c| c.min(KNOWN))
}

/// Live counters, shared by the connections that count into them
/// ([`Connection::count_frames_into`](crate::Connection::count_frames_into)).
#[derive(Debug, Default)]
pub struct FrameCounters {
    rst_stream_sent: [AtomicU64; CODE_SLOTS],
    rst_stream_received: [AtomicU64; CODE_SLOTS],
    goaway_sent: [AtomicU64; CODE_SLOTS],
    goaway_received: [AtomicU64; CODE_SLOTS],
}

/// What [`FrameCounters`] held when read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// RST_STREAM frames written for the peer, by code.
    pub rst_stream_sent: ByCode,
    /// RST_STREAM frames received, by code (also those for streams already closed).
    pub rst_stream_received: ByCode,
    /// GOAWAY frames written for the peer, by code (a graceful shutdown writes two).
    pub goaway_sent: ByCode,
    /// GOAWAY frames received, by code.
    pub goaway_received: ByCode,
}

impl FrameCounts {
    /// `counts` with each slot's label, for an exposition.
    pub fn labelled(counts: &ByCode) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        CODE_NAMES.iter().copied().zip(counts.iter().copied())
    }
}

impl FrameCounters {
    /// The counts now.
    pub fn get(&self) -> FrameCounts {
        let read = |a: &[AtomicU64; CODE_SLOTS]| a.each_ref().map(|c| c.load(Ordering::Relaxed));
        FrameCounts {
            rst_stream_sent: read(&self.rst_stream_sent),
            rst_stream_received: read(&self.rst_stream_received),
            goaway_sent: read(&self.goaway_sent),
            goaway_received: read(&self.goaway_received),
        }
    }

    pub(crate) fn rst_stream_sent(&self, code: ErrorCode) {
        self.rst_stream_sent[slot(code)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rst_stream_received(&self, code: ErrorCode) {
        self.rst_stream_received[slot(code)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn goaway_sent(&self, code: ErrorCode) {
        self.goaway_sent[slot(code)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn goaway_received(&self, code: ErrorCode) {
        self.goaway_received[slot(code)].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_rfc_names_and_unknown_ones_are_other() {
        for (i, name) in CODE_NAMES.iter().enumerate().take(KNOWN) {
            let code = ErrorCode(u32::try_from(i).unwrap());
            assert_eq!(code.name(), Some(*name));
            assert_eq!(slot(code), i);
        }
        assert_eq!(slot(ErrorCode(0xe)), KNOWN);
        assert_eq!(slot(ErrorCode(u32::MAX)), KNOWN);
        assert_eq!(CODE_NAMES[KNOWN], "other");
    }
}
