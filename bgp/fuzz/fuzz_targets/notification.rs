#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bgp::wire::fuzzing::notification(data));
