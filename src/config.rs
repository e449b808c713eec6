//! Reading a config file from disk; parsing and validation are the core's (`Config::load_text`).

use flashmm_core::config::{Config, ConfigError};
use std::path::Path;

/// Loads `file` (or the defaults), applies `--set` overrides in order, then validates.
pub fn load(file: Option<&Path>, sets: &[String]) -> Result<Config, ConfigError> {
    match file {
        Some(p) => {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: name.clone(),
                source,
            })?;
            Config::load_text(Some((&name, &text)), sets)
        }
        None => Config::load_text(None, sets),
    }
}

/// The keys `file` and `--set` name (`Config::explicit_keys`); an unreadable file names none
/// (`load` has already said why it cannot be read).
pub fn explicit_keys(file: Option<&Path>, sets: &[String]) -> Vec<String> {
    let text = file.and_then(|p| std::fs::read_to_string(p).ok());
    Config::explicit_keys(text.as_deref(), sets)
}
