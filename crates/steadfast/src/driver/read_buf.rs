//! Room for reading straight into the engine's receive buffer, with its memory
//! recycled.
//!
//! Received DATA payloads are slices of that buffer, so while the application holds
//! one, the memory behind it cannot be reused for the next read: reading moves on to
//! another buffer, taking along the start of a frame the old one ended with. The old
//! buffer is kept, and reused once the application has dropped every payload in it,
//! so a steady upload reads into the same few allocations instead of asking the
//! allocator for fresh memory (and the kernel for fresh pages) on every read. Once the
//! socket has nothing more to read, at most one free buffer is kept (so a connection
//! that goes quiet holds little), and an idle connection holds none.

use std::collections::VecDeque;

use bytes::BytesMut;

/// A read is attempted only with at least this much room: one frame of the default
/// maximum size and its header.
const READ_MIN: usize = 16 << 10 | 9;
/// The size of each receive buffer; several reads land in one.
const BUFFER: usize = 64 << 10;
/// Buffers tracked for reuse, at most (others are freed once their payloads are):
/// enough for a 4 MiB receive window, which a fast peer fills before the application
/// runs and drops its payloads. Pinned ones cost nothing extra: the memory is the
/// payloads'.
const KEEP: usize = 64;
/// Free buffers kept once the socket has nothing more to read.
const KEEP_QUIET: usize = 1;

#[derive(Debug, Default)]
pub(crate) struct RecvBufs {
    /// Buffers read into earlier, oldest first; their memory is reusable once no
    /// payload points into it.
    retired: VecDeque<BytesMut>,
}

impl RecvBufs {
    /// Makes room for a read at the end of `buf`, the engine's receive buffer
    /// (`Connection::recv_buffer`), keeping the bytes it holds.
    pub(crate) fn reserve(&mut self, buf: &mut BytesMut) {
        if buf.capacity() - buf.len() >= READ_MIN || buf.try_reclaim(READ_MIN) {
            return;
        }
        let need = buf.len() + READ_MIN;
        let mut next = self
            .take_reusable(need)
            .unwrap_or_else(|| BytesMut::with_capacity(need.max(BUFFER)));
        next.extend_from_slice(buf);
        let mut old = std::mem::replace(buf, next);
        old.clear();
        if old.capacity() > 0 || old.try_reclaim(1) {
            if self.retired.len() == KEEP {
                self.retired.pop_front();
            }
            self.retired.push_back(old);
        }
    }

    /// The socket has nothing more to read for now: frees the buffers no payload
    /// points into any more, but one.
    pub(crate) fn quiet(&mut self) {
        let mut free = 0;
        self.retired.retain_mut(|b| {
            // Room for a whole buffer again means no payload points into it.
            if !b.try_reclaim(BUFFER) {
                return true; // still pinned: freed with its last payload, or reused
            }
            free += 1;
            free <= KEEP_QUIET
        });
    }

    /// Frees the kept buffers (the connection is idle).
    pub(crate) fn clear(&mut self) {
        self.retired = VecDeque::new();
    }

    /// A kept buffer no payload points into any more, with room for `need` bytes.
    fn take_reusable(&mut self, need: usize) -> Option<BytesMut> {
        let i = self.retired.iter_mut().position(|b| b.try_reclaim(need))?;
        self.retired.remove(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_reused_once_its_payloads_are_dropped() {
        let mut bufs = RecvBufs::default();
        let mut buf = BytesMut::new();
        bufs.reserve(&mut buf);
        let first = buf.as_ptr();
        buf.resize(BUFFER - 100, 7);
        // A payload the application still holds, then the start of a frame.
        let payload = buf.split_to(BUFFER - 200).freeze();
        bufs.reserve(&mut buf);
        assert_ne!(buf.as_ptr(), first, "the held memory is not read into");
        assert_eq!(&buf[..], &[7; 100][..], "the partial frame moves along");
        // The second buffer fills up too; the first is free again by then.
        drop(payload);
        let held = buf.split().freeze();
        buf.resize(buf.capacity(), 1);
        let _ = buf.split_to(buf.len() - 10);
        bufs.reserve(&mut buf);
        assert_eq!(buf.as_ptr(), first, "the first buffer is reused");
        assert_eq!(&buf[..], &[1; 10][..]);
        drop(held);
    }

    #[test]
    fn a_buffer_no_one_else_holds_is_reused_in_place() {
        let mut bufs = RecvBufs::default();
        let mut buf = BytesMut::new();
        bufs.reserve(&mut buf);
        let first = buf.as_ptr();
        buf.resize(buf.capacity(), 0);
        drop(buf.split_to(buf.len() - 5));
        bufs.reserve(&mut buf);
        assert_eq!(buf.as_ptr(), first);
        assert_eq!(buf.len(), 5);
        assert!(bufs.retired.is_empty());
    }

    #[test]
    fn a_quiet_socket_keeps_one_free_buffer_and_the_pinned_ones() {
        let mut bufs = RecvBufs::default();
        let pinned = BytesMut::with_capacity(BUFFER);
        let mut pinned_view = pinned;
        pinned_view.resize(10, 0);
        let payload = pinned_view.split_to(10).freeze();
        bufs.retired.push_back(pinned_view);
        for _ in 0..3 {
            bufs.retired.push_back(BytesMut::with_capacity(BUFFER));
        }
        bufs.quiet();
        assert_eq!(bufs.retired.len(), 2, "the pinned buffer and one free one");
        drop(payload);
        bufs.quiet();
        assert_eq!(bufs.retired.len(), 1);
        bufs.clear();
        assert!(bufs.retired.is_empty());
    }
}
