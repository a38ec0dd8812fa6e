//! Encode and decode realistic header blocks: a gRPC request and a browser request, each as the first block on a
//! connection (cold, empty dynamic table) and as a repeated block (warm table, fields already indexed).
//!
//! Run with `cargo bench -p steadfast-hpack`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use steadfast_hpack::{Decoder, Encoder, Field};

fn f<'a>(name: &'a str, value: &'a str) -> Field<'a> {
    Field {
        name: name.as_bytes(),
        value: value.as_bytes(),
        sensitive: false,
    }
}

fn grpc_request() -> Vec<Field<'static>> {
    vec![
        f(":method", "POST"),
        f(":scheme", "https"),
        f(":path", "/inventory.v2.InventoryService/ListItems"),
        f(":authority", "inventory.internal.example.net:443"),
        f("content-type", "application/grpc"),
        f("te", "trailers"),
        f("grpc-timeout", "2999m"),
        f("grpc-encoding", "gzip"),
        f("grpc-accept-encoding", "identity,deflate,gzip"),
        f("user-agent", "grpc-go/1.64.0"),
        f("x-request-id", "6f1c2a9e-41b7-4d0e-9a55-0c2b7e9f1d3a"),
        f(
            "authorization",
            "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJpbnZlbnRvcnkifQ.c2lnbmF0dXJl",
        ),
    ]
}

fn browser_request() -> Vec<Field<'static>> {
    vec![
        f(":method", "GET"),
        f(":scheme", "https"),
        f(":authority", "www.example.org"),
        f(":path", "/articles/48213/rust-http2-header-compression?ref=home&utm_source=feed"),
        f(
            "user-agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 \
             Safari/537.36",
        ),
        f("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        f("accept-language", "en-US,en;q=0.9"),
        f("accept-encoding", "gzip, deflate, br, zstd"),
        f("cookie", "session=Q2hhbmdlIG1lIGJlZm9yZSBwcm9kdWN0aW9uIHBsZWFzZQ"),
        f("cookie", "theme=dark"),
        f("cookie", "_ga=GA1.2.1234567890.1719912345"),
        f("referer", "https://www.example.org/"),
        f("sec-ch-ua", "\"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\", \"Not-A.Brand\";v=\"99\""),
        f("sec-fetch-mode", "navigate"),
        f("upgrade-insecure-requests", "1"),
        f("if-none-match", "W/\"5e8f2a7c9b1d4e3f6a0b\""),
    ]
}

fn encode(encoder: &mut Encoder, fields: &[Field<'_>], dst: &mut BytesMut) {
    dst.clear();
    encoder.encode(fields.iter().copied(), dst);
}

fn bench_case(c: &mut Criterion, name: &str, fields: &[Field<'_>]) {
    let plain_size: u64 = fields
        .iter()
        .map(|f| (f.name.len() + f.value.len()) as u64)
        .sum();

    // Blocks as they appear on the wire: first on a connection, then the same header set again.
    let mut encoder = Encoder::new();
    let mut first = BytesMut::new();
    encode(&mut encoder, fields, &mut first);
    let mut repeated = BytesMut::new();
    encode(&mut encoder, fields, &mut repeated);
    println!(
        "{name}: {} fields, {plain_size} bytes plain, {} bytes cold, {} bytes warm",
        fields.len(),
        first.len(),
        repeated.len()
    );

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(plain_size));

    group.bench_function("encode/cold", |b| {
        let mut dst = BytesMut::with_capacity(4096);
        b.iter(|| {
            let mut encoder = Encoder::new();
            encode(&mut encoder, black_box(fields), &mut dst);
            black_box(&dst);
        })
    });
    group.bench_function("encode/warm", |b| {
        let mut encoder = Encoder::new();
        let mut dst = BytesMut::with_capacity(4096);
        encode(&mut encoder, fields, &mut dst);
        b.iter(|| {
            encode(&mut encoder, black_box(fields), &mut dst);
            black_box(&dst);
        })
    });
    group.bench_function("decode/cold", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new(4096);
            black_box(decoder.decode(black_box(&first), 64 * 1024).unwrap())
        })
    });
    group.bench_function("decode/warm", |b| {
        let mut decoder = Decoder::new(4096);
        decoder.decode(&first, 64 * 1024).unwrap();
        b.iter(|| black_box(decoder.decode(black_box(&repeated), 64 * 1024).unwrap()))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_case(c, "grpc_request", &grpc_request());
    bench_case(c, "browser_request", &browser_request());
}

criterion_group!(hpack, benches);
criterion_main!(hpack);
