//! `POST /api/orders`: the `Idempotency-Key` header (up to the first newline of the input) and
//! the JSON body (the rest), parsed, validated and priced as intake does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (key, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&data[..0], data),
    };
    orders_functions::fuzzing::place_order(key, body);
});
