//! Every example of RFC 7541 Appendix C, checked on the decoder (fields, dynamic table contents and size after each
//! block) and, where our encoder makes the same choices as the RFC, on the encoder's exact bytes.

use bytes::BytesMut;
use steadfast_hpack::{DecodedField, Decoder, Encoder, Field, HuffmanPolicy};

use steadfast_testkit::unhex as hex;

type Pairs = &'static [(&'static str, &'static str)];

/// One header block of an example: its encoding, the fields it decodes to, and the dynamic table afterwards
/// (newest first) with its size.
struct Step {
    encoded: &'static str,
    fields: Pairs,
    table: Pairs,
    table_size: usize,
}

fn pairs(fields: &[DecodedField]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|f| {
            (
                String::from_utf8(f.name.to_vec()).unwrap(),
                String::from_utf8(f.value.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn owned(p: Pairs) -> Vec<(String, String)> {
    p.iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn table_of<'a>(entries: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<(String, String)> {
    entries
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn check_decoder(table_size: usize, steps: &[Step]) {
    let mut decoder = Decoder::new(table_size);
    for (i, step) in steps.iter().enumerate() {
        let block = decoder
            .decode(&hex(step.encoded), 64 * 1024)
            .unwrap_or_else(|e| panic!("step {i}: {e}"));
        assert!(!block.over_limit);
        assert_eq!(pairs(&block.fields), owned(step.fields), "step {i} fields");
        assert!(block.fields.iter().all(|f| !f.never_indexed));
        assert_eq!(
            table_of(decoder.dynamic_entries()),
            owned(step.table),
            "step {i} table"
        );
        assert_eq!(decoder.table_size(), step.table_size, "step {i} table size");
    }
}

fn check_encoder(mut encoder: Encoder, steps: &[Step]) {
    for (i, step) in steps.iter().enumerate() {
        let mut dst = BytesMut::new();
        encoder.encode(
            step.fields.iter().map(|&(n, v)| Field {
                name: n.as_bytes(),
                value: v.as_bytes(),
                sensitive: false,
            }),
            &mut dst,
        );
        assert_eq!(dst.to_vec(), hex(step.encoded), "step {i} bytes");
        assert_eq!(
            table_of(encoder.dynamic_entries()),
            owned(step.table),
            "step {i} encoder table"
        );
        assert_eq!(
            encoder.table_size(),
            step.table_size,
            "step {i} encoder table size"
        );
    }
}

fn encoder_with(policy: HuffmanPolicy) -> Encoder {
    let mut e = Encoder::new();
    e.set_huffman_policy(policy);
    e
}

fn small_encoder_with(policy: HuffmanPolicy) -> Encoder {
    let mut e = Encoder::with_unsignaled_table_size(256);
    e.set_huffman_policy(policy);
    e
}

// ---------------------------------------------------------------------------------------------------------------
// C.1 Integer representation examples, observed through dynamic table size updates (5-bit prefix). The 8-bit
// prefix example (C.1.3) has no header block form; it is covered with the other two by unit tests in
// src/integer.rs.

#[test]
fn c_1_1_integer_10_with_5_bit_prefix() {
    let mut d = Decoder::new(4096);
    // 001 01010: dynamic table size update to 10.
    assert!(d.decode(&[0b0010_1010], 1000).unwrap().fields.is_empty());
    assert_eq!(d.table_capacity(), 10);

    let mut e = Encoder::new();
    e.set_max_table_size(10);
    let mut dst = BytesMut::new();
    e.encode([], &mut dst);
    assert_eq!(dst[..], [0b0010_1010]);
}

#[test]
fn c_1_2_integer_1337_with_5_bit_prefix() {
    let mut d = Decoder::new(4096);
    assert!(d
        .decode(&[0b0011_1111, 0b1001_1010, 0b0000_1010], 1000)
        .unwrap()
        .fields
        .is_empty());
    assert_eq!(d.table_capacity(), 1337);

    let mut e = Encoder::new();
    e.set_max_table_size(1337);
    let mut dst = BytesMut::new();
    e.encode([], &mut dst);
    assert_eq!(dst[..], [0b0011_1111, 0b1001_1010, 0b0000_1010]);
}

// ---------------------------------------------------------------------------------------------------------------
// C.2 Header field representation examples.

#[test]
fn c_2_1_literal_with_indexing() {
    let step = Step {
        encoded: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        fields: &[("custom-key", "custom-header")],
        table: &[("custom-key", "custom-header")],
        table_size: 55,
    };
    check_decoder(4096, std::slice::from_ref(&step));
    check_encoder(encoder_with(HuffmanPolicy::Never), &[step]);
}

#[test]
fn c_2_2_literal_without_indexing() {
    // Our encoder would index this field, so only the decoder is checked against the RFC's bytes.
    let mut d = Decoder::new(4096);
    let block = d
        .decode(&hex("040c 2f73 616d 706c 652f 7061 7468"), 1000)
        .unwrap();
    assert_eq!(pairs(&block.fields), owned(&[(":path", "/sample/path")]));
    assert!(!block.fields[0].never_indexed);
    assert_eq!(d.table_size(), 0);
    assert_eq!(d.dynamic_entries().count(), 0);
}

#[test]
fn c_2_3_literal_never_indexed() {
    let encoded = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    let mut d = Decoder::new(4096);
    let block = d.decode(&encoded, 1000).unwrap();
    assert_eq!(pairs(&block.fields), owned(&[("password", "secret")]));
    assert!(block.fields[0].never_indexed);
    assert_eq!(d.table_size(), 0);

    let mut e = encoder_with(HuffmanPolicy::Never);
    let mut dst = BytesMut::new();
    e.encode(
        [Field {
            name: b"password",
            value: b"secret",
            sensitive: true,
        }],
        &mut dst,
    );
    assert_eq!(dst.to_vec(), encoded);
    assert_eq!(e.table_size(), 0);
}

#[test]
fn c_2_4_indexed() {
    let step = Step {
        encoded: "82",
        fields: &[(":method", "GET")],
        table: &[],
        table_size: 0,
    };
    check_decoder(4096, std::slice::from_ref(&step));
    check_encoder(encoder_with(HuffmanPolicy::Never), &[step]);
}

// ---------------------------------------------------------------------------------------------------------------
// C.3 / C.4 Request examples.

const REQUEST_1: Pairs = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQUEST_2: Pairs = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: Pairs = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQUEST_TABLE_1: Pairs = &[(":authority", "www.example.com")];
const REQUEST_TABLE_2: Pairs = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQUEST_TABLE_3: Pairs = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

const C3: [Step; 3] = [
    Step {
        encoded: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        fields: REQUEST_1,
        table: REQUEST_TABLE_1,
        table_size: 57,
    },
    Step {
        encoded: "8286 84be 5808 6e6f 2d63 6163 6865",
        fields: REQUEST_2,
        table: REQUEST_TABLE_2,
        table_size: 110,
    },
    Step {
        encoded: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        fields: REQUEST_3,
        table: REQUEST_TABLE_3,
        table_size: 164,
    },
];

const C4: [Step; 3] = [
    Step {
        encoded: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        fields: REQUEST_1,
        table: REQUEST_TABLE_1,
        table_size: 57,
    },
    Step {
        encoded: "8286 84be 5886 a8eb 1064 9cbf",
        fields: REQUEST_2,
        table: REQUEST_TABLE_2,
        table_size: 110,
    },
    Step {
        encoded: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        fields: REQUEST_3,
        table: REQUEST_TABLE_3,
        table_size: 164,
    },
];

#[test]
fn c_3_requests_without_huffman_decoder() {
    check_decoder(4096, &C3);
}

#[test]
fn c_3_requests_without_huffman_encoder() {
    check_encoder(encoder_with(HuffmanPolicy::Never), &C3);
}

#[test]
fn c_4_requests_with_huffman_decoder() {
    check_decoder(4096, &C4);
}

#[test]
fn c_4_requests_with_huffman_encoder() {
    check_encoder(encoder_with(HuffmanPolicy::Always), &C4);
    // Every literal here is shorter Huffman-coded, so the default policy makes the same choices.
    check_encoder(encoder_with(HuffmanPolicy::Auto), &C4);
}

// ---------------------------------------------------------------------------------------------------------------
// C.5 / C.6 Response examples, SETTINGS_HEADER_TABLE_SIZE 256, with evictions.

const RESPONSE_1: Pairs = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_2: Pairs = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_3: Pairs = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];
const RESPONSE_TABLE_1: Pairs = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESPONSE_TABLE_2: Pairs = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const RESPONSE_TABLE_3: Pairs = &[
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

const C5: [Step; 3] = [
    Step {
        encoded: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                  2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                  6c65 2e63 6f6d",
        fields: RESPONSE_1,
        table: RESPONSE_TABLE_1,
        table_size: 222,
    },
    Step {
        encoded: "4803 3330 37c1 c0bf",
        fields: RESPONSE_2,
        table: RESPONSE_TABLE_2,
        table_size: 222,
    },
    Step {
        encoded: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                  54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                  5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                  3d31",
        fields: RESPONSE_3,
        table: RESPONSE_TABLE_3,
        table_size: 215,
    },
];

const C6: [Step; 3] = [
    Step {
        encoded: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                  2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        fields: RESPONSE_1,
        table: RESPONSE_TABLE_1,
        table_size: 222,
    },
    Step {
        encoded: "4883 640e ffc1 c0bf",
        fields: RESPONSE_2,
        table: RESPONSE_TABLE_2,
        table_size: 222,
    },
    Step {
        encoded: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                  77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                  9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        fields: RESPONSE_3,
        table: RESPONSE_TABLE_3,
        table_size: 215,
    },
];

#[test]
fn c_5_responses_without_huffman_decoder() {
    check_decoder(256, &C5);
}

#[test]
fn c_5_responses_without_huffman_encoder() {
    check_encoder(small_encoder_with(HuffmanPolicy::Never), &C5);
}

#[test]
fn c_6_responses_with_huffman_decoder() {
    check_decoder(256, &C6);
}

#[test]
fn c_6_responses_with_huffman_encoder() {
    // ":status: 307" Huffman-codes to 3 octets, no shorter than the raw string: only "always" matches the RFC.
    check_encoder(small_encoder_with(HuffmanPolicy::Always), &C6);
}

#[test]
fn c_6_default_policy_differs_only_where_huffman_is_not_shorter() {
    let mut e = small_encoder_with(HuffmanPolicy::Auto);
    let mut decoder = Decoder::new(256);
    for (i, step) in C6.iter().enumerate() {
        let mut dst = BytesMut::new();
        e.encode(
            step.fields.iter().map(|&(n, v)| Field {
                name: n.as_bytes(),
                value: v.as_bytes(),
                sensitive: false,
            }),
            &mut dst,
        );
        if i == 1 {
            assert_eq!(dst.to_vec(), hex("4803 3330 37c1 c0bf"));
        } else {
            assert_eq!(dst.to_vec(), hex(step.encoded));
        }
        let block = decoder.decode(&dst, 4096).unwrap();
        assert_eq!(pairs(&block.fields), owned(step.fields));
    }
}

/// The C.5 responses decoded by a decoder whose limit is the default 4096 after the peer signals 256 itself.
#[test]
fn c_5_with_explicit_size_update() {
    let mut d = Decoder::new(4096);
    let mut first = vec![0x3f, 0xe1, 0x01]; // size update to 256
    first.extend(hex(C5[0].encoded));
    let b = d.decode(&first, 4096).unwrap();
    assert_eq!(pairs(&b.fields), owned(RESPONSE_1));
    for step in &C5[1..] {
        let b = d.decode(&hex(step.encoded), 4096).unwrap();
        assert_eq!(pairs(&b.fields), owned(step.fields));
        assert_eq!(d.table_size(), step.table_size);
    }
    assert_eq!(d.table_capacity(), 256);
    // And the same prefix as produced by our encoder's size change.
    let mut e = Encoder::new();
    e.set_huffman_policy(HuffmanPolicy::Never);
    e.set_max_table_size(256);
    let mut dst = BytesMut::new();
    e.encode(
        RESPONSE_1.iter().map(|&(n, v)| Field {
            name: n.as_bytes(),
            value: v.as_bytes(),
            sensitive: false,
        }),
        &mut dst,
    );
    assert_eq!(dst.to_vec(), first);
}
