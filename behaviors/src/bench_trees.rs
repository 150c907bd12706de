//! The benchmark shapes of `shared/baselines.md`, shared by the criterion benches and the
//! allocation test: (a) a root Sequence over 10 Sequences of 100 synchronous actions,
//! (b) a ReactiveSequence of a condition and an action that stays RUNNING.

use crate::NodeLibrary;
use crate::robot::{Robot, SkillCall, SkillStatus};
use crate::skill::{SkillRegistry, SkillSpec};
use crate::tree::{Node, Tree};
use arbor_memory::WorkingMemory as WorkingMemoryRef;

/// A robot whose `noop` action succeeds at once, `busy` action stays running, `step` action
/// runs for one tick and `ready` condition holds: no allocation per call.
#[derive(Debug, Default, Clone, Copy)]
pub struct BenchRobot;

impl Robot for BenchRobot {
    fn start(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemoryRef) -> SkillStatus {
        match call.skill {
            "busy" | "step" => SkillStatus::Running,
            _ => SkillStatus::Success(String::new()),
        }
    }
    fn poll(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemoryRef) -> SkillStatus {
        if call.skill == "busy" { SkillStatus::Running } else { SkillStatus::Success(String::new()) }
    }
    fn halt(&mut self, _call: &SkillCall<'_>) {}
    fn check(&mut self, _call: &SkillCall<'_>, _memory: &WorkingMemoryRef) -> SkillStatus {
        SkillStatus::Success(String::new())
    }
}

/// The node library for the bench trees: built-ins plus `noop`, `busy`, `ready`.
pub fn library() -> NodeLibrary {
    let mut r = SkillRegistry::new();
    r.register(SkillSpec::action("noop", "succeeds at once", vec![]));
    r.register(SkillSpec::action("busy", "stays running", vec![]));
    r.register(SkillSpec::action("step", "runs for one tick", vec![]));
    r.register(SkillSpec::condition("ready", "always true", vec![]));
    NodeLibrary::with_skills(&r)
}

/// Tree (a): Sequence of `groups` Sequences of `per_group` `noop` actions.
pub fn tree_a(groups: usize, per_group: usize) -> Tree {
    let groups = (0..groups)
        .map(|_| Node::new("Sequence").with_children((0..per_group).map(|_| Node::new("noop")).collect()))
        .collect();
    Tree::single("bench_a", None, Node::new("Sequence").with_children(groups))
}

/// Tree (a) ticked again and again: Repeat(`cycles`) over Sequence[(a), `step`], so each tick
/// visits (a)'s 1011 nodes once and the run lasts `cycles` ticks (replay benchmarks).
pub fn tree_a_repeated(cycles: u32) -> Tree {
    let body = tree_a(10, 100).trees.remove(0).root;
    let root = Node::new("Repeat")
        .with_attr("num_cycles", &cycles.to_string())
        .with_children(vec![Node::new("Sequence").with_children(vec![body, Node::new("step")])]);
    Tree::single("bench_a_repeated", None, root)
}

/// Tree (b): ReactiveSequence [ready, busy].
pub fn tree_b() -> Tree {
    Tree::single(
        "bench_b",
        None,
        Node::new("ReactiveSequence").with_children(vec![Node::new("ready"), Node::new("busy")]),
    )
}
