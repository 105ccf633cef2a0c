#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tapio::fuzz::import_structured(data));
