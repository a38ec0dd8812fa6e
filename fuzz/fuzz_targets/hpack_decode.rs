//! Decodes arbitrary bytes as HPACK header blocks; see `steadfast_hpack::fuzz_decode` for the input layout and
//! the invariants checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    steadfast_hpack::fuzz_decode(data);
});
