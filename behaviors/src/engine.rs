//! The executor: BehaviorTree.CPP v4 semantics over a flat arena of nodes.
//!
//! Why not bonsai-bt's own tick loop: bonsai's `Behavior` enum is closed (no place for
//! Parallel thresholds, Switch, IfThenElse, RunOnce, pre/post conditions, ports), it hides
//! composite statuses (halting needs them), and it deep-clones a subtree each time a Sequence
//! moves to its next child (allocations every tick). arbor therefore ticks its own arena:
//! nodes in pre-order, children as index ranges, statuses and counters in place, blackboard
//! keys bound to slots at build time: no allocation per tick in steady state. bonsai-bt stays
//! the baseline every benchmark runs beside it (see `benches/engine.rs`).
//!
//! Halting: when a parent stops ticking a RUNNING child (reactive condition failed, timeout,
//! parallel decided, fallback switched, switch changed case, tree halted from outside), the
//! child and all its RUNNING descendants are halted in the same tick, deepest first; skills
//! get the robot's `halt` call; `_onHalted` scripts run.
//!
//! Over 600 lines: one arena interpreter: every node kind's tick shares the flat node state, split it would spread one struct's invariants over files.

use crate::blackboard::Blackboard;
use crate::library::{
    Builtin, Category, Implementation, NodeLibrary, POST_CONDITIONS, PRE_CONDITIONS, PortDir, PortSpec,
};
use crate::record::TickSink;
use crate::robot::{CallId, Robot, SkillCall, SkillStatus};
use crate::script::{Env, Script, Slot, loosely_equal};
use crate::skill::{ParamType, parse_text};
use crate::tree::{CheckedTree, Node, Tree, blackboard_ref, push_segment, subtree_target};
use crate::value::{Params, Value};
use arbor_core::SimTime;
use arbor_memory::WorkingMemory;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Index of a node in the executor's arena (pre-order).
pub type NodeIdx = u32;

/// The status of a node, as BT.CPP v4 has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Idle,
    Running,
    Success,
    Failure,
    Skipped,
}

impl NodeStatus {
    pub fn is_done(self) -> bool {
        matches!(self, NodeStatus::Success | NodeStatus::Failure)
    }
    fn is_active(self) -> bool {
        !matches!(self, NodeStatus::Idle | NodeStatus::Skipped)
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeStatus::Idle => "idle",
            NodeStatus::Running => "running",
            NodeStatus::Success => "success",
            NodeStatus::Failure => "failure",
            NodeStatus::Skipped => "skipped",
        })
    }
}

/// What records and tools need to know about a node of the arena.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `sequence/force_success[0]/sequence[0]/look_at[3]`; subtrees add `subtree[i]/<tree id>:`.
    pub path: String,
    pub id: String,
    pub name: Option<String>,
    pub category: Category,
    pub parent: Option<NodeIdx>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{source_name}: at node '{path}': '{id}' is declared but has no implementation here, so the tree cannot execute (it can be validated and converted)"
    )]
    NotExecutable { source_name: String, path: String, id: String },
    #[error("{source_name}: at node '{path}': {message}")]
    Invalid { source_name: String, path: String, message: String },
}

#[derive(Debug, Clone)]
enum PortSrc {
    Lit(Value),
    Slot(Slot),
    Missing,
}

#[derive(Debug, Clone)]
struct SkillLeaf {
    /// The node whose ID names the skill.
    node: NodeIdx,
    /// Literal parameters (defaults filled in).
    params: Params,
    /// Parameters read from the blackboard at each start.
    dynamic: Vec<(String, Slot, ParamType)>,
    /// Output ports remapped to blackboard entries: written when a call succeeds.
    outputs: Vec<(String, Slot)>,
}

#[derive(Debug, Clone)]
enum Kind {
    Sequence,
    SequenceWithMemory,
    Fallback,
    ReactiveSequence,
    ReactiveFallback,
    Parallel(Box<(PortSrc, PortSrc)>),
    ParallelAll { max_failures: PortSrc },
    IfThenElse,
    WhileDoElse,
    Switch(Box<(PortSrc, Vec<PortSrc>)>),
    Inverter,
    ForceSuccess,
    ForceFailure,
    Repeat(PortSrc),
    Retry(PortSrc),
    Timeout(PortSrc),
    Delay(PortSrc),
    RunOnce(PortSrc),
    KeepRunningUntilFailure,
    Precondition { cond: Box<Script>, otherwise: PortSrc },
    SubTree,
    AlwaysSuccess,
    AlwaysFailure,
    Script(Box<Script>),
    ScriptCondition(Box<Script>),
    SetBlackboard { value: PortSrc, key: Slot },
    UnsetBlackboard(Slot),
    Sleep(PortSrc),
    Action(u32),
    Condition(u32),
}

/// Pre- and post-condition scripts of one node, in BT.CPP's order.
#[derive(Debug, Clone, Default)]
struct Conds {
    pre: [Option<Script>; 4],
    post: [Option<Script>; 4],
}

/// The mutable state of one node.
#[derive(Debug, Clone)]
struct NodeState {
    status: NodeStatus,
    /// Current child (sequences, fallbacks, if-then-else), running child + 1 (switch), or
    /// attempts/cycles done (repeat, retry).
    idx: u32,
    /// Success count (parallel).
    n_ok: u32,
    /// Failure count (parallel).
    n_fail: u32,
    /// Skipped children in the current pass (sequence, fallback).
    n_skip: u32,
    t0: SimTime,
    /// RunOnce: done; Delay: delay over.
    flag: bool,
    once: NodeStatus,
    call: Option<CallId>,
}

impl NodeState {
    fn new() -> Self {
        Self {
            status: NodeStatus::Idle,
            idx: 0,
            n_ok: 0,
            n_fail: 0,
            n_skip: 0,
            t0: SimTime::ZERO,
            flag: false,
            once: NodeStatus::Idle,
            call: None,
        }
    }
}

/// What does not change while the tree runs: node kinds, structure, names, skills.
#[derive(Debug, Clone, Default)]
struct Tables {
    kind: Vec<Kind>,
    first: Vec<u32>,
    len: Vec<u32>,
    conds: Vec<Option<Box<Conds>>>,
    children: Vec<NodeIdx>,
    /// Every node's path and ID, back to back (one allocation for the whole tree).
    text: String,
    path_at: Vec<(u32, u32)>,
    id_at: Vec<(u32, u32)>,
    meta: Vec<Meta>,
    skills: Vec<SkillLeaf>,
}

#[derive(Debug, Clone)]
struct Meta {
    name: Option<String>,
    category: Category,
    parent: Option<NodeIdx>,
}

impl Tables {
    fn path(&self, i: usize) -> &str {
        let (a, b) = self.path_at[i];
        self.text.get(a as usize..b as usize).unwrap_or("")
    }
    fn id(&self, i: usize) -> &str {
        let (a, b) = self.id_at[i];
        self.text.get(a as usize..b as usize).unwrap_or("")
    }
    /// Appends text to the buffer; returns its range.
    fn push_text(&mut self, s: &str) -> (u32, u32) {
        let a = self.text.len();
        self.text.push_str(s);
        (a as u32, self.text.len() as u32)
    }
    /// Appends `<parent path>/<name>[i]` (or `<parent path>/<tree>:<name>` for a subtree's
    /// root) to the buffer; returns its range.
    fn push_child_path(&mut self, parent: (u32, u32), tree: Option<&str>, name: &str, i: usize) -> (u32, u32) {
        let a = self.text.len();
        self.text.extend_from_within(parent.0 as usize..parent.1 as usize);
        match tree {
            Some(t) => {
                self.text.push('/');
                self.text.push_str(t);
                self.text.push(':');
                self.text.push_str(name);
            }
            None => push_segment(&mut self.text, name, i),
        }
        (a as u32, self.text.len() as u32)
    }
}

/// What changes while the tree runs.
#[derive(Debug, Clone, Default)]
struct State {
    nodes: Vec<NodeState>,
    /// Parallel nodes: which children completed (indexed like `Tables::children`).
    done: Vec<bool>,
    /// Parameters of each skill leaf's call in flight, when they come from the blackboard.
    call_params: Vec<Option<Params>>,
    bb: Blackboard,
    next_call: CallId,
    stats: ExecStats,
}

/// Per-run counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStats {
    pub ticks: u64,
    pub node_ticks: u64,
    pub skill_calls: u64,
    pub halts: u64,
    pub errors: u64,
}

/// A tree ready to tick.
pub struct Executor {
    t: Tables,
    s: State,
    last_status: NodeStatus,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor").field("nodes", &self.t.kind.len()).field("status", &self.last_status).finish()
    }
}

/// The robot, memory, clock and sink of one tick.
struct Cx<'a> {
    now: SimTime,
    tick: u64,
    /// The sink wants events (asked once per tick).
    trace: bool,
    robot: &'a mut dyn Robot,
    memory: &'a WorkingMemory,
    sink: &'a mut dyn TickSink,
}

// ------------------------------------------------------------------------------------------
// Building
// ------------------------------------------------------------------------------------------

struct Scope {
    parent: Option<usize>,
    name: String,
    keys: BTreeMap<String, Slot>,
    remap: BTreeMap<String, String>,
    autoremap: bool,
}

struct Builder<'a> {
    doc: &'a Tree,
    lib: &'a NodeLibrary,
    source: &'a str,
    t: Tables,
    s: State,
    scopes: Vec<Scope>,
}

impl Builder<'_> {
    fn slot(&mut self, scope: usize, key: &str) -> Slot {
        if let Some(root_key) = key.strip_prefix('@') {
            return self.slot(0, root_key);
        }
        if let Some(s) = self.scopes[scope].keys.get(key) {
            return *s;
        }
        let s = &self.scopes[scope];
        let slot = match (s.parent, s.remap.get(key).cloned(), s.autoremap) {
            (Some(p), Some(parent_key), _) => self.slot(p, &parent_key),
            (Some(p), None, true) => self.slot(p, key),
            _ => {
                let qualified = if scope == 0 { key.to_string() } else { format!("{}/{key}", s.name) };
                let root_key = (scope == 0).then_some(key);
                self.s.bb.new_slot(qualified, root_key)
            }
        };
        self.scopes[scope].keys.insert(key.to_string(), slot);
        slot
    }

    fn err(&self, path: (u32, u32), message: String) -> BuildError {
        let path = self.t.text.get(path.0 as usize..path.1 as usize).unwrap_or("").to_string();
        BuildError::Invalid { source_name: self.source.into(), path, message }
    }

    fn port(&mut self, scope: usize, node: &Node, spec: &PortSpec) -> PortSrc {
        match node.attr(&spec.name) {
            Some(v) => match blackboard_ref(v) {
                Some(key) => PortSrc::Slot(self.slot(scope, key)),
                None => PortSrc::Lit(parse_text(&spec.ty, v)),
            },
            None => match &spec.default {
                Some(d) => PortSrc::Lit(parse_text(&spec.ty, d)),
                None => PortSrc::Missing,
            },
        }
    }

    fn script(&mut self, scope: usize, code: &str, path: (u32, u32)) -> Result<Script, BuildError> {
        let mut s = Script::parse(code).map_err(|e| self.err(path, e.to_string()))?;
        let lib = self.lib;
        let mut names: Vec<String> = Vec::new();
        s.bind(&|n| lib.enum_value(n), &mut |n| {
            names.push(n.to_string());
            0
        });
        // Bind again with real slots (the closure above only collects names).
        let mut slots = BTreeMap::new();
        for n in names {
            let slot = self.slot(scope, &n);
            slots.insert(n, slot);
        }
        s.bind(&|n| lib.enum_value(n), &mut |n| slots.get(n).copied().unwrap_or(0));
        Ok(s)
    }

    fn build(
        &mut self,
        node: &Node,
        scope: usize,
        path: (u32, u32),
        parent: Option<NodeIdx>,
    ) -> Result<NodeIdx, BuildError> {
        let me = self.t.kind.len() as NodeIdx;
        let spec = self.lib.get(&node.id);
        let target = match spec {
            Some(_) if node.id == "SubTree" => node.attr("ID").map(str::to_string),
            Some(_) => None,
            None => self.doc.find(&node.id).map(|_| node.id.clone()),
        };
        let category =
            spec.map(|s| s.category).unwrap_or(if target.is_some() { Category::SubTree } else { Category::Action });
        self.t.path_at.push(path);
        let id_at = self.t.push_text(&node.id);
        self.t.id_at.push(id_at);
        self.t.meta.push(Meta { name: node.name.clone(), category, parent });
        // Placeholders; the real kind is filled in below (children first need their indices).
        self.t.kind.push(Kind::AlwaysFailure);
        self.t.first.push(0);
        self.t.len.push(0);
        self.t.conds.push(None);
        self.s.nodes.push(NodeState::new());
        let conds = self.conds(scope, node, path)?;
        let kind = match (spec.map(|s| s.implementation), &target) {
            (_, Some(target)) => {
                let def =
                    self.doc.find(target).ok_or_else(|| self.err(path, format!("subtree '{target}' not found")))?;
                let mut remap = BTreeMap::new();
                let mut literals = Vec::new();
                let mut autoremap = false;
                for (k, v) in &node.attrs {
                    match k.as_str() {
                        "ID" | "_description" | "_uid" | "_fullpath" => {}
                        "_autoremap" => autoremap = v.trim() == "true" || v.trim() == "1",
                        k if PRE_CONDITIONS.contains(&k) || POST_CONDITIONS.contains(&k) => {}
                        k => match blackboard_ref(v) {
                            Some("=") => {
                                remap.insert(k.to_string(), k.to_string());
                            }
                            Some(parent_key) => {
                                remap.insert(k.to_string(), parent_key.to_string());
                            }
                            None => literals.push((k.to_string(), v.clone())),
                        },
                    }
                }
                let name = format!("{target}#{me}");
                self.scopes.push(Scope { parent: Some(scope), name, keys: BTreeMap::new(), remap, autoremap });
                let sub = self.scopes.len() - 1;
                for (k, v) in literals {
                    let slot = self.slot(sub, &k);
                    self.s.bb.add_initial(slot, Value::Text(v));
                }
                let child_path = self.t.push_child_path(path, Some(target), self.lib.yaml_name(&def.root.id), 0);
                let c = self.build(&def.root, sub, child_path, Some(me))?;
                self.set_children(me, &[c]);
                Kind::SubTree
            }
            (None | Some(Implementation::Declared), None) => {
                let path = self.t.text.get(path.0 as usize..path.1 as usize).unwrap_or("").to_string();
                return Err(BuildError::NotExecutable { source_name: self.source.into(), path, id: node.id.clone() });
            }
            (Some(Implementation::Skill), None) => {
                let spec = spec.ok_or_else(|| self.err(path, "no spec".into()))?;
                let mut params = Params::new();
                let mut dynamic = Vec::new();
                let mut outputs = Vec::new();
                for p in &spec.ports {
                    if p.dir == PortDir::Output {
                        if let Some(key) = node.attr(&p.name).and_then(blackboard_ref) {
                            outputs.push((p.name.clone(), self.slot(scope, key)));
                        }
                        continue;
                    }
                    match node.attr(&p.name) {
                        Some(v) => match blackboard_ref(v) {
                            Some(key) => dynamic.push((p.name.clone(), self.slot(scope, key), p.ty.clone())),
                            None => {
                                params.insert(p.name.clone(), parse_text(&p.ty, v));
                            }
                        },
                        None => {
                            if let Some(d) = &p.default {
                                params.insert(p.name.clone(), parse_text(&p.ty, d));
                            }
                        }
                    }
                }
                self.t.skills.push(SkillLeaf { node: me, params, dynamic, outputs });
                self.s.call_params.push(None);
                let k = (self.t.skills.len() - 1) as u32;
                if spec.category == Category::Condition { Kind::Condition(k) } else { Kind::Action(k) }
            }
            (Some(Implementation::Builtin(b)), None) => {
                let spec = spec.ok_or_else(|| self.err(path, "no spec".into()))?.clone();
                let mut kids = Vec::with_capacity(node.children.len());
                for (i, c) in node.children.iter().enumerate() {
                    let p = self.t.push_child_path(path, None, self.lib.yaml_name(&c.id), i);
                    kids.push(self.build(c, scope, p, Some(me))?);
                }
                self.set_children(me, &kids);
                let port = |b: &mut Self, name: &str| match spec.port(name) {
                    Some(p) => b.port(scope, node, p),
                    None => PortSrc::Missing,
                };
                match b {
                    Builtin::Sequence => Kind::Sequence,
                    Builtin::SequenceWithMemory => Kind::SequenceWithMemory,
                    Builtin::Fallback => Kind::Fallback,
                    Builtin::ReactiveSequence => Kind::ReactiveSequence,
                    Builtin::ReactiveFallback => Kind::ReactiveFallback,
                    Builtin::Parallel => {
                        Kind::Parallel(Box::new((port(self, "success_count"), port(self, "failure_count"))))
                    }
                    Builtin::ParallelAll => Kind::ParallelAll { max_failures: port(self, "max_failures") },
                    Builtin::IfThenElse => Kind::IfThenElse,
                    Builtin::WhileDoElse => Kind::WhileDoElse,
                    Builtin::Switch(n) => {
                        let variable = port(self, "variable");
                        let cases = (1..=n).map(|c| port(self, &format!("case_{c}"))).collect();
                        Kind::Switch(Box::new((variable, cases)))
                    }
                    Builtin::Inverter => Kind::Inverter,
                    Builtin::ForceSuccess => Kind::ForceSuccess,
                    Builtin::ForceFailure => Kind::ForceFailure,
                    Builtin::Repeat => Kind::Repeat(port(self, "num_cycles")),
                    Builtin::RetryUntilSuccessful => Kind::Retry(port(self, "num_attempts")),
                    Builtin::Timeout => Kind::Timeout(port(self, "msec")),
                    Builtin::Delay => Kind::Delay(port(self, "delay_msec")),
                    Builtin::RunOnce => Kind::RunOnce(port(self, "then_skip")),
                    Builtin::KeepRunningUntilFailure => Kind::KeepRunningUntilFailure,
                    Builtin::Precondition => {
                        let code = node.attr("if").unwrap_or("true").to_string();
                        Kind::Precondition {
                            cond: Box::new(self.script(scope, &code, path)?),
                            otherwise: port(self, "else"),
                        }
                    }
                    Builtin::SubTree => return Err(self.err(path, "SubTree without a target".into())),
                    Builtin::AlwaysSuccess => Kind::AlwaysSuccess,
                    Builtin::AlwaysFailure => Kind::AlwaysFailure,
                    Builtin::Script => {
                        Kind::Script(Box::new(self.script(scope, node.attr("code").unwrap_or(""), path)?))
                    }
                    Builtin::ScriptCondition => {
                        Kind::ScriptCondition(Box::new(self.script(scope, node.attr("code").unwrap_or(""), path)?))
                    }
                    Builtin::SetBlackboard => {
                        let key_text = node.attr("output_key").unwrap_or_default();
                        let key = blackboard_ref(key_text).unwrap_or(key_text).to_string();
                        let slot = self.slot(scope, &key);
                        Kind::SetBlackboard { value: port(self, "value"), key: slot }
                    }
                    Builtin::UnsetBlackboard => {
                        let key_text = node.attr("key").unwrap_or_default();
                        let key = blackboard_ref(key_text).unwrap_or(key_text).to_string();
                        Kind::UnsetBlackboard(self.slot(scope, &key))
                    }
                    Builtin::Sleep => Kind::Sleep(port(self, "msec")),
                }
            }
        };
        self.t.kind[me as usize] = kind;
        self.t.conds[me as usize] = conds;
        Ok(me)
    }

    fn set_children(&mut self, me: NodeIdx, kids: &[NodeIdx]) {
        let first = self.t.children.len() as u32;
        self.t.children.extend_from_slice(kids);
        self.s.done.extend(kids.iter().map(|_| false));
        self.t.first[me as usize] = first;
        self.t.len[me as usize] = kids.len() as u32;
    }

    fn conds(&mut self, scope: usize, node: &Node, path: (u32, u32)) -> Result<Option<Box<Conds>>, BuildError> {
        let mut c = Conds::default();
        let mut any = false;
        for (i, key) in PRE_CONDITIONS.iter().enumerate() {
            if let Some(code) = node.attr(key) {
                c.pre[i] = Some(self.script(scope, code, path)?);
                any = true;
            }
        }
        for (i, key) in POST_CONDITIONS.iter().enumerate() {
            if let Some(code) = node.attr(key) {
                c.post[i] = Some(self.script(scope, code, path)?);
                any = true;
            }
        }
        Ok(any.then(|| Box::new(c)))
    }
}

/// Nodes of a tree with its subtrees expanded (for sizing the arena; depth-bounded since the
/// checked document has no subtree cycles).
fn expanded_size(node: &Node, doc: &Tree, lib: &NodeLibrary, depth: usize) -> usize {
    let own: usize = 1 + node.children.iter().map(|c| expanded_size(c, doc, lib, depth)).sum::<usize>();
    match subtree_target(node, lib, doc).and_then(|t| doc.find(t)) {
        Some(def) if depth < 64 => own + expanded_size(&def.root, doc, lib, depth + 1),
        _ => own,
    }
}

// ------------------------------------------------------------------------------------------
// Ticking
// ------------------------------------------------------------------------------------------

/// Node kinds that are BT.CPP decorators (one child, DecoratorNode's executeTick).
fn is_decorator(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Inverter
            | Kind::ForceSuccess
            | Kind::ForceFailure
            | Kind::Repeat(_)
            | Kind::Retry(_)
            | Kind::Timeout(_)
            | Kind::Delay(_)
            | Kind::RunOnce(_)
            | Kind::KeepRunningUntilFailure
            | Kind::Precondition { .. }
            | Kind::SubTree
    )
}

const FAILURE_IF: usize = 0;
const SUCCESS_IF: usize = 1;
const SKIP_IF: usize = 2;
const WHILE: usize = 3;
const ON_SUCCESS: usize = 0;
const ON_FAILURE: usize = 1;
const POST: usize = 2;
const ON_HALTED: usize = 3;

impl Executor {
    /// Builds the executor for a checked document (its main tree, with subtrees expanded).
    pub fn new(checked: &CheckedTree) -> Result<Self, BuildError> {
        Self::with_source(checked, &checked.tree().name)
    }

    /// As [`Executor::new`], naming the source in errors.
    pub fn with_source(checked: &CheckedTree, source: &str) -> Result<Self, BuildError> {
        let doc = checked.tree();
        let main = doc.main().ok_or_else(|| BuildError::Invalid {
            source_name: source.into(),
            path: String::new(),
            message: "no main tree".into(),
        })?;
        let mut b = Builder {
            doc,
            lib: checked.library(),
            source,
            t: Tables::default(),
            s: State { next_call: 1, ..State::default() },
            scopes: vec![Scope {
                parent: None,
                name: String::new(),
                keys: BTreeMap::new(),
                remap: BTreeMap::new(),
                autoremap: false,
            }],
        };
        let n = expanded_size(&main.root, doc, b.lib, 0);
        b.t.kind.reserve(n);
        b.t.first.reserve(n);
        b.t.len.reserve(n);
        b.t.conds.reserve(n);
        b.t.children.reserve(n);
        b.t.path_at.reserve(n);
        b.t.id_at.reserve(n);
        b.t.meta.reserve(n);
        b.t.text.reserve(n * 48);
        b.s.nodes.reserve(n);
        b.s.done.reserve(n);
        let path = b.t.push_text(b.lib.yaml_name(&main.root.id));
        b.build(&main.root, 0, path, None)?;
        Ok(Executor { t: b.t, s: b.s, last_status: NodeStatus::Idle })
    }

    pub fn status(&self) -> NodeStatus {
        self.last_status
    }

    pub fn stats(&self) -> ExecStats {
        self.s.stats
    }

    /// The arena's nodes, by index: paths, ids, categories (made on demand).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        (0..self.t.meta.len())
            .map(|i| NodeInfo {
                path: self.t.path(i).to_string(),
                id: self.t.id(i).to_string(),
                name: self.t.meta[i].name.clone(),
                category: self.t.meta[i].category,
                parent: self.t.meta[i].parent,
            })
            .collect()
    }

    /// Number of nodes in the arena (subtrees expanded).
    pub fn len(&self) -> usize {
        self.t.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.meta.is_empty()
    }

    /// A node's path, e.g. `sequence/retry[2]/sequence[0]/look_at[0]`.
    pub fn path(&self, node: NodeIdx) -> &str {
        if (node as usize) < self.t.path_at.len() { self.t.path(node as usize) } else { "" }
    }

    /// Current status of every node, by index.
    pub fn statuses(&self) -> impl Iterator<Item = NodeStatus> + '_ {
        self.s.nodes.iter().map(|n| n.status)
    }

    pub fn blackboard(&self) -> &Blackboard {
        &self.s.bb
    }

    pub fn blackboard_mut(&mut self) -> &mut Blackboard {
        &mut self.s.bb
    }

    /// Ticks the tree once at time `now`. A finished tree returns its result until [`reset`].
    ///
    /// [`reset`]: Executor::reset
    pub fn tick(
        &mut self,
        now: SimTime,
        robot: &mut dyn Robot,
        memory: &WorkingMemory,
        sink: &mut dyn TickSink,
    ) -> NodeStatus {
        if self.last_status.is_done() {
            return self.last_status;
        }
        self.s.stats.ticks += 1;
        let cx = Cx { now, tick: self.s.stats.ticks, trace: sink.enabled(), robot, memory, sink };
        let s = Ticker { t: &self.t, s: &mut self.s, cx }.exec(0);
        self.last_status = s;
        s
    }

    /// Halts everything running (the tree is stopped from outside: SIGINT, a new goal), as
    /// BT.CPP's `haltTree`: the root is halted, then every node is reset (a node a parent left
    /// finished, e.g. before a SequenceWithMemory's failed child, goes back to IDLE too).
    /// Unlike BT.CPP, `_onHalted` runs only on nodes that were running (see ARCHITECTURE.md).
    pub fn halt(&mut self, now: SimTime, robot: &mut dyn Robot, memory: &WorkingMemory, sink: &mut dyn TickSink) {
        let cx = Cx { now, tick: self.s.stats.ticks, trace: sink.enabled(), robot, memory, sink };
        let mut t = Ticker { t: &self.t, s: &mut self.s, cx };
        t.halt_child(0);
        t.reset_all();
        self.last_status = NodeStatus::Idle;
    }

    /// Makes a finished tree ready to run again, as BT.CPP's `tickRoot` does after a finished
    /// tick: the root goes back to IDLE (its children reset themselves when it finished); the
    /// blackboard is kept.
    pub fn reset(&mut self, now: SimTime, robot: &mut dyn Robot, memory: &WorkingMemory, sink: &mut dyn TickSink) {
        let cx = Cx { now, tick: self.s.stats.ticks, trace: sink.enabled(), robot, memory, sink };
        Ticker { t: &self.t, s: &mut self.s, cx }.halt_child(0);
        self.last_status = NodeStatus::Idle;
    }
}

/// One tick's view of an executor: the immutable tables, the mutable state, the context.
struct Ticker<'a, 'b> {
    t: &'a Tables,
    s: &'a mut State,
    cx: Cx<'b>,
}

impl Ticker<'_, '_> {
    fn child(&self, i: usize, k: u32) -> usize {
        self.t.children[(self.t.first[i] + k) as usize] as usize
    }

    fn set_status(&mut self, i: usize, s: NodeStatus) {
        let n = &mut self.s.nodes[i];
        if n.status != s {
            if self.cx.trace {
                self.cx.sink.transition(self.cx.tick, self.cx.now, i as NodeIdx, n.status, s);
            }
            n.status = s;
        }
    }

    fn error(&mut self, i: usize, message: &str) {
        self.s.stats.errors += 1;
        self.cx.sink.error(self.cx.tick, self.cx.now, i as NodeIdx, message);
    }

    /// BT.CPP's `executeTick`: pre-conditions, tick, post-conditions, status change.
    fn exec(&mut self, i: usize) -> NodeStatus {
        self.s.stats.node_ticks += 1;
        let s = if self.t.conds[i].is_some() {
            match self.pre_conditions(i) {
                Some(s) => s,
                None => self.tick_kind(i),
            }
        } else {
            self.tick_kind(i)
        };
        if self.t.conds[i].is_some() && s.is_done() {
            self.post_conditions(i, s);
        }
        // BT.CPP (since 4.5) keeps a skipped node's previous status and tells only the parent.
        if s != NodeStatus::Skipped {
            self.set_status(i, s);
        }
        // DecoratorNode::executeTick: a finished child goes back to IDLE after its parent's
        // status change (most decorators have reset it already, inside their tick).
        if self.t.len[i] == 1 && is_decorator(&self.t.kind[i]) {
            let c = self.child(i, 0);
            if self.s.nodes[c].status.is_done() {
                self.set_status(c, NodeStatus::Idle);
            }
        }
        s
    }

    fn run_cond(&mut self, i: usize, which: usize, pre: bool) -> Option<Result<bool, String>> {
        let t = self.t;
        let conds = t.conds[i].as_ref()?;
        let script = if pre { conds.pre[which].as_ref()? } else { conds.post[which].as_ref()? };
        let r = if pre { script.eval_bool(&mut self.s.bb) } else { script.eval(&mut self.s.bb).map(|_| true) };
        if let Err(e) = &r {
            let msg = format!("{}: {e}", if pre { PRE_CONDITIONS[which] } else { POST_CONDITIONS[which] });
            self.error(i, &msg);
        }
        Some(r)
    }

    fn pre_conditions(&mut self, i: usize) -> Option<NodeStatus> {
        let prev = self.s.nodes[i].status;
        if matches!(prev, NodeStatus::Idle | NodeStatus::Skipped) {
            for (which, on_true) in
                [(FAILURE_IF, NodeStatus::Failure), (SUCCESS_IF, NodeStatus::Success), (SKIP_IF, NodeStatus::Skipped)]
            {
                match self.run_cond(i, which, true) {
                    Some(Ok(true)) => return Some(on_true),
                    Some(Err(_)) => return Some(NodeStatus::Failure),
                    _ => {}
                }
            }
            match self.run_cond(i, WHILE, true) {
                Some(Ok(false)) => return Some(NodeStatus::Skipped),
                Some(Err(_)) => return Some(NodeStatus::Failure),
                _ => {}
            }
        } else if prev == NodeStatus::Running {
            match self.run_cond(i, WHILE, true) {
                Some(Ok(false)) => {
                    self.halt_child(i);
                    return Some(NodeStatus::Skipped);
                }
                Some(Err(_)) => {
                    self.halt_child(i);
                    return Some(NodeStatus::Failure);
                }
                _ => {}
            }
        }
        None
    }

    fn post_conditions(&mut self, i: usize, s: NodeStatus) {
        let which = if s == NodeStatus::Success { ON_SUCCESS } else { ON_FAILURE };
        self.run_cond(i, which, false);
        self.run_cond(i, POST, false);
    }

    /// Halts a child if it is running; in any case its status goes back to idle.
    fn halt_child(&mut self, c: usize) {
        match self.s.nodes[c].status {
            // Idle nodes have nothing to halt or reset (they reset themselves on completion).
            NodeStatus::Idle => return,
            NodeStatus::Running => self.halt_node(c),
            _ => {}
        }
        self.reset_state(c);
        self.set_status(c, NodeStatus::Idle);
    }

    /// The visitor of BT.CPP's `haltTree`: every node's `halt()` in pre-order, each resetting its
    /// children, then itself (no `_onHalted`: arbor runs it only where something was halted).
    fn reset_all(&mut self) {
        for i in 0..self.t.kind.len() {
            for k in 0..self.t.len[i] {
                let c = self.child(i, k);
                if self.s.nodes[c].status != NodeStatus::Idle {
                    if self.s.nodes[c].status == NodeStatus::Running {
                        self.halt_node(c);
                    }
                    self.set_status(c, NodeStatus::Idle);
                }
            }
            self.reset_state(i);
            self.set_status(i, NodeStatus::Idle);
        }
    }

    fn reset_children(&mut self, i: usize) {
        for k in 0..self.t.len[i] {
            let c = self.child(i, k);
            self.halt_child(c);
        }
    }

    /// BT.CPP's `haltNode`: descendants first, the skill's cancel, then `_onHalted`.
    fn halt_node(&mut self, i: usize) {
        for k in 0..self.t.len[i] {
            let c = self.child(i, k);
            self.halt_child(c);
        }
        if let Kind::Action(s) = self.t.kind[i]
            && let Some(id) = self.s.nodes[i].call.take()
        {
            let leaf = &self.t.skills[s as usize];
            let params = self.s.call_params[s as usize].as_ref().unwrap_or(&leaf.params);
            let n = leaf.node as usize;
            self.cx.robot.halt(&SkillCall { id, node: self.t.path(n), skill: self.t.id(n), params });
            if self.cx.trace {
                self.cx.sink.skill_halted(self.cx.tick, self.cx.now, id, i as NodeIdx);
            }
            self.s.call_params[s as usize] = None;
            self.s.stats.halts += 1;
        }
        self.reset_state(i);
        self.run_cond(i, ON_HALTED, false);
    }

    fn reset_state(&mut self, i: usize) {
        let t = self.t;
        let n = &mut self.s.nodes[i];
        // SequenceWithMemory keeps its place when halted or reset (BT.CPP: its halt() does not
        // rewind); it rewinds itself when it succeeds.
        if !matches!(t.kind[i], Kind::SequenceWithMemory) {
            n.idx = 0;
        }
        n.n_ok = 0;
        n.n_fail = 0;
        n.n_skip = 0;
        // RunOnce remembers it ran; Precondition keeps "child started" (BT.CPP's halt does not
        // clear `_children_running`).
        if !matches!(t.kind[i], Kind::RunOnce(_) | Kind::Precondition { .. }) {
            n.flag = false;
        }
        if matches!(t.kind[i], Kind::Parallel(_) | Kind::ParallelAll { .. }) {
            let (a, b) = (t.first[i] as usize, (t.first[i] + t.len[i]) as usize);
            self.s.done[a..b].iter_mut().for_each(|d| *d = false);
        }
    }

    fn read(&self, p: &PortSrc) -> Option<Value> {
        match p {
            PortSrc::Lit(v) => Some(v.clone()),
            PortSrc::Slot(s) => Env::get(&self.s.bb, *s).cloned(),
            PortSrc::Missing => None,
        }
    }

    fn read_num(&mut self, i: usize, p: &PortSrc, what: &str) -> Option<f64> {
        let n = match p {
            PortSrc::Lit(Value::Number(n)) => Some(*n),
            _ => match self.read(p) {
                Some(Value::Number(n)) => Some(n),
                Some(Value::Text(t)) => t.trim().parse::<f64>().ok(),
                _ => None,
            },
        };
        if n.is_none() {
            self.error(i, &format!("port '{what}' has no numeric value"));
        }
        n
    }

    fn elapsed_ms(&self, i: usize, now: SimTime) -> f64 {
        now.saturating_sub(self.s.nodes[i].t0).micros() as f64 / 1000.0
    }

    #[allow(clippy::too_many_lines, reason = "one match arm per node type keeps each node's semantics in one screen")]
    fn tick_kind(&mut self, i: usize) -> NodeStatus {
        use NodeStatus::*;
        let len = self.t.len[i];
        let t = self.t;
        match &t.kind[i] {
            Kind::Sequence | Kind::SequenceWithMemory | Kind::Fallback => {
                // A Fallback is a Sequence with success and failure swapped.
                let memory = matches!(t.kind[i], Kind::SequenceWithMemory);
                let (pass, stop) =
                    if matches!(t.kind[i], Kind::Fallback) { (Failure, Success) } else { (Success, Failure) };
                if !self.s.nodes[i].status.is_active() {
                    self.s.nodes[i].n_skip = 0;
                }
                self.set_status(i, Running);
                while self.s.nodes[i].idx < len {
                    let c = self.child(i, self.s.nodes[i].idx);
                    let prev = self.s.nodes[c].status;
                    let s = self.exec(c);
                    if s == pass {
                        self.s.nodes[i].idx += 1;
                        // SequenceWithMemory (BT.CPP 4.4.1+): a child that finished in the tick
                        // it started returns the flow, so the sequence stays interruptible.
                        if memory && prev == Idle && self.s.nodes[i].idx < len {
                            return Running;
                        }
                    } else if s == stop {
                        if memory {
                            // SequenceWithMemory keeps its place: the next run resumes here.
                            for k in self.s.nodes[i].idx..len {
                                let c = self.child(i, k);
                                self.halt_child(c);
                            }
                        } else {
                            self.reset_children(i);
                            self.s.nodes[i].idx = 0;
                        }
                        return stop;
                    } else if s == Skipped {
                        self.s.nodes[i].idx += 1;
                        self.s.nodes[i].n_skip += 1;
                    } else if s == Running {
                        return Running;
                    } else {
                        return self.idle_child(i);
                    }
                }
                let all_skipped = self.s.nodes[i].n_skip == len;
                self.reset_children(i);
                self.s.nodes[i].idx = 0;
                if all_skipped { Skipped } else { pass }
            }
            Kind::ReactiveSequence | Kind::ReactiveFallback => {
                let seq = matches!(self.t.kind[i], Kind::ReactiveSequence);
                let (stop_on, pass_on) = if seq { (Failure, Success) } else { (Success, Failure) };
                let mut all_skipped = true;
                self.set_status(i, Running);
                for k in 0..len {
                    let c = self.child(i, k);
                    let s = self.exec(c);
                    all_skipped &= s == Skipped;
                    if s == Running {
                        for j in 0..len {
                            if j != k {
                                let other = self.child(i, j);
                                self.halt_child(other);
                            }
                        }
                        return Running;
                    } else if s == stop_on {
                        self.reset_children(i);
                        return stop_on;
                    } else if s == Skipped {
                        self.halt_child(c);
                    } else if s == Idle {
                        return self.idle_child(i);
                    }
                    debug_assert!(s == pass_on || s == Skipped);
                }
                self.reset_children(i);
                if all_skipped { Skipped } else { pass_on }
            }
            Kind::Parallel(ports) => {
                let (success, failure) = (&ports.0, &ports.1);
                let Some(succ) = self.read_num(i, success, "success_count") else { return Failure };
                let Some(fail) = self.read_num(i, failure, "failure_count") else { return Failure };
                let n = len as f64;
                let need_ok = if succ < 0.0 { (n + succ + 1.0).max(0.0) } else { succ };
                let need_fail = if fail < 0.0 { (n + fail + 1.0).max(0.0) } else { fail };
                if need_ok > n || need_fail > n {
                    self.error(
                        i,
                        &format!(
                            "Parallel thresholds ({need_ok} successes, {need_fail} failures) exceed its {len} children"
                        ),
                    );
                    return Failure;
                }
                self.set_status(i, Running);
                let mut skipped = 0u32;
                let first = self.t.first[i] as usize;
                for k in 0..len {
                    if !self.s.done[first + k as usize] {
                        let c = self.child(i, k);
                        match self.exec(c) {
                            Skipped => skipped += 1,
                            Success => {
                                self.s.done[first + k as usize] = true;
                                self.s.nodes[i].n_ok += 1;
                            }
                            Failure => {
                                self.s.done[first + k as usize] = true;
                                self.s.nodes[i].n_fail += 1;
                            }
                            _ => {}
                        }
                    }
                    let (ok, bad) = (f64::from(self.s.nodes[i].n_ok), f64::from(self.s.nodes[i].n_fail));
                    if ok >= need_ok || (succ < 0.0 && ok + f64::from(skipped) >= need_ok) {
                        self.reset_children(i);
                        self.reset_state(i);
                        return Success;
                    }
                    if n - bad < need_ok || bad == need_fail {
                        self.reset_children(i);
                        self.reset_state(i);
                        return Failure;
                    }
                }
                if skipped == len { Skipped } else { Running }
            }
            Kind::ParallelAll { max_failures } => {
                let mf = max_failures.clone();
                let Some(m) = self.read_num(i, &mf, "max_failures") else { return Failure };
                let threshold = if m < 0.0 { f64::from(len) + m + 1.0 } else { m };
                self.set_status(i, Running);
                let first = self.t.first[i] as usize;
                let mut skipped = 0u32;
                for k in 0..len {
                    if self.s.done[first + k as usize] {
                        continue;
                    }
                    let c = self.child(i, k);
                    match self.exec(c) {
                        Skipped => skipped += 1,
                        Success => self.s.done[first + k as usize] = true,
                        Failure => {
                            self.s.done[first + k as usize] = true;
                            self.s.nodes[i].n_fail += 1;
                        }
                        _ => {}
                    }
                }
                if skipped == len {
                    return Skipped;
                }
                let completed = self.s.done[first..first + len as usize].iter().filter(|d| **d).count() as u32;
                if skipped + completed >= len {
                    let failed = f64::from(self.s.nodes[i].n_fail) >= threshold;
                    self.reset_children(i);
                    self.reset_state(i);
                    return if failed { Failure } else { Success };
                }
                Running
            }
            Kind::IfThenElse => {
                self.set_status(i, Running);
                if self.s.nodes[i].idx == 0 {
                    let c = self.child(i, 0);
                    match self.exec(c) {
                        Running => return Running,
                        Success => self.s.nodes[i].idx = 1,
                        Failure if len == 3 => self.s.nodes[i].idx = 2,
                        Failure => {
                            self.reset_children(i);
                            return Failure;
                        }
                        other => return other,
                    }
                }
                let c = self.child(i, self.s.nodes[i].idx);
                let s = self.exec(c);
                if s == Running {
                    return Running;
                }
                self.reset_children(i);
                self.s.nodes[i].idx = 0;
                s
            }
            Kind::WhileDoElse => {
                self.set_status(i, Running);
                let cond = self.child(i, 0);
                let s = match self.exec(cond) {
                    Running => return Running,
                    Success => {
                        if len == 3 {
                            let e = self.child(i, 2);
                            self.halt_child(e);
                        }
                        let d = self.child(i, 1);
                        self.exec(d)
                    }
                    Failure if len == 3 => {
                        let d = self.child(i, 1);
                        self.halt_child(d);
                        let e = self.child(i, 2);
                        self.exec(e)
                    }
                    Failure => Failure,
                    other => other,
                };
                if s == Running {
                    return Running;
                }
                self.reset_children(i);
                s
            }
            Kind::Switch(ports) => {
                let (variable, cases) = (&ports.0, &ports.1);
                let var = self.read(variable);
                let mut matched = cases.len() as u32;
                if let Some(var) = var {
                    for (k, case) in cases.iter().enumerate() {
                        if let Some(cv) = self.read(case)
                            && !cv.to_text().is_empty()
                            && loosely_equal(&var, &cv)
                        {
                            matched = k as u32;
                            break;
                        }
                    }
                }
                // idx holds the running child + 1 (0: none). BT.CPP's Switch does not set
                // itself RUNNING before ticking the case: a SUCCESS child gives IDLE -> SUCCESS.
                let running = self.s.nodes[i].idx;
                if running != 0 && running - 1 != matched {
                    let old = self.child(i, running - 1);
                    self.halt_child(old);
                }
                let c = self.child(i, matched);
                let s = self.exec(c);
                match s {
                    Skipped => self.s.nodes[i].idx = 0,
                    Running => self.s.nodes[i].idx = matched + 1,
                    _ => {
                        self.reset_children(i);
                        self.s.nodes[i].idx = 0;
                    }
                }
                s
            }
            Kind::Inverter | Kind::ForceSuccess | Kind::ForceFailure | Kind::KeepRunningUntilFailure => {
                let kind = match self.t.kind[i] {
                    Kind::Inverter => 0,
                    Kind::ForceSuccess => 1,
                    Kind::ForceFailure => 2,
                    _ => 3,
                };
                self.set_status(i, Running);
                let c = self.child(i, 0);
                let s = self.exec(c);
                if !s.is_done() {
                    // BT.CPP's KeepRunningUntilFailure returns its own status (RUNNING) for a
                    // skipped child.
                    return if kind == 3 && s == Skipped { Running } else { s };
                }
                self.halt_child(c);
                match (kind, s) {
                    (0, Success) => Failure,
                    (0, _) => Success,
                    (1, _) => Success,
                    (2, _) => Failure,
                    (_, Success) => Running,
                    (_, _) => Failure,
                }
            }
            Kind::Repeat(n) | Kind::Retry(n) => {
                let repeat = matches!(self.t.kind[i], Kind::Repeat(_));
                let n = n.clone();
                let Some(limit) = self.read_num(i, &n, if repeat { "num_cycles" } else { "num_attempts" }) else {
                    return Failure;
                };
                let (again_on, stop_on) = if repeat { (Success, Failure) } else { (Failure, Success) };
                self.set_status(i, Running);
                let c = self.child(i, 0);
                loop {
                    if limit >= 0.0 && f64::from(self.s.nodes[i].idx) >= limit {
                        self.s.nodes[i].idx = 0;
                        return again_on;
                    }
                    let prev = self.s.nodes[c].status;
                    let s = self.exec(c);
                    if s == again_on {
                        self.s.nodes[i].idx += 1;
                        self.halt_child(c);
                        // BT.CPP 4.x: a cycle that finished in the tick it started returns the
                        // flow (RUNNING) when another cycle follows, so the tree stays
                        // interruptible; the next cycle starts at the next tick.
                        let more = limit < 0.0 || f64::from(self.s.nodes[i].idx) < limit;
                        if prev == Idle && more {
                            return Running;
                        }
                    } else if s == stop_on {
                        self.s.nodes[i].idx = 0;
                        self.halt_child(c);
                        return stop_on;
                    } else if s == Skipped {
                        // Skipped again next time: the child is reset, the count kept.
                        self.halt_child(c);
                        return Skipped;
                    } else {
                        return s;
                    }
                }
            }
            Kind::Timeout(ms) => {
                let ms = ms.clone();
                let Some(limit) = self.read_num(i, &ms, "msec") else { return Failure };
                if self.s.nodes[i].status != Running {
                    self.s.nodes[i].t0 = self.cx.now;
                }
                self.set_status(i, Running);
                let c = self.child(i, 0);
                if self.elapsed_ms(i, self.cx.now) >= limit && self.s.nodes[c].status == Running {
                    self.halt_child(c);
                    return Failure;
                }
                let s = self.exec(c);
                if s.is_done() {
                    self.halt_child(c);
                } else if s == Running && self.elapsed_ms(i, self.cx.now) >= limit {
                    self.halt_child(c);
                    return Failure;
                }
                s
            }
            Kind::Delay(ms) => {
                let ms = ms.clone();
                let Some(limit) = self.read_num(i, &ms, "delay_msec") else { return Failure };
                if self.s.nodes[i].status != Running {
                    self.s.nodes[i].t0 = self.cx.now;
                    self.s.nodes[i].flag = false;
                }
                self.set_status(i, Running);
                if !self.s.nodes[i].flag {
                    if self.elapsed_ms(i, self.cx.now) < limit {
                        return Running;
                    }
                    self.s.nodes[i].flag = true;
                }
                let c = self.child(i, 0);
                let s = self.exec(c);
                if s.is_done() {
                    self.halt_child(c);
                    self.s.nodes[i].flag = false;
                }
                s
            }
            Kind::RunOnce(skip) => {
                if self.s.nodes[i].flag {
                    let skip = self.read(skip).and_then(|v| v.as_bool()).unwrap_or(true);
                    return if skip { Skipped } else { self.s.nodes[i].once };
                }
                self.set_status(i, Running);
                let c = self.child(i, 0);
                let s = self.exec(c);
                if s.is_done() {
                    self.s.nodes[i].flag = true;
                    self.s.nodes[i].once = s;
                    self.halt_child(c);
                }
                s
            }
            Kind::Precondition { cond, otherwise } => {
                // BT.CPP 4.7+ (#904): the condition is checked only until the child has started;
                // the node does not set itself RUNNING before its child.
                if !self.s.nodes[i].flag {
                    match cond.eval_bool(&mut self.s.bb) {
                        Ok(true) => self.s.nodes[i].flag = true,
                        Ok(false) => {
                            return match self.read(otherwise).map(|v| v.to_text()).as_deref() {
                                Some("SUCCESS") => Success,
                                Some("SKIPPED") => Skipped,
                                Some("RUNNING") => Running,
                                _ => Failure,
                            };
                        }
                        Err(e) => {
                            self.error(i, &format!("precondition: {e}"));
                            return Failure;
                        }
                    }
                }
                let c = self.child(i, 0);
                let s = self.exec(c);
                if s.is_done() {
                    self.halt_child(c);
                    self.s.nodes[i].flag = false;
                }
                s
            }
            Kind::SubTree => {
                // BT.CPP's SubTreeNode sets RUNNING only from IDLE (a finished one, ticked again
                // without a reset, changes status after its child).
                if self.s.nodes[i].status == Idle {
                    self.set_status(i, Running);
                }
                let c = self.child(i, 0);
                let s = self.exec(c);
                if s.is_done() {
                    self.halt_child(c);
                }
                s
            }
            Kind::AlwaysSuccess => Success,
            Kind::AlwaysFailure => Failure,
            Kind::Script(script) => match script.eval(&mut self.s.bb) {
                Ok(_) => Success,
                Err(e) => {
                    self.error(i, &format!("script: {e}"));
                    Failure
                }
            },
            Kind::ScriptCondition(script) => match script.eval_bool(&mut self.s.bb) {
                Ok(true) => Success,
                Ok(false) => Failure,
                Err(e) => {
                    self.error(i, &format!("script: {e}"));
                    Failure
                }
            },
            Kind::SetBlackboard { value, key } => {
                let key = *key;
                match self.read(value) {
                    Some(v) => {
                        Env::set(&mut self.s.bb, key, v);
                        Success
                    }
                    None => {
                        self.error(i, "SetBlackboard: 'value' refers to a key that is not set");
                        Failure
                    }
                }
            }
            Kind::UnsetBlackboard(slot) => {
                let slot = *slot;
                self.s.bb.unset(slot);
                Success
            }
            Kind::Sleep(ms) => {
                let ms = ms.clone();
                let Some(limit) = self.read_num(i, &ms, "msec") else { return Failure };
                if self.s.nodes[i].status != Running {
                    if limit <= 0.0 {
                        return Success;
                    }
                    self.s.nodes[i].t0 = self.cx.now;
                    return Running;
                }
                if self.elapsed_ms(i, self.cx.now) >= limit { Success } else { Running }
            }
            Kind::Condition(s) => {
                let s = *s as usize;
                let params = if t.skills[s].dynamic.is_empty() {
                    None
                } else {
                    let Some(params) = self.skill_params(i, s) else { return Failure };
                    params
                };
                let leaf = &self.t.skills[s];
                let params = params.as_ref().unwrap_or(&leaf.params);
                let call = SkillCall { id: 0, node: self.t.path(i), skill: self.t.id(i), params };
                let answer = self.cx.robot.check(&call, self.cx.memory);
                if self.cx.trace {
                    self.cx.sink.check(self.cx.tick, self.cx.now, i as NodeIdx, params, &answer);
                }
                match answer {
                    SkillStatus::Success(_) => Success,
                    SkillStatus::Failure(_) => Failure,
                    SkillStatus::Running => {
                        let msg = format!("condition '{}' answered 'running'", self.t.id(i));
                        self.error(i, &msg);
                        Failure
                    }
                }
            }
            Kind::Action(s) => {
                let s = *s as usize;
                // BT.CPP's StatefulActionNode: a finished action ticked again without a reset
                // returns its result (it starts again only from IDLE).
                let prev = self.s.nodes[i].status;
                if prev.is_done() {
                    return prev;
                }
                let (id, fresh) = match self.s.nodes[i].call {
                    Some(id) if self.s.nodes[i].status == Running => (id, false),
                    _ => {
                        if !t.skills[s].dynamic.is_empty() {
                            let Some(params) = self.skill_params(i, s) else { return Failure };
                            self.s.call_params[s] = params;
                        }
                        let id = self.s.next_call;
                        self.s.next_call += 1;
                        self.s.stats.skill_calls += 1;
                        self.s.nodes[i].call = Some(id);
                        (id, true)
                    }
                };
                let leaf = &self.t.skills[s];
                let params = self.s.call_params[s].as_ref().unwrap_or(&leaf.params);
                let call = SkillCall { id, node: self.t.path(i), skill: self.t.id(i), params };
                let st = if fresh {
                    if self.cx.trace {
                        self.cx.sink.skill_started(self.cx.tick, self.cx.now, id, i as NodeIdx, params);
                    }
                    self.cx.robot.start(&call, self.cx.memory)
                } else {
                    self.cx.robot.poll(&call, self.cx.memory)
                };
                match st {
                    SkillStatus::Running => Running,
                    done => {
                        if self.cx.trace {
                            self.cx.sink.skill_finished(self.cx.tick, self.cx.now, id, i as NodeIdx, &done);
                        }
                        let ok = matches!(done, SkillStatus::Success(_));
                        if ok && !leaf.outputs.is_empty() {
                            let outs = self.cx.robot.outputs(&call);
                            for (port, slot) in &leaf.outputs {
                                if let Some(v) = outs.get(port) {
                                    self.s.bb.set(*slot, v.clone());
                                }
                            }
                            if self.cx.trace && !outs.is_empty() {
                                self.cx.sink.skill_outputs(self.cx.tick, self.cx.now, id, i as NodeIdx, &outs);
                            }
                        }
                        self.s.nodes[i].call = None;
                        if !t.skills[s].dynamic.is_empty() {
                            self.s.call_params[s] = None;
                        }
                        if ok { Success } else { Failure }
                    }
                }
            }
        }
    }

    /// Parameters of a skill leaf for a new call: `None` (use the static ones) when nothing
    /// comes from the blackboard. The outer `None` means a blackboard key was missing.
    #[allow(clippy::option_option, reason = "outer: could the call start; inner: does it need its own parameter set")]
    fn skill_params(&mut self, i: usize, s: usize) -> Option<Option<Params>> {
        let leaf = &self.t.skills[s];
        if leaf.dynamic.is_empty() {
            return Some(None);
        }
        let mut params = leaf.params.clone();
        let mut missing = None;
        for (name, slot, ty) in &leaf.dynamic {
            match Env::get(&self.s.bb, *slot) {
                Some(v) => {
                    let v = match v {
                        Value::Text(t) => parse_text(ty, t),
                        other => other.clone(),
                    };
                    params.insert(name.clone(), v);
                }
                None => {
                    missing =
                        Some(format!("port '{name}': blackboard key '{}' is not set", self.s.bb.slot_name(*slot)));
                    break;
                }
            }
        }
        if let Some(m) = missing {
            self.error(i, &m);
            return None;
        }
        Some(Some(params))
    }

    fn idle_child(&mut self, i: usize) -> NodeStatus {
        self.error(i, "a child returned IDLE");
        NodeStatus::Failure
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
