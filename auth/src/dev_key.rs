//! The development signing key: generated once per data directory, so tokens survive restarts,
//! every local service reads the same key, and no key is ever committed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use std::io;
use std::path::Path;

const FILE: &str = "dev-signing.key";

/// Reads the key file.
pub fn load(data_dir: &Path) -> io::Result<Vec<u8>> {
    let text = std::fs::read_to_string(data_dir.join(FILE))?;
    STANDARD.decode(text.trim()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{FILE} is not base64: {e}"),
        )
    })
}

/// Reads the key file, creating it with a fresh random key first if there is none.
pub fn load_or_create(data_dir: &Path) -> io::Result<Vec<u8>> {
    match load(data_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut key = vec![0u8; 32];
            rand::rng().fill_bytes(&mut key);
            std::fs::write(data_dir.join(FILE), STANDARD.encode(&key))?;
            Ok(key)
        }
        other => other,
    }
}
