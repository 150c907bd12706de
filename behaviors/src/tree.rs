//! The tree model (independent of any file format or engine) and the checks every tree
//! passes before its first tick.

use crate::skill::{SkillKind, SkillRegistry, Vocabulary};
use crate::value::{Params, Value};
use std::fmt;

/// The node types of arbor's tree model. The full BehaviorTree.CPP library comes with the
/// engine issue; this set is what the foundation needs.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeType {
    /// Ticks children in order, resuming the running one; fails on the first failure.
    Sequence,
    /// Ticks children in order until one succeeds, resuming the running one.
    Fallback,
    /// Sequence that re-checks earlier children every tick (halting a running later one).
    ReactiveSequence,
    /// Fallback that re-checks earlier children every tick.
    ReactiveFallback,
    Inverter,
    ForceSuccess,
    ForceFailure,
    /// Re-runs its child after a failure, up to `num_attempts` times in all.
    Retry,
    /// Fails (halting its child) if the child runs longer than `seconds` of sim time.
    Timeout,
    AlwaysSuccess,
    AlwaysFailure,
    /// An action or condition from the skill registry.
    Skill(String),
}

/// How many children a node type takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Leaf,
    One,
    Many,
}

impl NodeType {
    pub const BUILTIN: [(&'static str, NodeType); 11] = [
        ("sequence", NodeType::Sequence),
        ("fallback", NodeType::Fallback),
        ("reactive_sequence", NodeType::ReactiveSequence),
        ("reactive_fallback", NodeType::ReactiveFallback),
        ("inverter", NodeType::Inverter),
        ("force_success", NodeType::ForceSuccess),
        ("force_failure", NodeType::ForceFailure),
        ("retry", NodeType::Retry),
        ("timeout", NodeType::Timeout),
        ("always_success", NodeType::AlwaysSuccess),
        ("always_failure", NodeType::AlwaysFailure),
    ];

    /// The type a file name stands for: a built-in node, else a skill.
    pub fn from_name(name: &str) -> NodeType {
        Self::BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| NodeType::Skill(name.to_string()))
    }

    pub fn name(&self) -> &str {
        match self {
            NodeType::Skill(s) => s,
            other => Self::BUILTIN.iter().find(|(_, t)| t == other).map(|(n, _)| *n).unwrap_or("?"),
        }
    }

    pub fn arity(&self) -> Arity {
        match self {
            NodeType::Sequence | NodeType::Fallback | NodeType::ReactiveSequence | NodeType::ReactiveFallback => {
                Arity::Many
            }
            NodeType::Inverter
            | NodeType::ForceSuccess
            | NodeType::ForceFailure
            | NodeType::Retry
            | NodeType::Timeout => Arity::One,
            NodeType::AlwaysSuccess | NodeType::AlwaysFailure | NodeType::Skill(_) => Arity::Leaf,
        }
    }
}

/// One node of a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub ty: NodeType,
    /// An optional instance name, shown in records next to the node path.
    pub name: Option<String>,
    pub params: Params,
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(ty: NodeType) -> Self {
        Self { ty, name: None, params: Params::new(), children: Vec::new() }
    }

    pub fn skill(name: &str, params: &[(&str, Value)]) -> Self {
        let mut n = Node::new(NodeType::Skill(name.to_string()));
        n.params = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        n
    }

    pub fn with_children(mut self, children: Vec<Node>) -> Self {
        self.children = children;
        self
    }

    /// Number of nodes in this subtree.
    pub fn size(&self) -> usize {
        1 + self.children.iter().map(Node::size).sum::<usize>()
    }

    /// Visits every node depth-first with its path.
    pub fn walk<'a>(&'a self, path: &str, f: &mut dyn FnMut(&str, &'a Node)) {
        f(path, self);
        for (i, c) in self.children.iter().enumerate() {
            c.walk(&child_path(path, i, c), f);
        }
    }
}

/// The path of child `i` of the node at `parent`: `sequence/fallback[0]/look_at[2]`.
pub fn child_path(parent: &str, i: usize, child: &Node) -> String {
    format!("{parent}/{}[{i}]", child.ty.name())
}

/// A whole tree: what a file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub name: String,
    /// The goal in plain language this tree was written or generated for.
    pub goal: Option<String>,
    pub root: Node,
}

impl Tree {
    pub fn root_path(&self) -> String {
        self.root.ty.name().to_string()
    }

    /// Checks the tree against the skill registry (and, if given, the names the world
    /// knows): node types, arity, parameters. Returns the tree with skill defaults filled in.
    pub fn check(
        &self,
        source: &str,
        registry: &SkillRegistry,
        vocab: Option<&Vocabulary>,
    ) -> Result<CheckedTree, TreeError> {
        let mut root = self.root.clone();
        check_node(&mut root, &self.root_path(), source, registry, vocab)?;
        Ok(CheckedTree { tree: Tree { name: self.name.clone(), goal: self.goal.clone(), root } })
    }
}

/// A tree that passed [`Tree::check`]: the only kind the executor accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTree {
    tree: Tree,
}

impl CheckedTree {
    pub fn tree(&self) -> &Tree {
        &self.tree
    }
}

/// Maximum attempts of a `retry` node; each attempt is a copy of the child in the engine.
pub const MAX_RETRY_ATTEMPTS: f64 = 100.0;

fn check_node(
    node: &mut Node,
    path: &str,
    source: &str,
    registry: &SkillRegistry,
    vocab: Option<&Vocabulary>,
) -> Result<(), TreeError> {
    let err = |message: String| TreeError::Invalid { source_name: source.to_string(), node: path.to_string(), message };
    match node.ty.arity() {
        Arity::Many if node.children.is_empty() => {
            return Err(err(format!("'{}' needs at least one child", node.ty.name())));
        }
        Arity::One if node.children.len() != 1 => {
            return Err(err(format!("'{}' takes exactly one child, got {}", node.ty.name(), node.children.len())));
        }
        Arity::Leaf if !node.children.is_empty() => {
            return Err(err(format!("'{}' takes no children", node.ty.name())));
        }
        _ => {}
    }
    match &node.ty {
        NodeType::Retry => {
            let n = require_number(&node.params, "num_attempts", 1.0, MAX_RETRY_ATTEMPTS).map_err(&err)?;
            if n.fract() != 0.0 {
                return Err(err(format!("'num_attempts' must be a whole number, got {n}")));
            }
            only_params(&node.params, &["num_attempts"]).map_err(&err)?;
        }
        NodeType::Timeout => {
            require_number(&node.params, "seconds", 0.0, 86_400.0).map_err(&err)?;
            only_params(&node.params, &["seconds"]).map_err(&err)?;
        }
        NodeType::Skill(name) => {
            let Some(spec) = registry.get(name) else {
                return Err(err(format!(
                    "unknown node or skill '{name}' (known skills: {})",
                    registry.names().join(", ")
                )));
            };
            node.params = registry.check_params(spec, &node.params, vocab).map_err(|e| err(e.to_string()))?;
        }
        _ => only_params(&node.params, &[]).map_err(&err)?,
    }
    for (i, child) in node.children.iter_mut().enumerate() {
        let p = child_path(path, i, child);
        check_node(child, &p, source, registry, vocab)?;
    }
    Ok(())
}

fn require_number(params: &Params, key: &str, min: f64, max: f64) -> Result<f64, String> {
    match params.get(key) {
        Some(Value::Number(n)) if n.is_finite() && *n >= min && *n <= max => Ok(*n),
        Some(v) => Err(format!("parameter '{key}' must be a number in [{min}, {max}], got {v}")),
        None => Err(format!("missing required parameter '{key}'")),
    }
}

fn only_params(params: &Params, allowed: &[&str]) -> Result<(), String> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) if allowed.is_empty() => Err(format!("unknown parameter '{k}' (this node takes none)")),
        Some(k) => Err(format!("unknown parameter '{k}' (takes: {})", allowed.join(", "))),
        None => Ok(()),
    }
}

/// Whether the skill at this node is a condition (answers in one tick) or an action.
pub fn skill_kind(registry: &SkillRegistry, node: &Node) -> Option<SkillKind> {
    match &node.ty {
        NodeType::Skill(s) => registry.get(s).map(|spec| spec.kind),
        _ => None,
    }
}

/// Everything that can be wrong with a tree: the file, the place in it, and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TreeError {
    #[error("{source_name}: line {line}, column {column}: {message}")]
    Syntax { source_name: String, line: usize, column: usize, message: String },
    #[error("{source_name}: at node '{node}': {message}")]
    Invalid { source_name: String, node: String, message: String },
    #[error("{source_name}: {message}")]
    File { source_name: String, message: String },
}

impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tree '{}' ({} nodes)", self.name, self.root.size())
    }
}
