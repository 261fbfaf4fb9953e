//! The hub's protocols as a client drives them: the first record (ended by 0x1E) a JSON
//! handshake choosing JSON or MessagePack, the rest that protocol's records (0x1E-separated JSON
//! or varint-prefixed MessagePack), split into frames anywhere. Input: one byte choosing the
//! frame size, then the bytes of the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signalr_hub::protocol::{Decoder, RECORD_SEPARATOR, RecordBuffer, parse_handshake};

const MAX_RECORD: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&frame, stream)) = data.split_first() else {
        return;
    };
    let mut handshake = RecordBuffer::new(MAX_RECORD);
    let mut decoder: Option<Decoder> = None;
    for chunk in stream.chunks(usize::from(frame) + 1) {
        let mut chunk = chunk.to_vec();
        if decoder.is_none() {
            // As the hub does: only the first separator ends the handshake.
            let split = chunk.iter().position(|&b| b == RECORD_SEPARATOR);
            let rest = split.map(|at| chunk.split_off(at + 1)).unwrap_or_default();
            let Ok(mut records) = handshake.push(&chunk) else {
                return; // too large: the hub closes the connection
            };
            assert!(handshake.pending() <= MAX_RECORD);
            if records.is_empty() {
                continue;
            }
            let record = records.remove(0);
            assert!(!record.contains(&RECORD_SEPARATOR));
            let Ok((protocol, _version)) = parse_handshake(&record) else {
                return;
            };
            decoder = Some(protocol.decoder(MAX_RECORD));
            chunk = rest;
        }
        if decoder.as_mut().expect("handshaken").push(&chunk).is_err() {
            return; // the hub closes the connection with an error
        }
    }
});
