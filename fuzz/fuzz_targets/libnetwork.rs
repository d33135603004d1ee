#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| brindle_fuzz::libnetwork::run(data));
