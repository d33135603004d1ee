#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| brindle_fuzz::node_toml::run(data));
