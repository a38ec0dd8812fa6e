//! Flow-control windows (RFC 9113 §6.9).

use crate::frame::MAX_WINDOW_SIZE;

/// A flow-control window: how many bytes of DATA one side may still send, on one
/// stream or on the connection.
///
/// Signed, because a SETTINGS_INITIAL_WINDOW_SIZE decrease applies to streams already
/// open and can leave a send window below zero (§6.9.2): the sender then waits until
/// WINDOW_UPDATE frames bring it back above zero. It may never exceed 2^31-1: an
/// increase past that is a FLOW_CONTROL_ERROR (§6.9.1), which is why every increase
/// goes through [`grant`](Self::grant) or [`adjust`](Self::adjust) and reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Window(i64);

/// An increase would take a window past 2^31-1 (§6.9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

impl Window {
    /// A window of `size` bytes.
    pub(crate) const fn new(size: u32) -> Self {
        Self(size as i64)
    }

    /// The bytes it allows now: zero when it is closed or below zero.
    pub(crate) fn available(self) -> usize {
        usize::try_from(self.0.max(0)).unwrap_or(usize::MAX)
    }

    /// True while nothing may be sent (zero or below).
    pub(crate) fn is_closed(self) -> bool {
        self.0 <= 0
    }

    /// True when `len` bytes do not fit: the receiver's check on every DATA frame.
    pub(crate) fn exceeded_by(self, len: u32) -> bool {
        i64::from(len) > self.0
    }

    /// `len` bytes were sent or received. The caller has checked they fit.
    pub(crate) fn consume(&mut self, len: usize) {
        self.0 -= i64::try_from(len).unwrap_or(i64::MAX);
    }

    /// A WINDOW_UPDATE of `increment` (received, or about to be sent).
    pub(crate) fn grant(&mut self, increment: u32) -> Result<(), Overflow> {
        self.adjust(i64::from(increment))
    }

    /// Credit this side gives back for DATA it received (or, at the start, opens
    /// beyond the initial 65,535). It only ever returns what a window was configured
    /// to hold, whose size `Config::validate` bounds, so it cannot pass 2^31-1; it
    /// saturates there all the same.
    pub(crate) fn restore(&mut self, len: u32) {
        self.0 = (self.0 + i64::from(len)).min(i64::from(MAX_WINDOW_SIZE));
    }

    /// A change of the initial window size by `delta` (§6.9.2), which may be negative.
    pub(crate) fn adjust(&mut self, delta: i64) -> Result<(), Overflow> {
        let window = self.checked(delta)?;
        self.0 = window;
        Ok(())
    }

    /// Whether [`adjust`](Self::adjust) by `delta` would overflow, without changing it.
    pub(crate) fn would_overflow(self, delta: i64) -> bool {
        self.checked(delta).is_err()
    }

    fn checked(self, delta: i64) -> Result<i64, Overflow> {
        match self.0.checked_add(delta) {
            Some(w) if w <= i64::from(MAX_WINDOW_SIZE) => Ok(w),
            _ => Err(Overflow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_may_go_negative_but_never_above_2_pow_31_minus_1() {
        let mut w = Window::new(65_535);
        w.consume(65_535);
        assert!(w.is_closed());
        assert_eq!(w.available(), 0);
        w.adjust(-1_000).unwrap();
        assert!(w.is_closed());
        assert_eq!(w.available(), 0, "negative windows allow nothing");
        w.grant(1_500).unwrap();
        assert_eq!(w.available(), 500);
        assert!(w.exceeded_by(501) && !w.exceeded_by(500));
        let mut full = Window::new(MAX_WINDOW_SIZE);
        assert_eq!(full.grant(1), Err(Overflow));
        assert_eq!(
            full.available(),
            MAX_WINDOW_SIZE as usize,
            "unchanged on overflow"
        );
        assert!(full.would_overflow(1) && !full.would_overflow(0));
    }
}
