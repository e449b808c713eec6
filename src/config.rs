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
