#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| brindle_fuzz::resources::run(data));
