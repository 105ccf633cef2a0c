#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tapio::fuzz::otlp_grpc(data));
