//! Reading the binary's own YAML files (fleet settings, eval suites) with errors that name the
//! file and the line.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| {
        let at = e.location().map(|l| format!(" line {}", l.line())).unwrap_or_default();
        anyhow::anyhow!("{}:{at}: {e}", path.display())
    })
}
