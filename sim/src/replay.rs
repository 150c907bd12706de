//! `arbor replay`: a run directory's recording re-executed against the recorded world (see
//! [`arbor_records::replay`]); the vocabulary comes from the recorded scenario (simulator runs)
//! or the recorded names (robot runs).

use crate::scenario::Scenario;
use arbor_behaviors::{BuildError, NodeLibrary, Tree, TreeError, load_tree, yaml};
use arbor_records::recording::{Recording, RecordingError};
use arbor_records::replay::{self, ReplayReport};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("{path}: the recorded scenario does not parse: {message}")]
    Scenario { path: PathBuf, message: String },
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// The recording of a run: `<dir>/run.mcap` for a run directory, or the file itself.
pub fn recording_path(run: &Path) -> PathBuf {
    if run.is_dir() { run.join("run.mcap") } else { run.to_path_buf() }
}

/// Replays a run with its own tree, or with `other` (a tree file) against the recorded world.
pub fn replay_run(run: &Path, other: Option<&Path>) -> Result<(Recording, ReplayReport), ReplayError> {
    let path = recording_path(run);
    let rec = Recording::open(&path)?;
    // A simulator run recorded its scenario; a robot run the names its tree was checked against.
    let vocabulary = match &rec.header.vocabulary {
        Some(v) => v.clone(),
        None => Scenario::parse(&rec.header.scenario_yaml, &format!("{} (recorded scenario)", path.display()))
            .map_err(|e| ReplayError::Scenario { path: path.clone(), message: e.to_string() })?
            .vocabulary(),
    };
    // The run's own manifest when it had one (recorded in the header), else the photographer's.
    let registry = match &rec.header.skills {
        Some(m) => arbor_runtime::skills::registry_of(
            &arbor_behaviors::SkillManifest::parse(
                &m.yaml,
                &format!("{} (recorded skills {})", path.display(), m.source),
            )
            .map_err(|e| ReplayError::Scenario { path: path.clone(), message: e.to_string() })?,
        ),
        None => crate::registry(),
    };
    let library = NodeLibrary::with_skills(&registry);
    let (tree, source): (Tree, String) = match other {
        Some(file) => (load_tree(file)?, file.display().to_string()),
        None => {
            let source = format!("{} (recorded tree)", path.display());
            (yaml::parse(&rec.tree.yaml, &source)?, source)
        }
    };
    let checked = tree.check(&source, &library, Some(&vocabulary), false)?;
    let report = replay::replay(&rec, &checked, &source)?;
    Ok((rec, report))
}
