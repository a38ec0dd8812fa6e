#![no_main]
//! steadfast-proto: see `steadfast_proto::fuzzing::connection`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = steadfast_proto::fuzzing::connection(data);
});
