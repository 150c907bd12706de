//! arbor-behaviors: everything about behavior trees.
//!
//! Modules by concern:
//! - tree model and checks: [`value`], [`skill`] (the skill registry), [`tree`];
//! - formats: [`yaml`] (arbor's tree files);
//! - execution: [`robot`] (the interface skills act through), [`conditions`] (memory-backed
//!   conditions), [`engine`] (the executor over bonsai-bt: async skills, halting);
//! - records: [`record`] (tick transitions, skill calls) and [`dataset`] (fine-tuning lines).

pub mod conditions;
pub mod dataset;
pub mod engine;
pub mod record;
pub mod robot;
pub mod skill;
pub mod tree;
pub mod value;
pub mod yaml;

pub use engine::{Executor, NodeStatus};
pub use robot::{CallId, Robot, SkillCall, SkillStatus};
pub use skill::{ParamSpec, ParamType, SkillKind, SkillRegistry, SkillSpec, Vocabulary};
pub use tree::{CheckedTree, Node, NodeType, Tree, TreeError};
pub use value::{Params, Value};
