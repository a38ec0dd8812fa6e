//! Randomized round trips through our encoder and decoder: many blocks per connection, random table size changes,
//! random header list limits. Deterministic (fixed seeds, own PRNG).

use bytes::BytesMut;
use steadfast_hpack::{Decoder, Encoder, Field, HuffmanPolicy};

mod common;
use common::Rng;

const NAMES: &[&str] = &[
    ":method",
    ":path",
    ":authority",
    ":scheme",
    ":status",
    "accept",
    "accept-encoding",
    "cache-control",
    "content-type",
    "content-length",
    "cookie",
    "set-cookie",
    "authorization",
    "proxy-authorization",
    "user-agent",
    "te",
    "grpc-timeout",
    "grpc-encoding",
    "x-request-id",
    "x-custom-header",
];

const VALUES: &[&str] = &[
    "GET",
    "POST",
    "/",
    "/index.html",
    "https",
    "200",
    "404",
    "gzip, deflate",
    "application/grpc",
    "trailers",
    "",
];

fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let len = rng.below(max_len + 1);
    match rng.below(3) {
        // Printable ASCII.
        0 => (0..len).map(|_| 0x20 + rng.below(95) as u8).collect(),
        // Token-ish lowercase (names).
        1 => (0..len)
            .map(|_| *rng.pick_ref(b"abcdefghijklmnopqrstuvwxyz0123456789-_"))
            .collect(),
        // Any byte, including ones with long Huffman codes.
        _ => (0..len).map(|_| rng.below(256) as u8).collect(),
    }
}

fn random_field(rng: &mut Rng) -> (Vec<u8>, Vec<u8>, bool) {
    let name = if rng.chance(75) {
        rng.pick_ref(NAMES).as_bytes().to_vec()
    } else {
        random_bytes(rng, 24)
    };
    let value = match rng.below(10) {
        0..=3 => rng.pick_ref(VALUES).as_bytes().to_vec(),
        4 => random_bytes(rng, 3000),
        _ => random_bytes(rng, 60),
    };
    (name, value, rng.chance(5))
}

fn is_default_never_indexed(name: &[u8], value: &[u8]) -> bool {
    name == b"authorization"
        || name == b"proxy-authorization"
        || (name == b"cookie" && value.len() < 20)
}

fn run_connection(seed: u64, blocks: usize) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let cap = *rng.pick_ref(&[0usize, 100, 1024, 4096, 16_384, 65_536]);
    let mut encoder = Encoder::with_table_size_cap(cap);
    encoder.set_huffman_policy(*rng.pick_ref(&[
        HuffmanPolicy::Auto,
        HuffmanPolicy::Always,
        HuffmanPolicy::Never,
    ]));
    let mut decoder = Decoder::new(4096);
    let mut history: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::new();
    let (mut fields_checked, mut over_limit_blocks) = (0, 0);

    for _ in 0..blocks {
        // Settings changes between blocks: our advertised (decoder) size, which the peer's encoder then adopts.
        if rng.chance(10) {
            for _ in 0..1 + rng.below(3) {
                let size = *rng.pick_ref(&[0usize, 64, 256, 1000, 4096, 8192, 100_000]);
                decoder.set_max_table_size(size);
                encoder.set_max_table_size(size);
            }
        }
        let count = rng.below(20);
        let mut fields: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::with_capacity(count);
        for _ in 0..count {
            // Reuse earlier fields often, so the dynamic table gets hits.
            if !history.is_empty() && rng.chance(50) {
                fields.push(rng.pick_ref(&history).clone());
            } else {
                let f = random_field(&mut rng);
                history.push(f.clone());
                fields.push(f);
            }
        }
        if history.len() > 200 {
            history.drain(..100);
        }

        let mut block = BytesMut::new();
        encoder.encode(
            fields.iter().map(|(n, v, s)| Field {
                name: n,
                value: v,
                sensitive: *s,
            }),
            &mut block,
        );

        let limit = if rng.chance(20) {
            rng.below(2000)
        } else {
            usize::MAX
        };
        let decoded = decoder
            .decode(&block, limit)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));

        // The kept fields are exactly the longest prefix within the limit.
        let mut total = 0usize;
        let mut expect_kept = fields.len();
        for (i, (n, v, _)) in fields.iter().enumerate() {
            total += n.len() + v.len() + 32;
            if total > limit {
                expect_kept = i;
                break;
            }
        }
        assert_eq!(
            decoded.over_limit,
            expect_kept < fields.len(),
            "seed {seed}"
        );
        assert_eq!(decoded.fields.len(), expect_kept, "seed {seed}");
        if decoded.over_limit {
            over_limit_blocks += 1;
        }
        for (got, (n, v, s)) in decoded.fields.iter().zip(&fields) {
            assert_eq!(&got.name[..], &n[..], "seed {seed}");
            assert_eq!(&got.value[..], &v[..], "seed {seed}");
            assert_eq!(
                got.never_indexed,
                *s || is_default_never_indexed(n, v),
                "seed {seed}"
            );
            fields_checked += 1;
        }
        assert_eq!(encoder.table_size(), decoder.table_size(), "seed {seed}");
        assert!(
            encoder.dynamic_entries().eq(decoder.dynamic_entries()),
            "seed {seed}"
        );
        assert!(decoder.table_size() <= decoder.table_capacity());
        assert!(encoder.table_size() <= cap);
    }
    (fields_checked, over_limit_blocks)
}

#[test]
fn random_round_trips() {
    let mut fields = 0;
    let mut over = 0;
    for seed in 0..200 {
        let (f, o) = run_connection(seed, 60);
        fields += f;
        over += o;
    }
    // Make sure the generator actually exercised things.
    assert!(fields > 50_000, "{fields}");
    assert!(over > 100, "{over}");
}

#[test]
fn sensitive_and_secret_fields_never_enter_the_table() {
    let mut rng = Rng::new(42);
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(4096);
    for _ in 0..500 {
        let secret = random_bytes(&mut rng, 40);
        let mut block = BytesMut::new();
        encoder.encode(
            [
                Field {
                    name: b"x-api-key",
                    value: &secret,
                    sensitive: true,
                },
                Field {
                    name: b"authorization",
                    value: &secret,
                    sensitive: false,
                },
                Field {
                    name: b"cookie",
                    value: &secret[..secret.len().min(19)],
                    sensitive: false,
                },
            ],
            &mut block,
        );
        let decoded = decoder.decode(&block, usize::MAX).unwrap();
        assert!(decoded.fields.iter().all(|f| f.never_indexed));
    }
    assert_eq!(encoder.table_size(), 0);
    assert_eq!(decoder.table_size(), 0);
}

#[test]
fn warm_table_compresses_repeated_blocks() {
    let fields = [
        Field {
            name: b":method",
            value: b"POST",
            sensitive: false,
        },
        Field {
            name: b":scheme",
            value: b"https",
            sensitive: false,
        },
        Field {
            name: b":path",
            value: b"/helloworld.Greeter/SayHello",
            sensitive: false,
        },
        Field {
            name: b":authority",
            value: b"grpc.example.com:443",
            sensitive: false,
        },
        Field {
            name: b"content-type",
            value: b"application/grpc",
            sensitive: false,
        },
        Field {
            name: b"te",
            value: b"trailers",
            sensitive: false,
        },
        Field {
            name: b"grpc-timeout",
            value: b"1S",
            sensitive: false,
        },
        Field {
            name: b"user-agent",
            value: b"grpc-rust/1.0",
            sensitive: false,
        },
    ];
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(4096);
    let mut first = BytesMut::new();
    encoder.encode(fields, &mut first);
    let mut second = BytesMut::new();
    encoder.encode(fields, &mut second);
    assert_eq!(
        second.len(),
        fields.len(),
        "one octet per field once the table is warm"
    );
    assert!(first.len() > 60);
    for block in [first, second] {
        assert_eq!(
            decoder.decode(&block, usize::MAX).unwrap().fields.len(),
            fields.len()
        );
    }
}
