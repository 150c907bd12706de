//! arbor-behaviors: everything about behavior trees.
//!
//! Modules by concern:
//! - tree model and checks: [`value`], [`skill`] (the skill registry), [`library`] (node types
//!   and their ports), [`tree`] (documents, nodes, checks);
//! - formats: [`yaml`] (arbor's tree files), [`xml`] (BehaviorTree.CPP v3/v4), [`export`]
//!   (Graphviz DOT, Mermaid);
//! - execution: [`robot`] (the interface skills act through), [`conditions`] (memory-backed
//!   conditions), [`script`] (BT.CPP's scripting language), [`blackboard`], [`engine`] (the
//!   executor: BT.CPP v4 semantics, async skills, halting);
//! - records: [`record`] (tick transitions, skill calls), [`metrics`] (the Prometheus registry and
//!   the tick meter).
//!
//! The planner (`arbor-planner`) and what a run leaves behind (`arbor-records`: recording,
//! replay, Groot exports, dataset) are crates of their own above this one.

pub mod bench_trees;
pub mod blackboard;
pub mod conditions;
pub mod custom;
pub mod engine;
pub mod export;
pub mod library;
pub mod manifest;
pub mod metrics;
pub mod record;
pub mod robot;
pub mod script;
pub mod skill;
pub mod tree;
pub mod value;
pub mod xml;
pub mod yaml;

pub use engine::{BuildError, Executor, NodeIdx, NodeInfo, NodeStatus};
pub use library::NodeLibrary;
pub use manifest::{DeclaredSkill, ManifestError, SkillManifest};
pub use robot::{CallId, Robot, SkillCall, SkillStatus};
pub use skill::{ParamSpec, ParamType, SkillKind, SkillRegistry, SkillSpec, Vocabulary};
pub use tree::{CheckedTree, Node, Tree, TreeError};
pub use value::{Params, Value};

use std::path::Path;

/// Loads a tree file by its extension: `.xml` (BehaviorTree.CPP), otherwise arbor YAML.
pub fn load_tree(path: &Path) -> Result<Tree, TreeError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("xml") => xml::load_file(path),
        _ => yaml::load_file(path),
    }
}
