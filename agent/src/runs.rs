//! Finding run directories under the paths a command is given.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Reads every run with `read`; a run that cannot be read is named on stderr ("skipped ...") and
/// left out. Returns the runs read and how many were left out; none readable is an error.
pub fn read_each<T>(dirs: &[PathBuf], read: impl Fn(&Path) -> Result<T>) -> Result<(Vec<T>, usize)> {
    let mut runs = Vec::with_capacity(dirs.len());
    let mut skipped = 0;
    for d in dirs {
        match read(d) {
            Ok(r) => runs.push(r),
            Err(e) => {
                eprintln!("skipped {e:#}");
                skipped += 1;
            }
        }
    }
    if runs.is_empty() {
        bail!("no readable run among {} run directories", dirs.len());
    }
    Ok((runs, skipped))
}

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
