//! The development signing key: generated once per data directory, so tokens survive restarts
//! and no key is ever committed.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use std::path::Path;

pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("dev-signing.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return STANDARD
            .decode(existing.trim())
            .context("dev-signing.key is not base64");
    }
    let mut key = vec![0u8; 32];
    rand::rng().fill_bytes(&mut key);
    std::fs::write(&path, STANDARD.encode(&key))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}
