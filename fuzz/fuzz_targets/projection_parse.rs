#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custodian::fuzzing::projection_parse(data));
