#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cie_core::fuzzing::cns_files(data));
