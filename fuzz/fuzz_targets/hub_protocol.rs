//! The hub's text protocol as a client drives it: frames split into records at the separator
//! (0x1E), the first record a handshake, the rest JSON hub messages. Input: one byte choosing
//! the frame size, then the bytes of the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signalr_hub::protocol::{RECORD_SEPARATOR, RecordBuffer, parse_handshake, parse_message};

const MAX_RECORD: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&frame, stream)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(stream);
    let mut buffer = RecordBuffer::new(MAX_RECORD);
    let mut handshaken = false;
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let chunk: String = chars.by_ref().take(usize::from(frame) + 1).collect();
        let Ok(records) = buffer.push(&chunk) else {
            return; // too large: the hub closes the connection
        };
        assert!(buffer.pending() <= MAX_RECORD);
        for record in records {
            assert!(!record.contains(RECORD_SEPARATOR));
            assert!(record.len() <= MAX_RECORD);
            if handshaken {
                let _ = parse_message(&record);
            } else if parse_handshake(&record).is_err() {
                return;
            } else {
                handshaken = true;
            }
        }
    }
});
