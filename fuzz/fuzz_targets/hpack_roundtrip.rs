//! Encodes header sets built from arbitrary bytes and checks that they decode back identically, with the encoder's
//! and decoder's dynamic tables in sync; see `steadfast_hpack::fuzz_roundtrip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    steadfast_hpack::fuzz_roundtrip(data);
});
