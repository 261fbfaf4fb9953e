//! The custom-handler invocation payload (`Data` and `Metadata`) as the Functions host POSTs it
//! to `/OrderProcess` and `/OrderNotify`, read as the triggers read it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    orders_functions::fuzzing::invocation(data);
});
