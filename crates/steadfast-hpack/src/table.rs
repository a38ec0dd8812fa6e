//! The static table (RFC 7541 §2.3.1, Appendix A) and the dynamic table (§2.3.2, §4).

use std::collections::VecDeque;

/// Size overhead of a table entry (RFC 7541 §4.1).
pub(crate) const ENTRY_OVERHEAD: usize = 32;

/// Number of entries in the static table; dynamic indices start right after it.
pub(crate) const STATIC_LEN: usize = 61;

/// The static table, in index order (index 1 is `STATIC_TABLE[0]`).
pub(crate) const STATIC_TABLE: [(&[u8], &[u8]); STATIC_LEN] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Result of looking a field up in the static table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StaticMatch {
    /// Neither name nor value is in the static table.
    None,
    /// The name is at this (1-based) index, but not with this value.
    Name(usize),
    /// Name and value are at this (1-based) index.
    Full(usize),
}

/// Finds `name`/`value` in the static table.
pub(crate) fn static_lookup(name: &[u8], value: &[u8]) -> StaticMatch {
    // (first index of the name, number of consecutive entries with that name)
    let (first, count) = match name {
        b":authority" => (1, 1),
        b":method" => (2, 2),
        b":path" => (4, 2),
        b":scheme" => (6, 2),
        b":status" => (8, 7),
        b"accept-charset" => (15, 1),
        b"accept-encoding" => (16, 1),
        b"accept-language" => (17, 1),
        b"accept-ranges" => (18, 1),
        b"accept" => (19, 1),
        b"access-control-allow-origin" => (20, 1),
        b"age" => (21, 1),
        b"allow" => (22, 1),
        b"authorization" => (23, 1),
        b"cache-control" => (24, 1),
        b"content-disposition" => (25, 1),
        b"content-encoding" => (26, 1),
        b"content-language" => (27, 1),
        b"content-length" => (28, 1),
        b"content-location" => (29, 1),
        b"content-range" => (30, 1),
        b"content-type" => (31, 1),
        b"cookie" => (32, 1),
        b"date" => (33, 1),
        b"etag" => (34, 1),
        b"expect" => (35, 1),
        b"expires" => (36, 1),
        b"from" => (37, 1),
        b"host" => (38, 1),
        b"if-match" => (39, 1),
        b"if-modified-since" => (40, 1),
        b"if-none-match" => (41, 1),
        b"if-range" => (42, 1),
        b"if-unmodified-since" => (43, 1),
        b"last-modified" => (44, 1),
        b"link" => (45, 1),
        b"location" => (46, 1),
        b"max-forwards" => (47, 1),
        b"proxy-authenticate" => (48, 1),
        b"proxy-authorization" => (49, 1),
        b"range" => (50, 1),
        b"referer" => (51, 1),
        b"refresh" => (52, 1),
        b"retry-after" => (53, 1),
        b"server" => (54, 1),
        b"set-cookie" => (55, 1),
        b"strict-transport-security" => (56, 1),
        b"transfer-encoding" => (57, 1),
        b"user-agent" => (58, 1),
        b"vary" => (59, 1),
        b"via" => (60, 1),
        b"www-authenticate" => (61, 1),
        _ => return StaticMatch::None,
    };
    for index in first..first + count {
        if STATIC_TABLE[index - 1].1 == value {
            return StaticMatch::Full(index);
        }
    }
    StaticMatch::Name(first)
}

/// Something stored in a [`DynamicTable`].
pub(crate) trait TableEntry {
    /// RFC 7541 §4.1 size: name length + value length + 32.
    fn size(&self) -> usize;
}

/// The dynamic table: a FIFO of entries, newest first, with size accounting and eviction (RFC 7541 §4).
#[derive(Debug, Clone)]
pub(crate) struct DynamicTable<E> {
    /// `entries[0]` is the newest entry (HPACK index `STATIC_LEN + 1`).
    entries: VecDeque<E>,
    /// Sum of the entries' sizes.
    size: usize,
    /// Current maximum size.
    capacity: usize,
}

impl<E: TableEntry> DynamicTable<E> {
    pub(crate) fn new(capacity: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            capacity,
        }
    }

    /// Current size in bytes (RFC 7541 §4.1).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry at a 0-based position, newest first (HPACK index `STATIC_LEN + 1 + pos`).
    pub(crate) fn get(&self, pos: usize) -> Option<&E> {
        self.entries.get(pos)
    }

    /// Entries, newest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &E> + '_ {
        self.entries.iter()
    }

    /// Changes the maximum size, evicting as needed (RFC 7541 §4.3).
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_to(capacity);
    }

    /// Adds an entry (RFC 7541 §4.4): evicts until it fits; an entry larger than the capacity empties the table and
    /// is not added. Returns whether it was added.
    pub(crate) fn insert(&mut self, entry: E) -> bool {
        let entry_size = entry.size();
        if entry_size > self.capacity {
            self.entries.clear();
            self.size = 0;
            return false;
        }
        self.evict_to(self.capacity - entry_size);
        self.size += entry_size;
        self.entries.push_front(entry);
        true
    }

    /// Empties the table as adding an entry of `size > capacity` would.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.size = 0;
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(old) => self.size -= old.size(),
                // Unreachable while `size` is the sum of the entry sizes; keep the accounting sane regardless.
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct E(usize);
    impl TableEntry for E {
        fn size(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn static_lookup_agrees_with_table() {
        for (i, &(name, value)) in STATIC_TABLE.iter().enumerate() {
            assert_eq!(static_lookup(name, value), StaticMatch::Full(i + 1));
            let first = STATIC_TABLE.iter().position(|&(n, _)| n == name).unwrap() + 1;
            assert_eq!(
                static_lookup(name, b"\x00not-a-static-value"),
                StaticMatch::Name(first)
            );
        }
        assert_eq!(static_lookup(b"x-custom", b""), StaticMatch::None);
        assert_eq!(static_lookup(b":STATUS", b"200"), StaticMatch::None);
        assert_eq!(static_lookup(b":status", b"404"), StaticMatch::Full(13));
        assert_eq!(static_lookup(b":status", b"302"), StaticMatch::Name(8));
    }

    #[test]
    fn eviction_order_and_sizes() {
        let mut t = DynamicTable::new(100);
        assert!(t.insert(E(40)));
        assert!(t.insert(E(41)));
        assert_eq!((t.len(), t.size()), (2, 81));
        // Needs 30 bytes: evicts the oldest (40).
        assert!(t.insert(E(30)));
        assert_eq!(t.iter().map(|e| e.0).collect::<Vec<_>>(), [30, 41]);
        assert_eq!(t.size(), 71);
        // Exactly the capacity: evicts everything else.
        assert!(t.insert(E(100)));
        assert_eq!((t.len(), t.size()), (1, 100));
        // Larger than the capacity: empties the table.
        assert!(!t.insert(E(101)));
        assert_eq!((t.len(), t.size()), (0, 0));
        t.insert(E(50));
        t.insert(E(50));
        t.set_capacity(60);
        assert_eq!((t.len(), t.size(), t.capacity()), (1, 50, 60));
        t.set_capacity(0);
        assert_eq!((t.len(), t.size()), (0, 0));
        assert!(!t.insert(E(32)));
    }
}
