//! The executor: runs a checked tree on bonsai-bt.
//!
//! bonsai-bt ticks the composite nodes; arbor adds what it lacks:
//! - leaves carry a node index (bonsai's `ActionArgs` has no node id), so each leaf has its
//!   own runtime state: the skill call in flight, its last status;
//! - async skills: a leaf starts its call on the first tick and polls it on later ones;
//! - halting (bonsai issue #40: a preempted action is simply not called again): after each
//!   tick, every leaf whose call is still running but that was not ticked this tick is halted,
//!   last leaf first, and the robot gets the cancel call;
//! - status transitions and skill calls go to a [`TickSink`].

use crate::record::{TickEvent, TickSink};
use crate::robot::{CallId, Robot, SkillCall, SkillStatus};
use crate::skill::{SkillKind, SkillRegistry};
use crate::tree::{CheckedTree, Node, NodeType};
use crate::value::Params;
use arbor_memory::WorkingMemory;
use arbor_perception::SimTime;
use bonsai_bt::{BT, Behavior, Event, Status, UpdateArgs};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The status of a node as arbor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Idle,
    Running,
    Success,
    Failure,
}

impl NodeStatus {
    pub fn is_done(self) -> bool {
        matches!(self, NodeStatus::Success | NodeStatus::Failure)
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeStatus::Idle => "idle",
            NodeStatus::Running => "running",
            NodeStatus::Success => "success",
            NodeStatus::Failure => "failure",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeafType {
    AlwaysSuccess,
    AlwaysFailure,
    Action,
    Condition,
}

#[derive(Debug, Clone)]
struct Leaf {
    path: String,
    ty: LeafType,
    skill: String,
    params: Params,
    call: Option<CallId>,
    status: NodeStatus,
    last_ticked: u64,
}

/// Per-run counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStats {
    pub ticks: u64,
    pub skill_calls: u64,
    pub halts: u64,
}

/// A tree ready to tick.
pub struct Executor {
    bt: BT<u32, ()>,
    leaves: Vec<Leaf>,
    root_path: String,
    root_status: NodeStatus,
    next_call: CallId,
    stats: ExecStats,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor").field("leaves", &self.leaves.len()).field("status", &self.root_status).finish()
    }
}

impl Executor {
    /// Builds the executor for a checked tree. `registry` must be the one it was checked
    /// against (it tells actions from conditions).
    pub fn new(tree: &CheckedTree, registry: &SkillRegistry) -> Self {
        let mut leaves = Vec::new();
        let root = tree.tree();
        let path = root.root_path();
        let behavior = compile(&root.root, &path, registry, &mut leaves);
        Self {
            bt: BT::new(behavior, ()),
            leaves,
            root_path: path,
            root_status: NodeStatus::Idle,
            next_call: 1,
            stats: ExecStats::default(),
        }
    }

    pub fn status(&self) -> NodeStatus {
        self.root_status
    }

    pub fn stats(&self) -> ExecStats {
        self.stats
    }

    /// Number of leaves (skills, conditions, constants) in the compiled tree.
    pub fn leaf_count(&self) -> usize {
        self.leaves.len()
    }

    /// Ticks the tree once. `now` stamps the records; `dt` (seconds of sim time since the
    /// last tick) drives time-based nodes such as `timeout`.
    pub fn tick(
        &mut self,
        now: SimTime,
        dt: f64,
        robot: &mut dyn Robot,
        memory: &WorkingMemory,
        sink: &mut dyn TickSink,
    ) -> NodeStatus {
        if self.root_status.is_done() {
            return self.root_status;
        }
        self.stats.ticks += 1;
        let tick = self.stats.ticks;
        let event: Event = UpdateArgs { dt }.into();
        let leaves = &mut self.leaves;
        let next_call = &mut self.next_call;
        let stats = &mut self.stats;
        let result = self.bt.tick(&event, &mut |args, _bb| {
            let Some(leaf) = leaves.get_mut(*args.action as usize) else {
                return (Status::Failure, args.dt);
            };
            let status = tick_leaf(leaf, tick, now, next_call, stats, robot, memory, sink);
            match status {
                NodeStatus::Running => (Status::Running, 0.0),
                NodeStatus::Success => (Status::Success, args.dt),
                _ => (Status::Failure, args.dt),
            }
        });
        let status = match result {
            Some((Status::Running, _)) => NodeStatus::Running,
            Some((Status::Success, _)) => NodeStatus::Success,
            Some((Status::Failure, _)) | None => NodeStatus::Failure,
        };
        let finished = status.is_done();
        // Halt every call the tree stopped ticking (or all of them once the tree is done).
        for leaf in self.leaves.iter_mut().rev() {
            if leaf.call.is_some() && (leaf.last_ticked != tick || finished) {
                halt_leaf(leaf, tick, now, robot, sink);
                self.stats.halts += 1;
            }
        }
        if status != self.root_status {
            sink.record(
                tick,
                now,
                TickEvent::Transition { node: self.root_path.clone(), from: self.root_status, to: status },
            );
            self.root_status = status;
        }
        status
    }

    /// Halts everything running (the tree is stopped from outside, e.g. SIGINT or a new goal).
    pub fn halt(&mut self, now: SimTime, robot: &mut dyn Robot, sink: &mut dyn TickSink) {
        let tick = self.stats.ticks;
        for leaf in self.leaves.iter_mut().rev() {
            if leaf.call.is_some() {
                halt_leaf(leaf, tick, now, robot, sink);
                self.stats.halts += 1;
            }
        }
        if self.root_status == NodeStatus::Running {
            sink.record(
                tick,
                now,
                TickEvent::Transition { node: self.root_path.clone(), from: NodeStatus::Running, to: NodeStatus::Idle },
            );
            self.root_status = NodeStatus::Idle;
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one leaf tick needs the whole tick context; a struct would only rename it"
)]
fn tick_leaf(
    leaf: &mut Leaf,
    tick: u64,
    now: SimTime,
    next_call: &mut CallId,
    stats: &mut ExecStats,
    robot: &mut dyn Robot,
    memory: &WorkingMemory,
    sink: &mut dyn TickSink,
) -> NodeStatus {
    leaf.last_ticked = tick;
    let outcome = match leaf.ty {
        LeafType::AlwaysSuccess => SkillStatus::Success(String::new()),
        LeafType::AlwaysFailure => SkillStatus::Failure(String::new()),
        LeafType::Condition => {
            let call = SkillCall { id: 0, node: &leaf.path, skill: &leaf.skill, params: &leaf.params };
            match robot.check(&call, memory) {
                SkillStatus::Running => SkillStatus::Failure(format!("condition '{}' answered 'running'", leaf.skill)),
                s => s,
            }
        }
        LeafType::Action => {
            let (id, fresh) = match leaf.call {
                Some(id) => (id, false),
                None => {
                    let id = *next_call;
                    *next_call += 1;
                    stats.skill_calls += 1;
                    leaf.call = Some(id);
                    sink.record(
                        tick,
                        now,
                        TickEvent::SkillStarted {
                            call: id,
                            node: leaf.path.clone(),
                            skill: leaf.skill.clone(),
                            params: leaf.params.clone(),
                        },
                    );
                    (id, true)
                }
            };
            let call = SkillCall { id, node: &leaf.path, skill: &leaf.skill, params: &leaf.params };
            let s = if fresh { robot.start(&call, memory) } else { robot.poll(&call, memory) };
            if !s.is_running() {
                leaf.call = None;
                let (success, detail) = match &s {
                    SkillStatus::Success(d) => (true, d.clone()),
                    SkillStatus::Failure(d) => (false, d.clone()),
                    SkillStatus::Running => (false, String::new()),
                };
                sink.record(
                    tick,
                    now,
                    TickEvent::SkillFinished {
                        call: id,
                        node: leaf.path.clone(),
                        skill: leaf.skill.clone(),
                        success,
                        detail,
                    },
                );
            }
            s
        }
    };
    let status = match outcome {
        SkillStatus::Running => NodeStatus::Running,
        SkillStatus::Success(_) => NodeStatus::Success,
        SkillStatus::Failure(_) => NodeStatus::Failure,
    };
    if status != leaf.status {
        sink.record(tick, now, TickEvent::Transition { node: leaf.path.clone(), from: leaf.status, to: status });
        leaf.status = status;
    }
    status
}

fn halt_leaf(leaf: &mut Leaf, tick: u64, now: SimTime, robot: &mut dyn Robot, sink: &mut dyn TickSink) {
    let Some(id) = leaf.call.take() else { return };
    robot.halt(&SkillCall { id, node: &leaf.path, skill: &leaf.skill, params: &leaf.params });
    sink.record(tick, now, TickEvent::SkillHalted { call: id, node: leaf.path.clone(), skill: leaf.skill.clone() });
    sink.record(tick, now, TickEvent::Transition { node: leaf.path.clone(), from: leaf.status, to: NodeStatus::Idle });
    leaf.status = NodeStatus::Idle;
}

fn compile(node: &Node, path: &str, registry: &SkillRegistry, leaves: &mut Vec<Leaf>) -> Behavior<u32> {
    let children = |leaves: &mut Vec<Leaf>| -> Vec<Behavior<u32>> {
        node.children
            .iter()
            .enumerate()
            .map(|(i, c)| compile(c, &crate::tree::child_path(path, i, c), registry, leaves))
            .collect()
    };
    let only_child = |leaves: &mut Vec<Leaf>| -> Box<Behavior<u32>> {
        Box::new(children(leaves).into_iter().next().unwrap_or(Behavior::WaitForever))
    };
    let mut leaf = |ty: LeafType, skill: &str| {
        let idx = leaves.len() as u32;
        leaves.push(Leaf {
            path: path.to_string(),
            ty,
            skill: skill.to_string(),
            params: node.params.clone(),
            call: None,
            status: NodeStatus::Idle,
            last_ticked: 0,
        });
        Behavior::Action(idx)
    };
    match &node.ty {
        NodeType::Sequence => Behavior::Sequence(children(leaves)),
        NodeType::Fallback => Behavior::Select(children(leaves)),
        NodeType::ReactiveSequence => Behavior::Sequence(children(leaves)).memory(false),
        NodeType::ReactiveFallback => Behavior::Select(children(leaves)).memory(false),
        NodeType::Inverter => Behavior::Invert(only_child(leaves)),
        NodeType::ForceSuccess => Behavior::AlwaysSucceed(only_child(leaves)),
        NodeType::ForceFailure => Behavior::Invert(Box::new(Behavior::AlwaysSucceed(only_child(leaves)))),
        NodeType::Retry => {
            // Each attempt is a fresh copy of the child under a Fallback: the next copy runs only
            // after the previous one failed. Leaves are shared, their state resets on completion.
            let n = node.params.get("num_attempts").and_then(|v| v.as_f64()).unwrap_or(1.0).max(1.0) as usize;
            let child = only_child(leaves);
            Behavior::Select(vec![*child; n])
        }
        NodeType::Timeout => {
            let secs = node.params.get("seconds").and_then(|v| v.as_f64()).unwrap_or(0.0);
            Behavior::Timeout(secs, only_child(leaves))
        }
        NodeType::AlwaysSuccess => leaf(LeafType::AlwaysSuccess, "always_success"),
        NodeType::AlwaysFailure => leaf(LeafType::AlwaysFailure, "always_failure"),
        NodeType::Skill(name) => match registry.get(name).map(|s| s.kind) {
            Some(SkillKind::Condition) => leaf(LeafType::Condition, name),
            // A checked tree only names registered skills.
            _ => leaf(LeafType::Action, name),
        },
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
