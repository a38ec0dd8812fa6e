//! The HPACK encoder (RFC 7541 §6, §7).

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::table::{
    static_lookup, DynamicTable, StaticMatch, TableEntry, ENTRY_OVERHEAD, STATIC_LEN,
};
use crate::{huffman, integer, Field};

/// The initial dynamic table size of every HPACK context (RFC 7541 §4.2 via RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// `cookie` values shorter than this are never indexed: they are short enough to be guessed by an attacker
/// probing the compression context (RFC 7541 §7.1.3).
const SHORT_COOKIE: usize = 20;

/// When the encoder uses the Huffman code for string literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HuffmanPolicy {
    /// Huffman-encode a string only when that makes it strictly shorter (the default).
    #[default]
    Auto,
    /// Always Huffman-encode (what the RFC 7541 Appendix C.4 and C.6 examples do).
    Always,
    /// Never Huffman-encode (what the RFC 7541 Appendix C.3 and C.5 examples do).
    Never,
}

/// An HPACK encoder: one per connection, for the header blocks we send.
///
/// It indexes fields into the dynamic table so they can be referenced by later blocks, except:
/// * fields marked [`Field::sensitive`], `authorization` and `proxy-authorization` fields, and `cookie` fields with
///   values shorter than 20 bytes, which are sent as never-indexed literals (RFC 7541 §7.1.3);
/// * fields whose entry size exceeds 3/4 of the dynamic table, which would flush most of it.
#[derive(Clone)]
pub struct Encoder {
    table: DynamicTable<Entry>,
    /// Our own ceiling on the dynamic table size, whatever the peer allows.
    cap: usize,
    /// Table size changes not yet signaled to the peer.
    pending: Option<PendingResize>,
    huffman: HuffmanPolicy,
}

impl Encoder {
    /// Dynamic table size 4096 (the RFC 7541/9113 default).
    pub fn new() -> Self {
        Self::with_table_size_cap(DEFAULT_TABLE_SIZE)
    }

    /// An encoder that never lets its dynamic table grow beyond `cap` bytes, whatever the peer's
    /// SETTINGS_HEADER_TABLE_SIZE. If `cap` is below the initial 4096, the first block starts with the size update.
    pub fn with_table_size_cap(cap: usize) -> Self {
        let mut encoder = Encoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            cap,
            pending: None,
            huffman: HuffmanPolicy::Auto,
        };
        encoder.set_max_table_size(DEFAULT_TABLE_SIZE);
        encoder
    }

    /// An encoder whose dynamic table starts at `size` bytes *without* signaling it: only valid when the peer's
    /// decoder is known to start at that size too, as in the RFC 7541 Appendix C.5/C.6 examples. For tests.
    #[doc(hidden)]
    pub fn with_unsignaled_table_size(size: usize) -> Self {
        Encoder {
            table: DynamicTable::new(size),
            cap: size,
            pending: None,
            huffman: HuffmanPolicy::Auto,
        }
    }

    /// Chooses when string literals are Huffman-encoded (default [`HuffmanPolicy::Auto`]).
    pub fn set_huffman_policy(&mut self, policy: HuffmanPolicy) {
        self.huffman = policy;
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed: the encoder adopts min(size, its own preferred cap) and emits
    /// the required dynamic table size update(s) at the start of the next block (if the size was lowered then
    /// raised between two blocks, emit the minimum first, then the final one, per §4.2).
    pub fn set_max_table_size(&mut self, size: usize) {
        let effective = size.min(self.cap);
        match &mut self.pending {
            Some(p) => {
                p.min = p.min.min(effective);
                p.last = effective;
            }
            None if effective != self.table.capacity() => {
                self.pending = Some(PendingResize {
                    min: effective,
                    last: effective,
                });
            }
            None => {}
        }
    }

    /// Encode one header block, appending to dst. Never indexes sensitive fields, and on its own never indexes
    /// `authorization`, `proxy-authorization`, and `cookie` values shorter than 20 bytes (use never-indexed
    /// literal). Chooses Huffman only when shorter. Uses the static and dynamic tables (indexes fields to reuse
    /// across blocks, but not huge values: skip indexing fields whose size exceeds 3/4 of the table).
    pub fn encode<'a, I: IntoIterator<Item = Field<'a>>>(&mut self, fields: I, dst: &mut BytesMut) {
        self.emit_pending_resize(dst);
        for field in fields {
            self.encode_field(field, dst);
        }
    }

    /// Current dynamic table size in bytes (RFC 7541 §4.1).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's maximum size as of the next block (including a pending, not yet signaled, change).
    pub fn table_capacity(&self) -> usize {
        match &self.pending {
            Some(p) => p.last,
            None => self.table.capacity(),
        }
    }

    /// The dynamic table's entries as `(name, value)`, newest (HPACK index 62) first. For tests and diagnostics.
    pub fn dynamic_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.table.iter().map(|e| (e.name(), e.value()))
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Encoder {
    // Summarizes instead of dumping the table: header values do not belong in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("table_entries", &self.table.len())
            .field("table_size", &self.table.size())
            .field("table_capacity", &self.table.capacity())
            .field("cap", &self.cap)
            .field("pending", &self.pending)
            .field("huffman", &self.huffman)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
struct PendingResize {
    /// Smallest size since the last block.
    min: usize,
    /// Latest size.
    last: usize,
}

/// An encoder-side table entry: name and value in one allocation, plus hashes for cheap lookups.
#[derive(Debug, Clone)]
struct Entry {
    data: Box<[u8]>,
    name_len: usize,
    name_hash: u64,
    value_hash: u64,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.data[..self.name_len]
    }

    fn value(&self) -> &[u8] {
        &self.data[self.name_len..]
    }
}

impl TableEntry for Entry {
    fn size(&self) -> usize {
        self.data.len() + ENTRY_OVERHEAD
    }
}

/// Result of searching the dynamic table: 0-based positions (HPACK index = `STATIC_LEN + 1 + pos`).
#[derive(Default)]
struct DynamicMatch {
    full: Option<usize>,
    name: Option<usize>,
}

impl Encoder {
    fn emit_pending_resize(&mut self, dst: &mut BytesMut) {
        let Some(p) = self.pending.take() else { return };
        if p.min < p.last {
            integer::encode(p.min, 5, 0x20, dst);
            self.table.set_capacity(p.min);
            integer::encode(p.last, 5, 0x20, dst);
            self.table.set_capacity(p.last);
        } else if p.last != self.table.capacity() {
            integer::encode(p.last, 5, 0x20, dst);
            self.table.set_capacity(p.last);
        }
    }

    fn encode_field(&mut self, field: Field<'_>, dst: &mut BytesMut) {
        let Field {
            name,
            value,
            sensitive,
        } = field;
        let never_index = sensitive || never_indexed_by_default(name, value);
        let static_match = static_lookup(name, value);
        if let (StaticMatch::Full(index), false) = (static_match, never_index) {
            integer::encode(index, 7, 0x80, dst);
            return;
        }

        let name_hash = hash(name);
        let value_hash = hash(value);
        let dynamic = self.search(name, value, name_hash, value_hash);
        if let (Some(pos), false) = (dynamic.full, never_index) {
            integer::encode(STATIC_LEN + 1 + pos, 7, 0x80, dst);
            return;
        }

        // A literal. Prefer a static name reference: it is stable and fits the 4/6-bit prefixes in one octet.
        let name_index = match static_match {
            StaticMatch::Name(i) | StaticMatch::Full(i) => i,
            StaticMatch::None => dynamic.name.map_or(0, |pos| STATIC_LEN + 1 + pos),
        };
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        let index_it =
            !never_index && size.saturating_mul(4) <= self.table.capacity().saturating_mul(3);
        let (prefix_bits, flags) = match (never_index, index_it) {
            (true, _) => (4, 0x10),      // literal never indexed (§6.2.3)
            (false, true) => (6, 0x40),  // literal with incremental indexing (§6.2.1)
            (false, false) => (4, 0x00), // literal without indexing (§6.2.2)
        };
        integer::encode(name_index, prefix_bits, flags, dst);
        if name_index == 0 {
            self.write_string(name, dst);
        }
        self.write_string(value, dst);

        if index_it {
            let mut data = Vec::with_capacity(name.len() + value.len());
            data.extend_from_slice(name);
            data.extend_from_slice(value);
            self.table.insert(Entry {
                data: data.into_boxed_slice(),
                name_len: name.len(),
                name_hash,
                value_hash,
            });
        }
    }

    /// Finds the newest dynamic entry equal to the field, and the newest one with its name.
    fn search(&self, name: &[u8], value: &[u8], name_hash: u64, value_hash: u64) -> DynamicMatch {
        let mut found = DynamicMatch::default();
        for (pos, e) in self.table.iter().enumerate() {
            if e.name_hash != name_hash || e.name() != name {
                continue;
            }
            if e.value_hash == value_hash && e.value() == value {
                found.full = Some(pos);
                break;
            }
            found.name.get_or_insert(pos);
        }
        found
    }

    fn write_string(&self, s: &[u8], dst: &mut BytesMut) {
        let huffman_len = match self.huffman {
            HuffmanPolicy::Never => None,
            HuffmanPolicy::Always => Some(huffman::encoded_len(s)),
            HuffmanPolicy::Auto => Some(huffman::encoded_len(s)).filter(|&n| n < s.len()),
        };
        match huffman_len {
            Some(n) => {
                integer::encode(n, 7, 0x80, dst);
                dst.reserve(n);
                huffman::encode(s, dst);
            }
            None => {
                integer::encode(s.len(), 7, 0x00, dst);
                dst.put_slice(s);
            }
        }
    }
}

/// Fields the encoder never indexes even when the caller did not mark them sensitive (RFC 7541 §7.1.3):
/// credentials, and cookies short enough to be brute-forced.
pub(crate) fn never_indexed_by_default(name: &[u8], value: &[u8]) -> bool {
    match name {
        b"authorization" | b"proxy-authorization" => true,
        b"cookie" => value.len() < SHORT_COOKIE,
        _ => false,
    }
}

/// A fast non-cryptographic hash used only to skip obviously different entries; equality is always confirmed by
/// comparing bytes, so collisions cost time, never correctness (and the table holds at most `cap / 32` entries).
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f<'a>(name: &'a str, value: &'a str) -> Field<'a> {
        Field {
            name: name.as_bytes(),
            value: value.as_bytes(),
            sensitive: false,
        }
    }

    fn encode(e: &mut Encoder, fields: &[Field<'_>]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        e.encode(fields.iter().copied(), &mut dst);
        dst.to_vec()
    }

    #[test]
    fn static_full_match_is_one_octet() {
        let mut e = Encoder::new();
        assert_eq!(
            encode(&mut e, &[f(":method", "GET"), f(":status", "404")]),
            [0x82, 0x8d]
        );
        assert_eq!(e.table_size(), 0);
    }

    #[test]
    fn indexes_then_references() {
        let mut e = Encoder::new();
        e.set_huffman_policy(HuffmanPolicy::Never);
        let first = encode(&mut e, &[f("x-a", "1")]);
        assert_eq!(first, [0x40, 3, b'x', b'-', b'a', 1, b'1']);
        assert_eq!(e.table_size(), 3 + 1 + 32);
        assert_eq!(encode(&mut e, &[f("x-a", "1")]), [0xbe]);
        // Same name, new value: dynamic name reference at index 62.
        assert_eq!(encode(&mut e, &[f("x-a", "2")]), [0x40 | 62, 1, b'2']);
        assert_eq!(
            e.dynamic_entries().collect::<Vec<_>>(),
            [(&b"x-a"[..], &b"2"[..]), (b"x-a", b"1")]
        );
    }

    #[test]
    fn never_indexed_fields() {
        let mut e = Encoder::new();
        e.set_huffman_policy(HuffmanPolicy::Never);
        let out = encode(
            &mut e,
            &[
                Field {
                    name: b"x-secret",
                    value: b"s",
                    sensitive: true,
                },
                f("authorization", "Bearer a-very-long-token-value-0123456789"),
                f("cookie", "short=1"),
            ],
        );
        let mut expected = vec![0x10, 8];
        expected.extend_from_slice(b"x-secret");
        expected.extend_from_slice(&[1, b's']);
        let token = b"Bearer a-very-long-token-value-0123456789";
        expected.extend_from_slice(&[0x1f, 23 - 15, token.len() as u8]);
        expected.extend_from_slice(token);
        expected.extend_from_slice(&[0x1f, 32 - 15, 7]);
        expected.extend_from_slice(b"short=1");
        assert_eq!(out, expected);
        assert_eq!(e.table_size(), 0);
        // A long cookie is indexed.
        encode(&mut e, &[f("cookie", "session=0123456789abcdef")]);
        assert_eq!(e.dynamic_entries().count(), 1);
        // A sensitive field never uses an existing full match.
        let out = encode(
            &mut e,
            &[Field {
                name: b"cookie",
                value: b"session=0123456789abcdef",
                sensitive: true,
            }],
        );
        assert_eq!(out[0], 0x1f);
        // Nor the static table's.
        let out = encode(
            &mut e,
            &[Field {
                name: b":method",
                value: b"GET",
                sensitive: true,
            }],
        );
        assert_eq!(out, [0x12, 3, b'G', b'E', b'T']);
    }

    #[test]
    fn huge_fields_are_not_indexed() {
        let mut e = Encoder::new();
        let big = "x".repeat(3 * 4096 / 4 - 32 - 5);
        encode(&mut e, &[f("x-big", &big)]);
        assert_eq!(
            e.dynamic_entries().count(),
            1,
            "exactly 3/4 of the table is indexed"
        );
        let bigger = "y".repeat(3 * 4096 / 4 - 32 - 5 + 1);
        let out = encode(&mut e, &[f("x-big", &bigger)]);
        assert_eq!(
            out[..2],
            [0x0f, 62 - 15],
            "literal without indexing, dynamic name reference"
        );
        assert_eq!(e.dynamic_entries().count(), 1);
    }

    #[test]
    fn huffman_auto_only_when_shorter() {
        let mut e = Encoder::new();
        // "307" Huffman-encodes to 3 octets too: not shorter, so sent raw.
        assert_eq!(
            encode(&mut e, &[f(":status", "307")]),
            [0x48, 0x03, b'3', b'0', b'7']
        );
        // "302" Huffman-encodes to 2 octets.
        assert_eq!(
            encode(&mut e, &[f(":status", "302")]),
            [0x48, 0x82, 0x64, 0x02]
        );
        e.set_huffman_policy(HuffmanPolicy::Always);
        assert_eq!(encode(&mut e, &[f("x", "")]), [0x40, 0x81, 0xf3, 0x80]);
    }

    #[test]
    fn size_updates() {
        let mut e = Encoder::new();
        assert!(
            encode(&mut e, &[]).is_empty(),
            "no update for the default size"
        );
        e.set_max_table_size(8192);
        assert!(encode(&mut e, &[]).is_empty(), "capped at 4096: unchanged");
        e.set_max_table_size(100);
        assert_eq!(e.table_capacity(), 100);
        assert_eq!(encode(&mut e, &[]), [0x3f, 100 - 31]);
        // Lowered then raised: minimum first, then the final size.
        e.set_max_table_size(0);
        e.set_max_table_size(50);
        e.set_max_table_size(4096);
        assert_eq!(encode(&mut e, &[]), [0x20, 0x3f, 0xe1, 0x1f]);
        // Raised then lowered back to the current size: nothing happened below it, nothing to send.
        let mut e = Encoder::with_table_size_cap(10_000);
        e.set_max_table_size(9000);
        e.set_max_table_size(4096);
        assert!(encode(&mut e, &[]).is_empty());
        // A cap below the default is signaled on the first block.
        let mut e = Encoder::with_table_size_cap(1000);
        assert_eq!(encode(&mut e, &[]), [0x3f, 0xc9, 0x07]);
        e.set_max_table_size(4096);
        assert!(encode(&mut e, &[]).is_empty());
    }

    #[test]
    fn shrinking_evicts() {
        let mut e = Encoder::new();
        encode(&mut e, &[f("x-a", "1"), f("x-b", "2")]);
        assert_eq!(e.table_size(), 72);
        e.set_max_table_size(40);
        encode(&mut e, &[]);
        assert_eq!(
            e.dynamic_entries().collect::<Vec<_>>(),
            [(&b"x-b"[..], &b"2"[..])]
        );
        e.set_max_table_size(0);
        assert_eq!(
            encode(&mut e, &[f("x-b", "2")]),
            [0x20, 0x00, 0x03, b'x', b'-', b'b', 0x01, b'2']
        );
        assert_eq!(e.table_size(), 0);
    }
}
