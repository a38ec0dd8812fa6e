//! The HPACK static Huffman code (RFC 7541 §5.2 and Appendix B).
//!
//! Encoding uses the code table directly with a bit accumulator. Decoding uses a 4-bit-at-a-time state machine
//! derived from the code table once (lazily, through [`OnceLock`]): a state is an internal node of the code tree,
//! and each nibble moves to another node, emitting at most one symbol (the shortest code is 5 bits long).

use std::sync::OnceLock;

use bytes::BufMut;

/// Symbol number of the end-of-string code, which must never appear in an encoded string.
pub(crate) const EOS: usize = 256;

/// The Huffman code, indexed by symbol: `(code aligned to the least significant bit, length in bits)`.
///
/// Data from RFC 7541 Appendix B. The test suite checks it against an independent copy (the Python `hpack`
/// package's table) in `tests/python_interop.rs`, and checks here that it is a complete canonical prefix code.
pub(crate) const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30),
];

/// A Huffman string was malformed: it contained the EOS symbol, or its padding was longer than 7 bits or not
/// made of the most significant bits of EOS (all ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidHuffman;

/// Number of octets the Huffman encoding of `src` takes (including padding).
pub(crate) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(CODES[usize::from(b)].1))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman encoding of `src` (padded with ones to an octet boundary) to `dst`.
pub(crate) fn encode<B: BufMut>(src: &[u8], dst: &mut B) {
    // Invariant: before a code is appended `bits < 32`, and codes are at most 30 bits long, so the live bits of
    // `acc` never exceed 62; older bits shifted out of the top were already written.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        if bits >= 32 {
            bits -= 32;
            dst.put_u32((acc >> bits) as u32);
        }
    }
    while bits >= 8 {
        bits -= 8;
        dst.put_u8((acc >> bits) as u8);
    }
    if bits > 0 {
        // Pad with the most significant bits of EOS (all ones).
        let pad = 8 - bits;
        dst.put_u8(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
}

/// Number of symbols the Huffman string `src` decodes to, validating it completely without producing output.
pub(crate) fn decoded_len(src: &[u8]) -> Result<usize, InvalidHuffman> {
    let mut count = 0usize;
    run(src, |_| count += 1)?;
    Ok(count)
}

/// Decodes the Huffman string `src`, appending the symbols to `dst`. On error `dst` may hold a partial result.
pub(crate) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), InvalidHuffman> {
    // Every symbol takes at least 5 bits, so this reservation is an upper bound on the output.
    dst.reserve(src.len() * 8 / 5);
    run(src, |sym| dst.push(sym))
}

/// Upper bound on the decoded length of a Huffman string of `encoded_len` octets.
pub(crate) fn max_decoded_len(encoded_len: usize) -> usize {
    encoded_len.saturating_mul(8) / 5
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding state machine.

/// Transition flag: the transition emits the symbol in bits 8..16.
const EMIT: u32 = 1 << 16;
/// Transition flag: the transition decodes EOS, which is an error.
const FAIL: u32 = 1 << 17;

struct DecodeTable {
    /// `transitions[state * 16 + nibble]`: next state in bits 0..8, symbol in bits 8..16, flags above.
    transitions: Box<[u32; 256 * 16]>,
    /// Whether input may end in this state: the root (no pending bits) or a node reached by at most seven ones
    /// (valid padding).
    accepting: [bool; 256],
}

fn run(src: &[u8], mut emit: impl FnMut(u8)) -> Result<(), InvalidHuffman> {
    let table = decode_table();
    let t = &*table.transitions;
    let mut state = 0usize;
    for &b in src {
        for nibble in [b >> 4, b & 0x0f] {
            // `state` < 256 and nibble < 16; the mask lets the compiler drop the bounds check.
            let e = t[((state << 4) | usize::from(nibble)) & 0xfff];
            if e & (EMIT | FAIL) != 0 {
                if e & FAIL != 0 {
                    return Err(InvalidHuffman);
                }
                emit((e >> 8) as u8);
            }
            state = (e & 0xff) as usize;
        }
    }
    if table.accepting[state] {
        Ok(())
    } else {
        Err(InvalidHuffman)
    }
}

fn decode_table() -> &'static DecodeTable {
    static TABLE: OnceLock<DecodeTable> = OnceLock::new();
    TABLE.get_or_init(build_decode_table)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Child {
    Missing,
    Node(usize),
    Leaf(usize),
}

/// Builds the code tree from [`CODES`] and turns it into the nibble-driven state machine.
fn build_decode_table() -> DecodeTable {
    // Internal nodes; node 0 is the root. A complete prefix code over 257 symbols has exactly 256 of them.
    let mut nodes: Vec<[Child; 2]> = vec![[Child::Missing; 2]];
    // For each internal node: is its path from the root made only of ones, and how long is it.
    let mut all_ones: Vec<(bool, u32)> = vec![(true, 0)];
    for (sym, &(code, len)) in CODES.iter().enumerate() {
        let mut node = 0usize;
        for i in (0..u32::from(len)).rev() {
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                debug_assert!(
                    nodes[node][bit] == Child::Missing,
                    "code table is not prefix-free"
                );
                nodes[node][bit] = Child::Leaf(sym);
            } else {
                node = match nodes[node][bit] {
                    Child::Node(n) => n,
                    _ => {
                        let n = nodes.len();
                        nodes.push([Child::Missing; 2]);
                        let (ones, depth) = all_ones[node];
                        all_ones.push((ones && bit == 1, depth + 1));
                        nodes[node][bit] = Child::Node(n);
                        n
                    }
                };
            }
        }
    }
    debug_assert_eq!(nodes.len(), 256, "code table is not a complete prefix code");

    let mut transitions = Box::new([FAIL; 256 * 16]);
    let mut accepting = [false; 256];
    for (state, &(ones, depth)) in all_ones.iter().enumerate().take(256) {
        accepting[state] = ones && depth <= 7;
        for nibble in 0..16u32 {
            let mut node = state;
            let mut out = 0u32;
            let mut failed = false;
            for i in (0..4).rev() {
                let bit = ((nibble >> i) & 1) as usize;
                match nodes[node][bit] {
                    Child::Node(n) => node = n,
                    Child::Leaf(sym) if sym == EOS => failed = true,
                    Child::Leaf(sym) => {
                        // At most one symbol per nibble: codes are at least 5 bits long.
                        debug_assert!(out == 0);
                        out = EMIT | ((sym as u32) << 8);
                        node = 0;
                    }
                    // Unreachable for a complete code; treated as an error rather than a panic.
                    Child::Missing => failed = true,
                }
                if failed {
                    break;
                }
            }
            transitions[state * 16 + nibble as usize] =
                if failed { FAIL } else { out | (node as u32) };
        }
    }
    DecodeTable {
        transitions,
        accepting,
    }
}

/// Exposes the code table for tests that compare it with an independent copy.
pub(crate) fn code_table() -> &'static [(u32, u8); 257] {
    &CODES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(s, &mut v);
        assert_eq!(v.len(), encoded_len(s));
        v
    }

    fn dec(s: &[u8]) -> Result<Vec<u8>, InvalidHuffman> {
        let mut v = Vec::new();
        decode(s, &mut v)?;
        assert_eq!(decoded_len(s), Ok(v.len()));
        Ok(v)
    }

    use steadfast_testkit::unhex as hex;

    /// Kraft equality plus canonical ordering: lengths define a complete prefix code, and codes are assigned in
    /// (length, symbol) order as RFC 7541's table is. A typo in any code or most length typos break this.
    #[test]
    fn table_is_complete_canonical_code() {
        let mut kraft: u64 = 0;
        for &(code, len) in CODES.iter() {
            assert!((5..=30).contains(&len));
            assert!(u64::from(code) < (1u64 << len));
            kraft += 1u64 << (30 - len);
        }
        assert_eq!(kraft, 1u64 << 30, "Kraft sum must be exactly 1");
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (CODES[s].1, s));
        let mut code: u64 = 0;
        let mut prev_len = CODES[order[0]].1;
        for (k, &s) in order.iter().enumerate() {
            let len = CODES[s].1;
            if k > 0 {
                code = (code + 1) << (len - prev_len);
            }
            prev_len = len;
            assert_eq!(u64::from(CODES[s].0), code, "symbol {s}");
        }
        assert_eq!(CODES[EOS], (0x3fff_ffff, 30));
    }

    /// Strings from RFC 7541 C.4 and C.6.
    #[test]
    fn rfc_examples() {
        let cases: &[(&str, &str)] = &[
            ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
            ("no-cache", "a8eb 1064 9cbf"),
            ("custom-key", "25a8 49e9 5ba9 7d7f"),
            ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
            ("302", "6402"),
            ("307", "640e ff"),
            ("private", "aec3 771a 4b"),
            ("Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"),
            ("https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"),
            ("Mon, 21 Oct 2013 20:13:22 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff"),
            ("gzip", "9bd9 ab"),
            (
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 \
                 b106 3d50 07",
            ),
        ];
        for &(plain, coded) in cases {
            assert_eq!(enc(plain.as_bytes()), hex(coded), "{plain}");
            assert_eq!(dec(&hex(coded)).unwrap(), plain.as_bytes(), "{plain}");
        }
    }

    #[test]
    fn all_byte_values_round_trip() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(dec(&enc(&all)).unwrap(), all);
        for b in 0..=255u8 {
            for n in 1..=9 {
                let s = vec![b; n];
                assert_eq!(dec(&enc(&s)).unwrap(), s);
            }
        }
        assert_eq!(dec(&[]).unwrap(), b"");
        assert!(enc(b"").is_empty());
    }

    #[test]
    fn eos_is_rejected() {
        // EOS (30 ones) followed by two padding ones: a full 32-bit all-ones string.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(InvalidHuffman));
        // 'a' (00011) then EOS (30 ones) then padding to 40 bits.
        assert_eq!(dec(&[0x1f, 0xff, 0xff, 0xff, 0xff]), Err(InvalidHuffman));
        assert_eq!(decoded_len(&[0xff, 0xff, 0xff, 0xff]), Err(InvalidHuffman));
    }

    #[test]
    fn bad_padding_is_rejected() {
        // '0' is 00000; padding of 3 zero bits instead of ones.
        assert_eq!(dec(&[0b0000_0000]), Err(InvalidHuffman));
        // '0' then padding 110 (not all ones).
        assert_eq!(dec(&[0b0000_0110]), Err(InvalidHuffman));
        // Correct padding for comparison.
        assert_eq!(dec(&[0b0000_0111]).unwrap(), b"0");
        // Padding longer than 7 bits: a valid string followed by a whole 0xff octet.
        assert_eq!(dec(&[0b0000_0111, 0xff]), Err(InvalidHuffman));
        assert_eq!(dec(&[0xff]), Err(InvalidHuffman));
        // A string ending inside a longer code whose prefix is not all ones: '<' is 15 bits 11111111|1111100.
        assert_eq!(dec(&[0xff, 0xf8]), Err(InvalidHuffman));
        assert_eq!(dec(&[0xff, 0xf9]).unwrap(), b"<");
    }

    #[test]
    fn max_decoded_len_is_an_upper_bound() {
        let s = vec![b'0'; 1000];
        let e = enc(&s);
        assert!(max_decoded_len(e.len()) >= s.len());
    }
}
