//! The HPACK decoder (RFC 7541 §3, §6), with bounded memory for hostile input.

use std::fmt;

use bytes::Bytes;

use crate::table::{DynamicTable, TableEntry, ENTRY_OVERHEAD, STATIC_LEN, STATIC_TABLE};
use crate::{huffman, integer, DecodedField, DecoderError};

/// Ceiling on a string literal's declared length: longer ones are rejected with
/// [`DecoderError::StringTooLong`] (16 MiB, the largest HTTP/2 frame payload).
///
/// Strings below the ceiling but too long to be kept (see [`Decoder::decode`]) are validated and skipped
/// without being allocated.
pub const MAX_STRING_LEN: usize = (1 << 24) - 1;

/// The fields of one decoded header block.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecodedBlock {
    /// The fields, in order, up to (not including) the one that made the header list exceed the limit.
    pub fields: Vec<DecodedField>,
    /// The header list was larger than `max_header_list_size`: `fields` is incomplete and the caller should reject
    /// the request or response (HTTP 431 for a server), while the dynamic table remains usable.
    pub over_limit: bool,
    /// The size of the whole header list as RFC 7541 §4.1 counts it (name + value + 32 per field), including the
    /// fields that were not kept: how far past the limit an `over_limit` block went. A block whose few bytes decode
    /// to far more than the limit (repeated references to a large table entry) is an HPACK bomb.
    pub list_size: usize,
}

/// An HPACK decoder: one per connection, for the header blocks we receive.
#[derive(Clone)]
pub struct Decoder {
    table: DynamicTable<Entry>,
    /// Our advertised SETTINGS_HEADER_TABLE_SIZE (acknowledged by the peer): size updates may not exceed it.
    limit: usize,
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE we advertise (4096 default). A size update above it is an
    /// error.
    ///
    /// The dynamic table starts with that maximum size. Until the peer acknowledges our SETTINGS its encoder
    /// assumes the protocol default of 4096, so for a value below 4096 create the decoder with 4096 and call
    /// [`set_max_table_size`](Self::set_max_table_size) on acknowledgement. A larger value is safe right away: a
    /// decoder whose table is larger than the encoder's view stays in sync (the encoder's entries are always a
    /// prefix of the decoder's; the extra ones are simply never referenced).
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(max_table_size),
            limit: max_table_size,
        }
    }

    /// Our advertised table size changed (applied once the peer acknowledged the SETTINGS).
    ///
    /// If it is now below the size the peer's encoder uses, the next header block must start with a dynamic table
    /// size update within the new limit ([`DecoderError::MissingSizeUpdate`] otherwise; RFC 7541 §4.2).
    pub fn set_max_table_size(&mut self, size: usize) {
        self.limit = size;
    }

    /// Decode one complete header block (already reassembled from HEADERS+CONTINUATION).
    /// `max_header_list_size`: the sum of DecodedField::size() allowed. When exceeded, decoding CONTINUES to the end
    /// of the block (so the dynamic table stays in sync with the peer) but further fields are not kept (not
    /// allocated), and the result says `over_limit: true`. Malformed input => Err. Never panics on any input.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_header_list_size: usize,
    ) -> Result<DecodedBlock, DecoderError> {
        let mut state = BlockState {
            // Each field takes at least one octet; avoid regrowing for typical blocks.
            out: DecodedBlock {
                fields: Vec::with_capacity(block.len().min(32)),
                over_limit: false,
                list_size: 0,
            },
            list_size: 0,
            max_list_size: max_header_list_size,
        };
        let mut pos = 0;
        let mut at_start = true;
        while let Some(&first) = block.get(pos) {
            if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3).
                if !at_start {
                    return Err(DecoderError::SizeUpdateNotAtStart);
                }
                let size = integer::decode(block, &mut pos, 5)?;
                if size > self.limit {
                    return Err(DecoderError::SizeUpdateTooLarge {
                        requested: size,
                        max: self.limit,
                    });
                }
                self.table.set_capacity(size);
                continue;
            }
            if at_start {
                at_start = false;
                self.check_capacity()?;
            }
            if first & 0x80 != 0 {
                self.decode_indexed(block, &mut pos, &mut state)?;
            } else {
                let kind = if first & 0x40 != 0 {
                    Literal::Incremental
                } else if first & 0x10 != 0 {
                    Literal::NeverIndexed
                } else {
                    Literal::WithoutIndexing
                };
                self.decode_literal(block, &mut pos, kind, &mut state)?;
            }
        }
        if at_start {
            self.check_capacity()?;
        }
        state.out.list_size = state.list_size;
        Ok(state.out)
    }

    /// current dynamic table size in bytes (for tests/diagnostics)
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's current maximum size, as last set by the peer's size updates.
    pub fn table_capacity(&self) -> usize {
        self.table.capacity()
    }

    /// The dynamic table's entries as `(name, value)`, newest (HPACK index 62) first. For tests and diagnostics.
    pub fn dynamic_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.table.iter().map(|e| (&e.name[..], &e.value[..]))
    }
}

impl fmt::Debug for Decoder {
    // Summarizes instead of dumping the table: header values do not belong in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("table_entries", &self.table.len())
            .field("table_size", &self.table.size())
            .field("table_capacity", &self.table.capacity())
            .field("limit", &self.limit)
            .finish()
    }
}

/// A decoder-side table entry. `Bytes` lets decoded fields share the entry's storage.
#[derive(Debug, Clone)]
struct Entry {
    name: Bytes,
    value: Bytes,
}

impl TableEntry for Entry {
    fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Literal {
    /// §6.2.1: added to the dynamic table.
    Incremental,
    /// §6.2.2.
    WithoutIndexing,
    /// §6.2.3.
    NeverIndexed,
}

/// Per-block bookkeeping.
struct BlockState {
    out: DecodedBlock,
    /// Sum of the sizes of all fields so far, kept or not.
    list_size: usize,
    max_list_size: usize,
}

impl BlockState {
    /// Accounts for a field of `size` bytes; returns whether it is kept.
    fn admit(&mut self, size: usize) -> bool {
        self.list_size = self.list_size.saturating_add(size);
        if self.list_size > self.max_list_size {
            self.out.over_limit = true;
        }
        !self.out.over_limit
    }

    /// How many bytes of name + value a field may still have and be kept, if any.
    fn keep_budget(&self) -> Option<usize> {
        if self.out.over_limit {
            return None;
        }
        self.max_list_size
            .checked_sub(self.list_size)?
            .checked_sub(ENTRY_OVERHEAD)
    }
}

/// A decoded string literal: its length, and its contents only if they may be needed.
struct Str {
    bytes: Option<Bytes>,
    len: usize,
}

impl Decoder {
    /// The peer must have brought the table within our limit before its first field representation.
    fn check_capacity(&self) -> Result<(), DecoderError> {
        if self.table.capacity() > self.limit {
            return Err(DecoderError::MissingSizeUpdate {
                current: self.table.capacity(),
                max: self.limit,
            });
        }
        Ok(())
    }

    /// Name and value at a (1-based) HPACK index.
    fn lookup(&self, index: usize) -> Result<(Bytes, Bytes), DecoderError> {
        if index == 0 {
            return Err(DecoderError::InvalidIndex(0));
        }
        if let Some(&(name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok((Bytes::from_static(name), Bytes::from_static(value)));
        }
        match self.table.get(index - 1 - STATIC_LEN) {
            Some(e) => Ok((e.name.clone(), e.value.clone())),
            None => Err(DecoderError::InvalidIndex(index)),
        }
    }

    /// §6.1 indexed header field.
    fn decode_indexed(
        &self,
        block: &[u8],
        pos: &mut usize,
        state: &mut BlockState,
    ) -> Result<(), DecoderError> {
        let index = integer::decode(block, pos, 7)?;
        let (name, value) = self.lookup(index)?;
        if state.admit(name.len() + value.len() + ENTRY_OVERHEAD) {
            state.out.fields.push(DecodedField {
                name,
                value,
                never_indexed: false,
            });
        }
        Ok(())
    }

    /// §6.2 literal header field, any of the three kinds.
    fn decode_literal(
        &mut self,
        block: &[u8],
        pos: &mut usize,
        kind: Literal,
        state: &mut BlockState,
    ) -> Result<(), DecoderError> {
        let prefix_bits = if kind == Literal::Incremental { 6 } else { 4 };
        let name_index = integer::decode(block, pos, prefix_bits)?;

        // Strings are materialized only if the field may be kept or added to the table; otherwise they are
        // validated and skipped. A string too long for both can't belong to a kept or indexed field.
        let keep_budget = state.keep_budget();
        let table_budget = match kind {
            Literal::Incremental => self.table.capacity().checked_sub(ENTRY_OVERHEAD),
            _ => None,
        };
        let name = if name_index == 0 {
            read_string(block, pos, keep_budget.max(table_budget))?
        } else {
            let (name, _) = self.lookup(name_index)?;
            Str {
                len: name.len(),
                bytes: Some(name),
            }
        };
        let keep_budget = keep_budget.and_then(|b| b.checked_sub(name.len));
        let table_budget = table_budget.and_then(|b| b.checked_sub(name.len));
        let value = read_string(block, pos, keep_budget.max(table_budget))?;

        let size = name
            .len
            .saturating_add(value.len)
            .saturating_add(ENTRY_OVERHEAD);
        let keep = state.admit(size);
        match (name.bytes, value.bytes) {
            (Some(name), Some(value)) => {
                if kind == Literal::Incremental {
                    // Evicts as needed; an entry larger than the table empties it (§4.4).
                    self.table.insert(Entry {
                        name: name.clone(),
                        value: value.clone(),
                    });
                }
                if keep {
                    state.out.fields.push(DecodedField {
                        name,
                        value,
                        never_indexed: kind == Literal::NeverIndexed,
                    });
                }
            }
            _ => {
                // A string was skipped because it exceeded both budgets, so the field is over the list limit and
                // larger than the table.
                debug_assert!(!keep);
                debug_assert!(kind != Literal::Incremental || size > self.table.capacity());
                if kind == Literal::Incremental {
                    self.table.clear();
                }
            }
        }
        Ok(())
    }
}

/// Reads a §5.2 string literal at `*pos`, materializing it only if its decoded length is at most `limit`.
fn read_string(block: &[u8], pos: &mut usize, limit: Option<usize>) -> Result<Str, DecoderError> {
    let huffman_coded = block.get(*pos).ok_or(DecoderError::Truncated)? & 0x80 != 0;
    let len = integer::decode(block, pos, 7)?;
    if len > MAX_STRING_LEN {
        return Err(DecoderError::StringTooLong {
            len,
            max: MAX_STRING_LEN,
        });
    }
    let raw = block
        .get(*pos..)
        .and_then(|rest| rest.get(..len))
        .ok_or(DecoderError::Truncated)?;
    *pos += len;

    if !huffman_coded {
        let bytes = limit
            .filter(|&l| len <= l)
            .map(|_| Bytes::copy_from_slice(raw));
        return Ok(Str { bytes, len });
    }
    let decoded_len = match limit {
        // Small enough whatever it decodes to: decode directly.
        Some(l) if huffman::max_decoded_len(len) <= l => None,
        _ => Some(huffman::decoded_len(raw).map_err(|_| DecoderError::InvalidHuffman)?),
    };
    match (decoded_len, limit) {
        (Some(n), Some(l)) if n > l => Ok(Str {
            bytes: None,
            len: n,
        }),
        (Some(n), None) => Ok(Str {
            bytes: None,
            len: n,
        }),
        _ => {
            let mut out = Vec::new();
            huffman::decode(raw, &mut out).map_err(|_| DecoderError::InvalidHuffman)?;
            Ok(Str {
                len: out.len(),
                bytes: Some(Bytes::from(out)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_indexed() {
        let mut d = Decoder::new(4096);
        let b = d.decode(&[0x82, 0x87], 1000).unwrap();
        assert_eq!(b.fields.len(), 2);
        assert_eq!(b.fields[0].name, ":method");
        assert_eq!(b.fields[1].value, "https");
        assert!(!b.over_limit);
    }

    #[test]
    fn invalid_indices() {
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&[0x80], 1000), Err(DecoderError::InvalidIndex(0)));
        assert_eq!(d.decode(&[0xbe], 1000), Err(DecoderError::InvalidIndex(62)));
        // Literal with a name index past the table.
        assert_eq!(
            d.decode(&[0x7e, 0x00], 1000),
            Err(DecoderError::InvalidIndex(62))
        );
        assert_eq!(
            d.decode(&[0x0f, 0x2f, 0x00], 1000),
            Err(DecoderError::InvalidIndex(62))
        );
    }

    #[test]
    fn skipped_strings_are_counted_not_kept() {
        let mut d = Decoder::new(64);
        // Literal without indexing, literal name "x", 200-byte raw value; limit 100.
        let mut block = vec![0x00, 0x01, b'x', 0x7f, 200 - 127];
        block.extend_from_slice(&[b'v'; 200]);
        block.push(0x82);
        let b = d.decode(&block, 100).unwrap();
        assert!(b.over_limit);
        assert!(
            b.fields.is_empty(),
            "fields after the limit are dropped too"
        );
        // Same with incremental indexing: the entry (233 bytes) is larger than the table, which gets emptied.
        d.decode(&[0x40, 0x01, b'a', 0x01, b'b'], 100).unwrap();
        assert_eq!(d.table_size(), 34);
        block[0] = 0x40;
        let b = d.decode(&block, 100).unwrap();
        assert!(b.over_limit);
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn string_too_long() {
        let mut d = Decoder::new(4096);
        // Declared length 2^24 + 126 with a 7-bit prefix: 127 + (2^24 - 1) encoded as continuation octets.
        let mut block = vec![0x00, 0x7f];
        integer::encode(MAX_STRING_LEN + 1 - 127, 8, 0, &mut Vec::new());
        let mut rest = MAX_STRING_LEN + 1 - 127;
        while rest >= 128 {
            block.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        block.push(rest as u8);
        assert_eq!(
            d.decode(&block, 1000),
            Err(DecoderError::StringTooLong {
                len: MAX_STRING_LEN + 1,
                max: MAX_STRING_LEN
            })
        );
    }
}
