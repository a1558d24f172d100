#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cie_core::fuzzing::server_key(data));
