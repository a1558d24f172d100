#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| companion_server::oidc::fuzzing::request(data));
