//! Malformed and hostile input: every error path, truncation at every length, and the header list limit.

use bytes::BytesMut;
use steadfast_hpack::{Decoder, DecoderError, Encoder, Field, HuffmanPolicy, MAX_STRING_LEN};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn field<'a>(name: &'a str, value: &'a str) -> Field<'a> {
    Field {
        name: name.as_bytes(),
        value: value.as_bytes(),
        sensitive: false,
    }
}

/// Appends an HPACK integer (RFC 7541 §5.1), written independently of the crate's encoder.
fn int(dst: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: u64) {
    let max = (1u64 << prefix_bits) - 1;
    if value < max {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        dst.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

/// Sequences of valid blocks: the RFC 7541 C.3–C.6 examples and blocks from our encoder that exercise multi-octet
/// integers, Huffman and raw strings, size updates and all literal kinds.
fn valid_sequences() -> Vec<(usize, Vec<Vec<u8>>)> {
    let mut seqs = vec![
        (
            4096,
            vec![
                hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
                hex("8286 84be 5808 6e6f 2d63 6163 6865"),
                hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
            ],
        ),
        (
            4096,
            vec![
                hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
                hex("8286 84be 5886 a8eb 1064 9cbf"),
                hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
            ],
        ),
        (
            256,
            vec![
                hex("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"),
                hex("4883 640e ffc1 c0bf"),
                hex("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                     9587 3160 65c0 03ed 4ee5 b106 3d50 07"),
            ],
        ),
    ];
    for policy in [HuffmanPolicy::Auto, HuffmanPolicy::Never] {
        let mut e = Encoder::new();
        e.set_huffman_policy(policy);
        let long = "v".repeat(300);
        let mut blocks = Vec::new();
        for round in 0..3 {
            if round == 2 {
                e.set_max_table_size(0);
                e.set_max_table_size(3000);
            }
            let mut dst = BytesMut::new();
            e.encode(
                [
                    field(":method", "POST"),
                    field(":path", "/helloworld.Greeter/SayHello"),
                    field("x-long", &long),
                    Field {
                        name: b"x-secret",
                        value: b"hunter2",
                        sensitive: true,
                    },
                    field("x-binary", "\u{7f}\u{1}\u{ff}"),
                    field("content-type", "application/grpc"),
                ],
                &mut dst,
            );
            blocks.push(dst.to_vec());
        }
        seqs.push((4096, blocks));
    }
    seqs
}

#[test]
fn truncation_at_every_length_never_panics() {
    let mut checked = 0;
    for (table_size, blocks) in valid_sequences() {
        let mut decoder = Decoder::new(table_size);
        for block in &blocks {
            let full = decoder
                .clone()
                .decode(block, usize::MAX)
                .expect("valid block");
            for cut in 0..block.len() {
                let mut d = decoder.clone();
                match d.decode(&block[..cut], usize::MAX) {
                    // Cut at a representation boundary: a prefix of the fields.
                    Ok(partial) => {
                        assert!(partial.fields.len() <= full.fields.len());
                        assert_eq!(partial.fields[..], full.fields[..partial.fields.len()]);
                    }
                    Err(e) => assert_eq!(
                        e,
                        DecoderError::Truncated,
                        "cut at {cut} of {}",
                        block.len()
                    ),
                }
                checked += 1;
            }
            decoder.decode(block, usize::MAX).unwrap();
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn invalid_index() {
    let mut d = Decoder::new(4096);
    assert_eq!(d.decode(&[0x80], 1000), Err(DecoderError::InvalidIndex(0)));
    assert_eq!(d.decode(&[0xbe], 1000), Err(DecoderError::InvalidIndex(62)));
    let mut big = Vec::new();
    int(&mut big, 0x80, 7, 1 << 31);
    assert_eq!(
        d.decode(&big, 1000),
        Err(DecoderError::InvalidIndex(1 << 31))
    );
    // One entry in the table: 62 is valid, 63 is not.
    let mut d = Decoder::new(4096);
    d.decode(&hex("4001 6101 62"), 1000).unwrap();
    assert_eq!(d.decode(&[0xbe], 1000).unwrap().fields[0].name, "a");
    assert_eq!(d.decode(&[0xbf], 1000), Err(DecoderError::InvalidIndex(63)));
    // Name references of all three literal kinds.
    assert_eq!(
        d.decode(&[0x7f, 0x00, 0x00], 1000),
        Err(DecoderError::InvalidIndex(63))
    );
    assert_eq!(
        d.decode(&[0x0f, 0x30, 0x00], 1000),
        Err(DecoderError::InvalidIndex(63))
    );
    assert_eq!(
        d.decode(&[0x1f, 0x30, 0x00], 1000),
        Err(DecoderError::InvalidIndex(63))
    );
}

#[test]
fn eos_in_huffman_string() {
    let mut d = Decoder::new(4096);
    // Value: EOS (30 ones) + 2 bits of padding.
    assert_eq!(
        d.decode(&hex("0001 6184 ffff ffff"), 1000),
        Err(DecoderError::InvalidHuffman)
    );
    // Name: 'a' then EOS.
    assert_eq!(
        d.decode(&hex("0085 1fff ffff ff00"), 1000),
        Err(DecoderError::InvalidHuffman)
    );
    // Even when the field would be dropped for being over the header list limit.
    assert_eq!(
        d.decode(&hex("0001 6184 ffff ffff"), 0),
        Err(DecoderError::InvalidHuffman)
    );
}

#[test]
fn bad_huffman_padding() {
    let mut d = Decoder::new(4096);
    // '0' (00000) followed by padding 000.
    assert_eq!(
        d.decode(&hex("0001 6181 00"), 1000),
        Err(DecoderError::InvalidHuffman)
    );
    // '0' followed by padding 101.
    assert_eq!(
        d.decode(&hex("0001 6181 05"), 1000),
        Err(DecoderError::InvalidHuffman)
    );
    // Padding longer than 7 bits: '0' + 111 + a whole octet of ones.
    assert_eq!(
        d.decode(&hex("0001 6182 07ff"), 1000),
        Err(DecoderError::InvalidHuffman)
    );
    // Control: correct padding.
    assert_eq!(
        d.decode(&hex("0001 6181 07"), 1000).unwrap().fields[0].value,
        "0"
    );
}

#[test]
fn size_update_too_large() {
    let mut d = Decoder::new(4096);
    let mut b = Vec::new();
    int(&mut b, 0x20, 5, 4097);
    assert_eq!(
        d.decode(&b, 1000),
        Err(DecoderError::SizeUpdateTooLarge {
            requested: 4097,
            max: 4096
        })
    );
    let mut d = Decoder::new(0);
    assert_eq!(
        d.decode(&[0x21], 1000),
        Err(DecoderError::SizeUpdateTooLarge {
            requested: 1,
            max: 0
        })
    );
    // Raising our limit allows it.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(8192);
    let mut b = Vec::new();
    int(&mut b, 0x20, 5, 8192);
    d.decode(&b, 1000).unwrap();
    assert_eq!(d.table_capacity(), 8192);
}

#[test]
fn size_update_not_at_start() {
    let mut d = Decoder::new(4096);
    assert_eq!(
        d.decode(&[0x82, 0x20], 1000),
        Err(DecoderError::SizeUpdateNotAtStart)
    );
    let mut d = Decoder::new(4096);
    assert_eq!(
        d.decode(&[0x20, 0x82, 0x3f, 0x01], 1000),
        Err(DecoderError::SizeUpdateNotAtStart)
    );
    // Several at the start are fine; they apply in order.
    let mut d = Decoder::new(4096);
    d.decode(&hex("4001 6101 62"), 1000).unwrap();
    let b = d.decode(&hex("20 3fe1 1f 82"), 1000).unwrap();
    assert_eq!(b.fields.len(), 1);
    assert_eq!((d.table_size(), d.table_capacity()), (0, 4096));
}

#[test]
fn lowered_limit_requires_size_update() {
    let mut d = Decoder::new(4096);
    d.decode(&hex("4001 6101 62"), 1000).unwrap();
    d.set_max_table_size(1024);
    assert_eq!(
        d.decode(&[0x82], 1000),
        Err(DecoderError::MissingSizeUpdate {
            current: 4096,
            max: 1024
        })
    );
    let mut d = Decoder::new(4096);
    d.set_max_table_size(1024);
    assert_eq!(
        d.decode(&[], 1000),
        Err(DecoderError::MissingSizeUpdate {
            current: 4096,
            max: 1024
        })
    );
    let mut d = Decoder::new(4096);
    d.set_max_table_size(1024);
    let mut b = Vec::new();
    int(&mut b, 0x20, 5, 1024);
    b.push(0x82);
    assert_eq!(d.decode(&b, 1000).unwrap().fields.len(), 1);
    // Lowered and raised back before the next block: the table never exceeded the final limit.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(0);
    d.set_max_table_size(4096);
    assert_eq!(d.decode(&[0x82], 1000).unwrap().fields.len(), 1);
}

#[test]
fn integer_overflow() {
    let mut d = Decoder::new(4096);
    // Index with six continuation octets.
    assert_eq!(
        d.decode(&hex("ff ffff ffff ff01"), 1000),
        Err(DecoderError::IntegerOverflow)
    );
    // Index above 2^32 - 1.
    let mut b = Vec::new();
    int(&mut b, 0x80, 7, 1 << 32);
    assert_eq!(d.decode(&b, 1000), Err(DecoderError::IntegerOverflow));
    // String length.
    let mut b = vec![0x00];
    int(&mut b, 0x00, 7, 1 << 33);
    assert_eq!(d.decode(&b, 1000), Err(DecoderError::IntegerOverflow));
    // Size update.
    let mut b = Vec::new();
    int(&mut b, 0x20, 5, u64::from(u32::MAX) + 1);
    assert_eq!(d.decode(&b, 1000), Err(DecoderError::IntegerOverflow));
}

#[test]
fn string_length_checked_before_allocating() {
    let mut d = Decoder::new(4096);
    // A declared length far beyond the input is truncation, detected before anything is allocated.
    let mut b = vec![0x00];
    int(&mut b, 0x00, 7, 1 << 20);
    b.extend_from_slice(b"abc");
    assert_eq!(d.decode(&b, usize::MAX), Err(DecoderError::Truncated));
    // Beyond the ceiling.
    let mut b = vec![0x00];
    int(&mut b, 0x00, 7, MAX_STRING_LEN as u64 + 1);
    assert_eq!(
        d.decode(&b, usize::MAX),
        Err(DecoderError::StringTooLong {
            len: MAX_STRING_LEN + 1,
            max: MAX_STRING_LEN
        })
    );
}

fn encode(e: &mut Encoder, fields: &[Field<'_>]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    e.encode(fields.iter().copied(), &mut dst);
    dst.to_vec()
}

#[test]
fn over_limit_keeps_table_in_sync() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let values: Vec<String> = (0..20)
        .map(|i| format!("value-{i:02}-{}", "x".repeat(i * 7)))
        .collect();
    let names: Vec<String> = (0..20).map(|i| format!("x-header-{i}")).collect();
    let fields: Vec<Field<'_>> = names
        .iter()
        .zip(&values)
        .map(|(n, v)| field(n, v))
        .collect();

    // Block 1 indexes 20 fields; the header list limit is hit after a few.
    let block1 = encode(&mut e, &fields);
    let limit = 200;
    let decoded = d.decode(&block1, limit).unwrap();
    assert!(decoded.over_limit);
    assert!(
        !decoded.fields.is_empty() && decoded.fields.len() < 5,
        "{}",
        decoded.fields.len()
    );
    assert!(decoded.fields.iter().map(|f| f.size()).sum::<usize>() <= limit);
    for (got, want) in decoded.fields.iter().zip(&fields) {
        assert_eq!((&got.name[..], &got.value[..]), (want.name, want.value));
    }
    // The decoder still added every field to its table.
    assert_eq!(d.table_size(), e.table_size());
    assert!(d.dynamic_entries().eq(e.dynamic_entries()));

    // Block 2 references entries that were added after the limit was hit: it decodes correctly, all indexed.
    let block2 = encode(&mut e, &fields[10..]);
    assert_eq!(block2.len(), 10, "all indexed representations");
    let decoded = d.decode(&block2, 64 * 1024).unwrap();
    assert!(!decoded.over_limit);
    assert_eq!(decoded.fields.len(), 10);
    for (got, want) in decoded.fields.iter().zip(&fields[10..]) {
        assert_eq!((&got.name[..], &got.value[..]), (want.name, want.value));
    }
}

#[test]
fn over_limit_with_huge_strings_and_zero_limit() {
    let mut e = Encoder::with_table_size_cap(64 * 1024);
    e.set_max_table_size(64 * 1024);
    let mut d = Decoder::new(4096);
    d.set_max_table_size(64 * 1024);
    let big = "b".repeat(20_000);
    let fields = [
        field("x-small", "1"),
        field("x-big", &big),
        field("x-after", "2"),
        field(":method", "GET"),
    ];
    let block = encode(&mut e, &fields);
    // With a zero limit nothing is kept but the table still follows the encoder.
    let decoded = d.decode(&block, 0).unwrap();
    assert!(decoded.over_limit);
    assert!(decoded.fields.is_empty());
    assert!(d.dynamic_entries().eq(e.dynamic_entries()));
    let again = encode(&mut e, &fields);
    let decoded = d.decode(&again, usize::MAX).unwrap();
    assert_eq!(decoded.fields.len(), 4);
    assert_eq!(decoded.fields[1].value.len(), 20_000);
}

#[test]
fn name_reference_to_entry_evicted_by_the_insertion() {
    // Table of exactly one entry's size: inserting a new entry that reuses the old entry's name evicts the old one
    // first (RFC 7541 §4.4): the name must survive.
    let mut d = Decoder::new(4096);
    let mut b = Vec::new();
    int(&mut b, 0x20, 5, 32 + 6 + 2);
    b.extend_from_slice(&hex("40 06 782d 6e61 6d65 02 7631")); // x-name: v1
    d.decode(&b, 1000).unwrap();
    assert_eq!(d.table_size(), 40);
    let out = d.decode(&hex("7e 02 7632"), 1000).unwrap(); // name index 62, value v2
    assert_eq!(out.fields[0].name, "x-name");
    assert_eq!(out.fields[0].value, "v2");
    assert_eq!(
        d.dynamic_entries().collect::<Vec<_>>(),
        [(&b"x-name"[..], &b"v2"[..])]
    );
}

#[test]
fn entry_larger_than_table_empties_it() {
    let mut d = Decoder::new(100);
    d.decode(&hex("4001 6101 62"), 1000).unwrap();
    assert_eq!(d.table_size(), 34);
    let mut b = vec![0x40, 0x01, b'c', 0x44];
    b.extend_from_slice(&[b'd'; 0x44]); // 1 + 68 + 32 = 101 > 100
    let out = d.decode(&b, 1000).unwrap();
    assert_eq!(out.fields.len(), 1, "the field itself is still emitted");
    assert_eq!(d.table_size(), 0);
    assert_eq!(d.dynamic_entries().count(), 0);
}

#[test]
fn errors_display_and_are_std_errors() {
    let errors = [
        DecoderError::Truncated,
        DecoderError::IntegerOverflow,
        DecoderError::InvalidIndex(70),
        DecoderError::InvalidHuffman,
        DecoderError::SizeUpdateNotAtStart,
        DecoderError::SizeUpdateTooLarge {
            requested: 2,
            max: 1,
        },
        DecoderError::StringTooLong { len: 2, max: 1 },
        DecoderError::MissingSizeUpdate { current: 2, max: 1 },
    ];
    for e in errors {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e.clone());
        assert!(boxed.to_string().starts_with("HPACK"), "{boxed}");
    }
    assert_eq!(
        DecoderError::InvalidIndex(70).to_string(),
        "HPACK invalid table index 70"
    );
}

#[test]
fn list_size_counts_every_field_kept_or_not() {
    let mut d = Decoder::new(4096);
    // One 4,000-byte field added to the table, then 20 one-byte references to it: the
    // HPACK bomb shape. 21 bytes decode to 20 times the field's size.
    let mut block = vec![0x40, 0x06];
    block.extend_from_slice(b"x-bomb");
    block.extend_from_slice(&[0x7f, 0xa1, 0x1e]); // length 4000, 7-bit prefix
    block.extend(std::iter::repeat_n(b'b', 4000));
    let first = d.decode(&block, 64 * 1024).unwrap();
    assert!(!first.over_limit);
    let entry = 6 + 4000 + 32;
    assert_eq!(first.list_size, entry);

    let bomb = vec![0xbe; 20]; // index 62: the newest dynamic entry
    let decoded = d.decode(&bomb, 64 * 1024).unwrap();
    assert!(decoded.over_limit);
    assert_eq!(decoded.list_size, 20 * entry, "counted past the limit");
    assert!(decoded.fields.len() < 20, "not kept past the limit");
}
