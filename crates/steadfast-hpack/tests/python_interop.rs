//! Interoperability with the Python `hpack` package (an independent HPACK implementation).
//!
//! Needs `python3` with `hpack` installed (`pip install hpack`); the test fails, rather than skips, without it.
//! The Python side lives in `tests/interop.py`; blocks travel hex-encoded in JSON over stdin/stdout. Set `PYTHON`
//! to use another interpreter.
//!
//! * Our `Encoder` encodes ~2,400 realistic header sets in sequences that reuse the dynamic table (with table size
//!   changes); `hpack.Decoder` must decode each to the same fields and the same dynamic table.
//! * `hpack.Encoder` encodes ~1,600 header sets (with and without Huffman, with table size changes); our `Decoder`
//!   must decode each to the original fields and the same dynamic table.
//! * Our Huffman code table must equal `hpack.huffman_constants` (RFC 7541 Appendix B).

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::BytesMut;
use serde_json::{json, Value};
use steadfast_hpack::{Decoder, Encoder, Field, HuffmanPolicy};

mod common;

use common::Rng;
use steadfast_testkit::{hex, unhex};

/// name, value, sensitive
type HeaderSet = Vec<(Vec<u8>, Vec<u8>, bool)>;

fn h(set: &mut HeaderSet, name: &str, value: impl Into<Vec<u8>>) {
    set.push((name.as_bytes().to_vec(), value.into(), false));
}

const GRPC_METHODS: &[&str] = &[
    "/helloworld.Greeter/SayHello",
    "/grpc.health.v1.Health/Check",
    "/google.pubsub.v1.Publisher/Publish",
    "/inventory.v2.Inventory/ListItems",
    "/inventory.v2.Inventory/GetItem",
    "/payments.Ledger/Transfer",
    "/search.Search/Query",
    "/orders.OrderService/StreamUpdates",
];
const HOSTS: &[&str] = &[
    "api.example.com",
    "grpc.internal.example.net:443",
    "www.example.org",
    "cdn.example-static.com",
    "localhost:8080",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.8.0",
];
const GRPC_AGENTS: &[&str] = &[
    "grpc-go/1.64.0",
    "grpc-java-netty/1.65.0",
    "grpc-python/1.64.1 grpc-c/41.0.0 (linux; chttp2)",
];

fn grpc_request(rng: &mut Rng, host: &str, agent: &str) -> HeaderSet {
    let mut s = HeaderSet::new();
    h(&mut s, ":method", "POST");
    h(&mut s, ":scheme", rng.pick(&["https", "http"]));
    h(&mut s, ":path", rng.pick(GRPC_METHODS));
    h(&mut s, ":authority", host);
    h(
        &mut s,
        "content-type",
        rng.pick(&["application/grpc", "application/grpc+proto"]),
    );
    h(&mut s, "te", "trailers");
    if rng.chance(70) {
        let unit = rng.pick(&["m", "S", "u"]);
        h(
            &mut s,
            "grpc-timeout",
            format!("{}{unit}", 1 + rng.below(99_999)),
        );
    }
    if rng.chance(50) {
        h(&mut s, "grpc-encoding", "gzip");
        h(&mut s, "grpc-accept-encoding", "identity,deflate,gzip");
    }
    h(&mut s, "user-agent", agent);
    h(
        &mut s,
        "x-request-id",
        format!("{}-{}-{}", rng.hex_id(8), rng.hex_id(4), rng.hex_id(12)),
    );
    if rng.chance(40) {
        s.push((
            b"authorization".to_vec(),
            format!("Bearer {}", rng.token(40)).into_bytes(),
            false,
        ));
    }
    if rng.chance(30) {
        h(&mut s, "x-trace-bin", rng.token(24));
    }
    if rng.chance(10) {
        s.push((b"x-api-key".to_vec(), rng.token(32).into_bytes(), true));
    }
    s
}

fn grpc_response(rng: &mut Rng, trailers: bool) -> HeaderSet {
    let mut s = HeaderSet::new();
    if trailers {
        let status = rng.pick(&[0, 0, 0, 0, 1, 2, 3, 4, 5, 7, 13, 14, 16]);
        h(&mut s, "grpc-status", status.to_string());
        if status != 0 {
            h(
                &mut s,
                "grpc-message",
                format!(
                    "request%20failed%3A%20code%20{status}%20id%20{}",
                    rng.hex_id(6)
                ),
            );
        }
    } else {
        h(&mut s, ":status", "200");
        h(&mut s, "content-type", "application/grpc");
        if rng.chance(50) {
            h(&mut s, "grpc-encoding", "gzip");
        }
        h(
            &mut s,
            "date",
            format!(
                "Tue, {:02} Jul 2024 {:02}:{:02}:{:02} GMT",
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
                rng.below(60)
            ),
        );
    }
    s
}

fn browser_request(rng: &mut Rng, host: &str, agent: &str, session: &str) -> HeaderSet {
    let mut s = HeaderSet::new();
    h(
        &mut s,
        ":method",
        if rng.chance(85) { "GET" } else { "POST" },
    );
    h(&mut s, ":scheme", "https");
    h(&mut s, ":authority", host);
    let path = match rng.below(4) {
        0 => "/".to_owned(),
        1 => format!(
            "/articles/{}/{}?ref=home&utm_source=feed",
            1000 + rng.below(90_000),
            rng.token(12).to_lowercase()
        ),
        2 => format!("/static/js/app.{}.js", rng.hex_id(10)),
        _ => format!("/images/{}.webp", rng.hex_id(16)),
    };
    h(&mut s, ":path", path);
    h(&mut s, "user-agent", agent);
    h(
        &mut s,
        "accept",
        rng.pick(&[
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
            "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
            "*/*",
        ]),
    );
    h(
        &mut s,
        "accept-language",
        rng.pick(&[
            "en-US,en;q=0.9",
            "de-DE,de;q=0.9,en;q=0.8",
            "fr-FR,fr;q=0.9",
        ]),
    );
    h(
        &mut s,
        "accept-encoding",
        rng.pick(&[
            "gzip, deflate, br",
            "gzip, deflate, br, zstd",
            "gzip, deflate",
        ]),
    );
    // Cookies split into separate fields (RFC 9113 §8.2.3), some short enough to be never-indexed.
    h(&mut s, "cookie", format!("session={session}"));
    if rng.chance(60) {
        h(
            &mut s,
            "cookie",
            format!("theme={}", rng.pick(&["dark", "light"])),
        );
    }
    if rng.chance(40) {
        h(
            &mut s,
            "cookie",
            format!(
                "_ga=GA1.2.{}.{}",
                100_000_000 + rng.below(800_000_000),
                1_700_000_000 + rng.below(9_999_999)
            ),
        );
    }
    if rng.chance(50) {
        h(
            &mut s,
            "referer",
            format!("https://{host}/articles/{}", rng.below(1000)),
        );
    }
    if rng.chance(30) {
        h(&mut s, "if-none-match", format!("W/\"{}\"", rng.hex_id(20)));
    }
    if rng.chance(20) {
        h(
            &mut s,
            "sec-ch-ua",
            "\"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\", \"Not-A.Brand\";v=\"99\"",
        );
        h(&mut s, "sec-fetch-mode", "navigate");
        h(&mut s, "upgrade-insecure-requests", "1");
    }
    if rng.chance(5) {
        // Non-ASCII bytes (obs-text), which use the long Huffman codes.
        h(
            &mut s,
            "x-note",
            vec![b'c', b'a', b'f', 0xc3, 0xa9, b' ', 0xff, 0x80, 0x7f],
        );
    }
    s
}

fn http_response(rng: &mut Rng) -> HeaderSet {
    let mut s = HeaderSet::new();
    let status = rng.pick(&["200", "200", "200", "304", "404", "301", "500"]);
    h(&mut s, ":status", status);
    h(
        &mut s,
        "date",
        format!(
            "Wed, {:02} Jul 2024 {:02}:{:02}:{:02} GMT",
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
    );
    h(
        &mut s,
        "server",
        rng.pick(&["nginx", "steadfast/0.1", "cloudflare"]),
    );
    h(
        &mut s,
        "content-type",
        rng.pick(&[
            "text/html; charset=utf-8",
            "application/json",
            "image/webp",
            "application/javascript",
        ]),
    );
    h(&mut s, "content-length", (rng.below(500_000)).to_string());
    h(
        &mut s,
        "cache-control",
        rng.pick(&[
            "private, max-age=0",
            "public, max-age=31536000, immutable",
            "no-cache",
        ]),
    );
    if rng.chance(50) {
        h(&mut s, "etag", format!("\"{}\"", rng.hex_id(24)));
    }
    if rng.chance(30) {
        h(
            &mut s,
            "set-cookie",
            format!(
                "session={}; Path=/; Secure; HttpOnly; SameSite=Lax",
                rng.token(32)
            ),
        );
    }
    if status == "301" {
        h(
            &mut s,
            "location",
            format!("https://www.example.org/{}", rng.token(10)),
        );
    }
    h(
        &mut s,
        "strict-transport-security",
        "max-age=63072000; includeSubDomains; preload",
    );
    h(&mut s, "vary", "Accept-Encoding");
    s
}

/// One connection's worth of header sets, all of one flavor, plus table size settings before some blocks.
fn connection(
    rng: &mut Rng,
    blocks: usize,
    with_size_changes: bool,
) -> Vec<(Vec<usize>, HeaderSet)> {
    let flavor = rng.below(4);
    let host = rng.pick(HOSTS);
    let agent = rng.pick(USER_AGENTS);
    let grpc_agent = rng.pick(GRPC_AGENTS);
    let session_len = rng.pick(&[12, 48]);
    let session = rng.token(session_len);
    (0..blocks)
        .map(|i| {
            let settings = if with_size_changes && i > 0 && rng.chance(8) {
                match rng.below(4) {
                    0 => vec![rng.pick(&[0, 256, 1024, 2048, 4096, 8192, 16_384])],
                    1 => vec![0, 4096],
                    2 => vec![rng.pick(&[64, 512]), rng.pick(&[2048, 4096, 16_384])],
                    _ => vec![4096],
                }
            } else {
                Vec::new()
            };
            let set = match flavor {
                0 => grpc_request(rng, host, grpc_agent),
                1 => grpc_response(rng, i % 2 == 1),
                2 => browser_request(rng, host, agent, &session),
                _ => http_response(rng),
            };
            (settings, set)
        })
        .collect()
}

fn table_json<'a>(entries: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Value {
    Value::Array(entries.map(|(n, v)| json!([hex(n), hex(v)])).collect())
}

fn is_default_never_indexed(name: &[u8], value: &[u8]) -> bool {
    name == b"authorization"
        || name == b"proxy-authorization"
        || (name == b"cookie" && value.len() < 20)
}

fn run_python(input: &Value) -> Value {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop.py");
    let check = Command::new(&python).args(["-c", "import hpack"]).output();
    match check {
        Err(e) => panic!(
            "cannot run `{python}` ({e}): this test needs Python 3 with the `hpack` package: pip install hpack"
        ),
        Ok(out) if !out.status.success() => panic!(
            "`{python} -c 'import hpack'` failed: the Python `hpack` package is missing: pip install hpack\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3 tests/interop.py");
    let payload = serde_json::to_vec(input).unwrap();
    // Write from another thread so a large reply cannot deadlock against a full stdin pipe.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&payload));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "interop.py failed ({}); if `hpack` is missing: pip install hpack\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("interop.py output is JSON")
}

#[test]
fn python_hpack_interop() {
    let mut rng = Rng::new(0x1234_5678);

    // --- Our encoder -> Python's decoder.
    let mut decode_seqs = Vec::new();
    let mut our_sets = 0;
    for conn in 0..40 {
        let cap = [4096, 4096, 16_384, 1024][conn % 4];
        let mut encoder = Encoder::with_table_size_cap(cap);
        if conn % 5 == 4 {
            encoder.set_huffman_policy(HuffmanPolicy::Never);
        }
        let mut blocks = Vec::new();
        for (settings, set) in connection(&mut rng, 60, conn % 3 != 0) {
            for &s in &settings {
                encoder.set_max_table_size(s);
            }
            let mut dst = BytesMut::new();
            encoder.encode(
                set.iter().map(|(n, v, s)| Field {
                    name: n,
                    value: v,
                    sensitive: *s,
                }),
                &mut dst,
            );
            let expected: Vec<Value> = set
                .iter()
                .map(|(n, v, s)| json!([hex(n), hex(v), *s || is_default_never_indexed(n, v)]))
                .collect();
            blocks.push(json!({
                "settings": settings,
                "hex": hex(&dst),
                "expected": expected,
                "table": table_json(encoder.dynamic_entries()),
            }));
            our_sets += 1;
        }
        decode_seqs.push(json!({ "blocks": blocks }));
    }

    // --- Python's encoder -> our decoder: header sets and settings, kept to check the result.
    let mut encode_seqs = Vec::new();
    let mut python_conns = Vec::new();
    for conn in 0..40 {
        let sets = connection(&mut rng, 40, conn % 2 == 0);
        let blocks: Vec<Value> = sets
            .iter()
            .enumerate()
            .map(|(i, (settings, set))| {
                json!({
                    "settings": settings,
                    "huffman": (conn + i) % 3 != 0,
                    "headers": set.iter().map(|(n, v, s)| json!([hex(n), hex(v), s])).collect::<Vec<_>>(),
                })
            })
            .collect();
        encode_seqs.push(json!({ "blocks": blocks }));
        python_conns.push(sets);
    }
    let python_sets: usize = python_conns.iter().map(Vec::len).sum();
    assert!(our_sets + python_sets >= 3000);

    let reply = run_python(&json!({ "decode": decode_seqs, "encode": encode_seqs }));

    // Huffman table: ours must equal the Python package's copy of RFC 7541 Appendix B.
    let codes = reply["huffman"]["codes"].as_array().unwrap();
    let lengths = reply["huffman"]["lengths"].as_array().unwrap();
    assert_eq!(codes.len(), 257);
    assert_eq!(lengths.len(), 257);
    for (sym, &(code, len)) in steadfast_hpack::huffman_code_table().iter().enumerate() {
        assert_eq!(
            codes[sym].as_u64(),
            Some(u64::from(code)),
            "Huffman code of symbol {sym}"
        );
        assert_eq!(
            lengths[sym].as_u64(),
            Some(u64::from(len)),
            "Huffman code length of symbol {sym}"
        );
    }

    // Python decoded our blocks.
    let errors = reply["errors"].as_array().unwrap();
    assert!(
        errors.is_empty(),
        "{} mismatches, first ones: {:#?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(reply["decoded_blocks"].as_u64(), Some(our_sets as u64));
    let python_fields = reply["decoded_fields"].as_u64().unwrap();
    println!("python decoded {our_sets} of our blocks ({python_fields} fields)");
    assert!(python_fields > 15_000, "{python_fields}");

    // We decode Python's blocks.
    let encoded = reply["encoded"].as_array().unwrap();
    assert_eq!(encoded.len(), python_conns.len());
    let mut fields_checked = 0;
    for (conn, (blocks, sets)) in encoded.iter().zip(&python_conns).enumerate() {
        let blocks = blocks.as_array().unwrap();
        assert_eq!(blocks.len(), sets.len());
        let mut decoder = Decoder::new(4096);
        for (i, (block, (settings, set))) in blocks.iter().zip(sets).enumerate() {
            for &s in settings {
                decoder.set_max_table_size(s);
            }
            let bytes = unhex(block["hex"].as_str().unwrap());
            let decoded = decoder
                .decode(&bytes, usize::MAX)
                .unwrap_or_else(|e| panic!("conn {conn} block {i}: {e} decoding {}", hex(&bytes)));
            assert!(!decoded.over_limit);
            assert_eq!(decoded.fields.len(), set.len(), "conn {conn} block {i}");
            for (got, (n, v, s)) in decoded.fields.iter().zip(set) {
                assert_eq!(
                    (&got.name[..], &got.value[..]),
                    (&n[..], &v[..]),
                    "conn {conn} block {i}"
                );
                assert_eq!(got.never_indexed, *s, "conn {conn} block {i}");
                fields_checked += 1;
            }
            assert_eq!(
                table_json(decoder.dynamic_entries()),
                block["table"],
                "conn {conn} block {i} table"
            );
        }
    }
    println!("we decoded {python_sets} python blocks ({fields_checked} fields)");
    assert!(fields_checked > 10_000, "{fields_checked}");
}
