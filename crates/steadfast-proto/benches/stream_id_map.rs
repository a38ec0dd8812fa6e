//! `StreamIdMap` with the stream ids a peer chooses: sequential client ids (1, 3, 5, …)
//! as every real client sends them, and ids spaced by 2^17, which a hash that depends
//! only on the low bits of the id sends into one bucket. Each run inserts 4,096 ids,
//! looks every one up, then removes them all.
//!
//! Run with `cargo bench -p steadfast-proto --bench stream_id_map`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use steadfast_proto::{StreamId, StreamIdMap};

const COUNT: u32 = 4_096;

fn ids(spacing: u32) -> Vec<StreamId> {
    (0..COUNT).map(|i| StreamId::new(i * spacing + 1)).collect()
}

fn insert_lookup_remove(ids: &[StreamId]) -> u64 {
    let mut map: StreamIdMap<u64> = StreamIdMap::default();
    for (n, id) in ids.iter().enumerate() {
        map.insert(*id, n as u64);
    }
    let mut sum = 0;
    for id in ids {
        sum += map.get(id).copied().unwrap_or(0);
    }
    for id in ids {
        sum += map.remove(id).unwrap_or(0);
    }
    sum
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_id_map");
    group.throughput(Throughput::Elements(u64::from(COUNT)));
    for (name, spacing) in [("sequential", 2), ("spaced_2^17", 1 << 17)] {
        let ids = ids(spacing);
        group.bench_function(name, |b| b.iter(|| insert_lookup_remove(black_box(&ids))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
