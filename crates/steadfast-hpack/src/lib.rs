//! HPACK: header compression for HTTP/2 (RFC 7541).
//!
//! * [`Encoder`] turns header fields into header blocks, using the static table, a dynamic table shared with the
//!   peer's decoder, and the static Huffman code when it makes strings shorter.
//! * [`Decoder`] turns header blocks back into fields with bounded memory: integers, string lengths, table size
//!   updates and the decoded header list size are all limited, and no input makes it panic.
//!
//! Both sides keep per-connection state (the dynamic table): use one encoder and one decoder per connection
//! direction, and feed them every header block in order.
//!
//! ```
//! use bytes::BytesMut;
//! use steadfast_hpack::{Decoder, Encoder, Field};
//!
//! let mut encoder = Encoder::new();
//! let mut decoder = Decoder::new(4096);
//! let mut block = BytesMut::new();
//! encoder.encode(
//!     [
//!         Field { name: b":method", value: b"GET", sensitive: false },
//!         Field { name: b"authorization", value: b"Bearer abc", sensitive: true },
//!     ],
//!     &mut block,
//! );
//! let decoded = decoder.decode(&block, 16 * 1024).unwrap();
//! assert_eq!(decoded.fields[0].value, "GET");
//! assert!(decoded.fields[1].never_indexed);
//! assert!(!decoded.over_limit);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

use bytes::Bytes;

mod decoder;
mod encoder;
mod fuzz;
mod huffman;
mod integer;
mod table;

pub use decoder::{DecodedBlock, Decoder, MAX_STRING_LEN};
pub use encoder::{Encoder, HuffmanPolicy, DEFAULT_TABLE_SIZE};
#[doc(hidden)]
pub use fuzz::{fuzz_decode, fuzz_roundtrip};

/// A header field as given to the encoder.
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// Field name (HTTP/2 requires lowercase names; the encoder does not check).
    pub name: &'a [u8],
    /// Field value.
    pub value: &'a [u8],
    /// never index (RFC 7541 §7.1.3) when true
    pub sensitive: bool,
}

/// A decoded header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedField {
    /// Field name, as sent (not validated).
    pub name: Bytes,
    /// Field value, as sent (not validated).
    pub value: Bytes,
    /// sent as never-indexed literal
    pub never_indexed: bool,
}

impl DecodedField {
    /// RFC 7541 §4.1 size: name.len()+value.len()+32
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len() + table::ENTRY_OVERHEAD
    }
}

/// Why a header block could not be decoded.
///
/// Every variant is a COMPRESSION_ERROR at the HTTP/2 layer. After an error the decoder's dynamic table is no
/// longer in sync with the peer, so the connection must not decode further blocks with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecoderError {
    /// The block ended in the middle of a representation (integer, string or field).
    Truncated,
    /// An integer exceeded 2^32 - 1 or used more than five continuation octets.
    IntegerOverflow,
    /// An index of 0, or past the end of the static plus dynamic table.
    InvalidIndex(usize),
    /// A Huffman string contained the EOS symbol, or its padding was longer than 7 bits or not all ones.
    InvalidHuffman,
    /// A dynamic table size update came after a header field representation.
    SizeUpdateNotAtStart,
    /// A dynamic table size update asked for more than our advertised SETTINGS_HEADER_TABLE_SIZE.
    SizeUpdateTooLarge {
        /// The size the peer asked for.
        requested: usize,
        /// Our limit.
        max: usize,
    },
    /// A string literal declared a length above [`MAX_STRING_LEN`].
    StringTooLong {
        /// The declared length.
        len: usize,
        /// The ceiling.
        max: usize,
    },
    /// Our advertised table size was lowered below the size the peer was using, and the next header block did
    /// not start with a dynamic table size update bringing it within the new limit (RFC 7541 §4.2).
    MissingSizeUpdate {
        /// The table size the peer is still using.
        current: usize,
        /// Our limit.
        max: usize,
    },
}

impl fmt::Display for DecoderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecoderError::Truncated => f.write_str("HPACK block truncated"),
            DecoderError::IntegerOverflow => f.write_str("HPACK integer overflow"),
            DecoderError::InvalidIndex(i) => write!(f, "HPACK invalid table index {i}"),
            DecoderError::InvalidHuffman => f.write_str("HPACK invalid Huffman string"),
            DecoderError::SizeUpdateNotAtStart => {
                f.write_str("HPACK dynamic table size update not at the start of a header block")
            }
            DecoderError::SizeUpdateTooLarge { requested, max } => {
                write!(f, "HPACK dynamic table size update to {requested} exceeds the limit {max}")
            }
            DecoderError::StringTooLong { len, max } => {
                write!(f, "HPACK string literal of {len} bytes exceeds the limit {max}")
            }
            DecoderError::MissingSizeUpdate { current, max } => write!(
                f,
                "HPACK dynamic table size {current} exceeds the limit {max} and no size update was sent"
            ),
        }
    }
}

impl std::error::Error for DecoderError {}

/// The RFC 7541 Appendix B Huffman code table used by this crate, indexed by symbol (256 is EOS):
/// `(code aligned to the least significant bit, length in bits)`. Exposed so tests can compare it with an
/// independent copy.
#[doc(hidden)]
pub fn huffman_code_table() -> &'static [(u32, u8); 257] {
    huffman::code_table()
}
