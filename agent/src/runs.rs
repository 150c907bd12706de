//! Finding run directories under the paths a command is given.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Run directories at or under `path` (recursively, sorted): those holding the file `marker`.
pub fn find_runs(path: &Path, marker: &str, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.join(marker).is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    if !path.is_dir() {
        bail!("{}: neither a run directory (no {marker}) nor a directory of runs", path.display());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for e in entries {
        find_runs(&e, marker, out)?;
    }
    Ok(())
}
