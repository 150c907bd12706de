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
//! - records: [`record`] (tick transitions, skill calls) and [`dataset`] (fine-tuning lines).

pub mod bench_trees;
pub mod blackboard;
pub mod conditions;
pub mod dataset;
pub mod engine;
pub mod export;
pub mod groot;
pub mod library;
pub mod metrics;
pub mod planner;
pub mod record;
pub mod recording;
pub mod replay;
pub mod robot;
pub mod script;
pub mod skill;
pub mod tree;
pub mod value;
#[cfg(feature = "llm")]
pub mod vlm;
pub mod xml;
pub mod yaml;

pub use engine::{BuildError, Executor, NodeIdx, NodeInfo, NodeStatus};
pub use library::NodeLibrary;
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
