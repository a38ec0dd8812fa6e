//! Fuzzing entry points, shared by the `fuzz/` cargo-fuzz targets and the unit tests that run them on
//! pseudo-random input. They panic (via `assert!`) when an invariant is broken: that is the point.

use bytes::BytesMut;

use crate::encoder::never_indexed_by_default;
use crate::{Decoder, Encoder, Field, HuffmanPolicy};

/// Decodes arbitrary bytes as a sequence of header blocks and checks the decoder's invariants.
///
/// Layout: byte 0 picks the table size (`× 32`), byte 1 the maximum header list size (`× 64`, or unlimited for
/// 255). Then, repeatedly, a control byte: `0xf0..=0xff` changes our advertised table size to `(c & 15) × 512`;
/// any other value `n` is followed by a header block of `n` bytes (fewer at the end of the input). Decoding stops
/// at the first error, as a connection would.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let [table, list, rest @ ..] = data else {
        return;
    };
    let mut limit = usize::from(*table) * 32;
    let max_list = if *list == 0xff {
        usize::MAX
    } else {
        usize::from(*list) * 64
    };
    let mut decoder = Decoder::new(limit);
    let mut rest = rest;
    while let [control, tail @ ..] = rest {
        if *control >= 0xf0 {
            limit = usize::from(*control & 0x0f) * 512;
            decoder.set_max_table_size(limit);
            rest = tail;
            continue;
        }
        let n = usize::from(*control).min(tail.len());
        let (block, tail) = tail.split_at(n);
        rest = tail;
        let Ok(decoded) = decoder.decode(block, max_list) else {
            return;
        };
        let kept: usize = decoded.fields.iter().map(|f| f.size()).sum();
        assert!(
            kept <= max_list,
            "kept {kept} bytes of fields, limit {max_list}"
        );
        assert!(decoder.table_capacity() <= limit);
        assert!(decoder.table_size() <= decoder.table_capacity());
        let entries: usize = decoder
            .dynamic_entries()
            .map(|(n, v)| n.len() + v.len() + 32)
            .sum();
        assert_eq!(entries, decoder.table_size());
    }
}

/// Builds header sets from arbitrary bytes, encodes them with an [`Encoder`], decodes them with a [`Decoder`],
/// and checks that the fields and both dynamic tables agree after every block.
///
/// Layout: byte 0 picks the encoder's table size cap (`× 64`) and byte 1 the Huffman policy. Then ops: `0xf0..`
/// changes the table size setting to `(op & 15) × 256`; `0xe0..0xf0` ends the current block; anything else adds a
/// field whose name comes from a small vocabulary (or the input) and whose value is taken from the input.
#[doc(hidden)]
pub fn fuzz_roundtrip(data: &[u8]) {
    const NAMES: [&[u8]; 12] = [
        b":method",
        b":path",
        b":authority",
        b":status",
        b"content-type",
        b"cookie",
        b"authorization",
        b"user-agent",
        b"x-trace-id",
        b"grpc-timeout",
        b"accept-encoding",
        b"x-custom",
    ];
    let [cap, policy, rest @ ..] = data else {
        return;
    };
    let mut encoder = Encoder::with_table_size_cap(usize::from(*cap) * 64);
    encoder.set_huffman_policy(match policy % 3 {
        0 => HuffmanPolicy::Auto,
        1 => HuffmanPolicy::Always,
        _ => HuffmanPolicy::Never,
    });
    let mut decoder = Decoder::new(4096);
    let mut fields: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::new();
    let mut rest = rest;
    loop {
        let (op, tail) = match rest {
            [op, tail @ ..] => (*op, tail),
            [] => (0xe0, rest),
        };
        rest = tail;
        if op >= 0xf0 {
            let size = usize::from(op & 0x0f) * 256;
            decoder.set_max_table_size(size);
            encoder.set_max_table_size(size);
        } else if op >= 0xe0 {
            let mut block = BytesMut::new();
            encoder.encode(
                fields.iter().map(|(n, v, s)| Field {
                    name: n,
                    value: v,
                    sensitive: *s,
                }),
                &mut block,
            );
            let decoded = match decoder.decode(&block, usize::MAX) {
                Ok(d) => d,
                Err(e) => panic!("our own block failed to decode: {e:?}"),
            };
            assert!(!decoded.over_limit);
            assert_eq!(decoded.fields.len(), fields.len());
            for (got, (n, v, s)) in decoded.fields.iter().zip(&fields) {
                assert_eq!((&got.name[..], &got.value[..]), (&n[..], &v[..]));
                assert_eq!(got.never_indexed, *s || never_indexed_by_default(n, v));
            }
            assert_eq!(encoder.table_size(), decoder.table_size());
            assert!(encoder.dynamic_entries().eq(decoder.dynamic_entries()));
            fields.clear();
            if rest.is_empty() {
                return;
            }
        } else {
            let name: Vec<u8> = if op & 0x0f < 12 {
                NAMES[usize::from(op & 0x0f)].to_vec()
            } else {
                take(&mut rest, usize::from(op >> 4) + 1).to_vec()
            };
            let value_len = rest.first().map_or(0, |&b| usize::from(b & 0x3f));
            rest = rest.get(1..).unwrap_or(&[]);
            let value = take(&mut rest, value_len).to_vec();
            fields.push((name, value, op & 0x80 != 0 && op & 0x40 != 0));
        }
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(rest.len());
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    use steadfast_testkit::Rng;

    /// Pseudo-random inputs biased towards HPACK structure, so decoding gets past the first few bytes.
    fn structured_input(rng: &mut Rng, buf: &mut Vec<u8>) {
        buf.clear();
        buf.push(rng.below(256) as u8);
        buf.push(rng.below(256) as u8);
        let len = rng.below(300) as usize;
        while buf.len() < len {
            match rng.below(10) {
                // Block length control byte (keeps blocks short enough to be followed by more).
                0 => buf.push(rng.below(0x40) as u8),
                1 => buf.push(0xf0 | rng.below(16) as u8),
                // Indexed field, mostly static.
                2 => buf.push(0x80 | rng.below(70) as u8),
                // Literal with indexing, static name, short raw value.
                3 => {
                    buf.push(0x40 | rng.below(62) as u8);
                    let n = rng.below(10) as u8;
                    buf.push(n);
                    buf.extend((0..n).map(|_| b'a' + rng.below(26) as u8));
                }
                // Huffman string with random content.
                4 => {
                    let n = rng.below(8) as u8;
                    buf.push(0x80 | n);
                    buf.extend((0..n).map(|_| rng.below(256) as u8));
                }
                // Size update.
                5 => buf.push(0x20 | rng.below(32) as u8),
                _ => buf.push(rng.below(256) as u8),
            }
        }
    }

    #[test]
    fn fuzz_decode_pseudo_random_inputs() {
        let mut rng = Rng::new(0x5eed_0001);
        let mut buf = Vec::new();
        for i in 0..100_000 {
            if i % 2 == 0 {
                structured_input(&mut rng, &mut buf);
            } else {
                buf.clear();
                let len = rng.below(200) as usize;
                buf.extend((0..len).map(|_| rng.below(256) as u8));
            }
            fuzz_decode(&buf);
        }
    }

    #[test]
    fn fuzz_roundtrip_pseudo_random_inputs() {
        let mut rng = Rng::new(0x5eed_0002);
        let mut buf = Vec::new();
        for _ in 0..20_000 {
            buf.clear();
            let len = rng.below(400) as usize;
            buf.extend((0..len).map(|_| rng.below(256) as u8));
            fuzz_roundtrip(&buf);
        }
    }
}
