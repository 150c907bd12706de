//! What the engine reports while it ticks: status transitions, skill calls, errors. The engine
//! reports node indices (no allocation per tick); sinks that write text resolve them to paths
//! with the executor's node table.

use crate::engine::{NodeIdx, NodeInfo, NodeStatus};
use crate::robot::{CallId, SkillStatus};
use crate::value::Params;
use arbor_core::SimTime;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Receives the engine's events. Implementations must not block the tick.
pub trait TickSink {
    /// Whether this sink wants transitions and skill events at all (asked once per tick).
    /// A sink that answers `false` costs the engine nothing; errors are always reported.
    fn enabled(&self) -> bool {
        true
    }
    fn transition(&mut self, tick: u64, t: SimTime, node: NodeIdx, from: NodeStatus, to: NodeStatus);
    fn skill_started(&mut self, _tick: u64, _t: SimTime, _call: CallId, _node: NodeIdx, _params: &Params) {}
    fn skill_finished(&mut self, _tick: u64, _t: SimTime, _call: CallId, _node: NodeIdx, _status: &SkillStatus) {}
    /// A finished call's output port values (after `skill_finished`, only when it left some).
    fn skill_outputs(&mut self, _tick: u64, _t: SimTime, _call: CallId, _node: NodeIdx, _outputs: &Params) {}
    fn skill_halted(&mut self, _tick: u64, _t: SimTime, _call: CallId, _node: NodeIdx) {}
    /// A condition was answered (by the robot or from memory) within the tick.
    fn check(&mut self, _tick: u64, _t: SimTime, _node: NodeIdx, _params: &Params, _answer: &SkillStatus) {}
    /// A runtime problem at a node (a script error, a missing blackboard key): the node fails.
    fn error(&mut self, _tick: u64, _t: SimTime, _node: NodeIdx, _message: &str) {}
}

/// One engine event, stamped with the tick number and sim time, with node paths resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickRecord {
    pub tick: u64,
    pub t_us: u64,
    #[serde(flatten)]
    pub event: TickEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TickEvent {
    /// A node's status changed.
    Transition { node: String, from: NodeStatus, to: NodeStatus },
    /// A skill call began.
    SkillStarted { call: CallId, node: String, skill: String, params: Params },
    /// A skill call ended by itself.
    SkillFinished { call: CallId, node: String, skill: String, success: bool, detail: String },
    /// What a finished call left for its output ports.
    SkillOutputs { call: CallId, node: String, skill: String, outputs: Params },
    /// A running skill call was cancelled because the tree stopped ticking it.
    SkillHalted { call: CallId, node: String, skill: String },
    /// A condition was answered.
    Check { node: String, skill: String, params: Params, success: bool, detail: String },
    /// A runtime error at a node.
    Error { node: String, message: String },
}

/// Turns engine callbacks into [`TickRecord`]s using the executor's node table.
#[derive(Debug, Clone)]
pub struct Resolver {
    nodes: Vec<NodeInfo>,
}

impl Resolver {
    pub fn new(nodes: &[NodeInfo]) -> Self {
        Self { nodes: nodes.to_vec() }
    }

    fn path(&self, n: NodeIdx) -> String {
        self.nodes.get(n as usize).map(|i| i.path.clone()).unwrap_or_else(|| format!("#{n}"))
    }

    fn skill(&self, n: NodeIdx) -> String {
        self.nodes.get(n as usize).map(|i| i.id.clone()).unwrap_or_default()
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }
}

/// Something that takes resolved records: a file, a vector, a channel.
pub trait RecordOut {
    fn put(&mut self, record: TickRecord);
}

/// A [`TickSink`] that resolves events and hands them to a [`RecordOut`].
#[derive(Debug)]
pub struct Recorder<O: RecordOut> {
    resolver: Resolver,
    pub out: O,
}

impl<O: RecordOut> Recorder<O> {
    pub fn new(nodes: &[NodeInfo], out: O) -> Self {
        Self { resolver: Resolver::new(nodes), out }
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }
}

impl<O: RecordOut> TickSink for Recorder<O> {
    fn transition(&mut self, tick: u64, t: SimTime, node: NodeIdx, from: NodeStatus, to: NodeStatus) {
        let event = TickEvent::Transition { node: self.resolver.path(node), from, to };
        self.out.put(TickRecord { tick, t_us: t.micros(), event });
    }
    fn skill_started(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx, params: &Params) {
        let event = TickEvent::SkillStarted {
            call,
            node: self.resolver.path(node),
            skill: self.resolver.skill(node),
            params: params.clone(),
        };
        self.out.put(TickRecord { tick, t_us: t.micros(), event });
    }
    fn skill_finished(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx, status: &SkillStatus) {
        let (success, detail) = verdict(status);
        let event = TickEvent::SkillFinished {
            call,
            node: self.resolver.path(node),
            skill: self.resolver.skill(node),
            success,
            detail,
        };
        self.out.put(TickRecord { tick, t_us: t.micros(), event });
    }
    fn skill_outputs(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx, outputs: &Params) {
        let event = TickEvent::SkillOutputs {
            call,
            node: self.resolver.path(node),
            skill: self.resolver.skill(node),
            outputs: outputs.clone(),
        };
        self.out.put(TickRecord { tick, t_us: t.micros(), event });
    }
    fn skill_halted(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx) {
        let event = TickEvent::SkillHalted { call, node: self.resolver.path(node), skill: self.resolver.skill(node) };
        self.out.put(TickRecord { tick, t_us: t.micros(), event });
    }
    fn check(&mut self, tick: u64, t: SimTime, node: NodeIdx, params: &Params, answer: &SkillStatus) {
        let (success, detail) = verdict(answer);
        let event = TickEvent::Check {
            node: self.resolver.path(node),
            skill: self.resolver.skill(node),
            params: params.clone(),
            success,
            detail,
        };
        self.out.put(TickRecord { tick, t_us: t.micros(), event });
    }
    fn error(&mut self, tick: u64, t: SimTime, node: NodeIdx, message: &str) {
        let event = TickEvent::Error { node: self.resolver.path(node), message: message.to_string() };
        self.out.put(TickRecord { tick, t_us: t.micros(), event });
    }
}

/// (success, detail) of a finished call or an answered condition.
pub fn verdict(status: &SkillStatus) -> (bool, String) {
    match status {
        SkillStatus::Success(d) => (true, d.clone()),
        SkillStatus::Failure(d) => (false, d.clone()),
        SkillStatus::Running => (false, String::new()),
    }
}

impl RecordOut for Vec<TickRecord> {
    fn put(&mut self, record: TickRecord) {
        self.push(record);
    }
}

/// Keeps records in memory (tests, replay comparison).
pub type VecSink = Recorder<Vec<TickRecord>>;

impl VecSink {
    pub fn collect(nodes: &[NodeInfo]) -> Self {
        Recorder::new(nodes, Vec::new())
    }

    pub fn records(&self) -> &[TickRecord] {
        &self.out
    }
}

/// Discards events (benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl TickSink for NullSink {
    fn enabled(&self) -> bool {
        false
    }
    fn transition(&mut self, _tick: u64, _t: SimTime, _node: NodeIdx, _from: NodeStatus, _to: NodeStatus) {}
}

/// Writes one JSON object per line. A write error is kept (the first one) and reported by
/// [`JsonlSink::finish`], so a full disk never panics the tick loop and is never silent.
pub struct JsonlSink<W: Write> {
    out: W,
    error: Option<std::io::Error>,
    count: u64,
}

impl<W: Write> std::fmt::Debug for JsonlSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink").field("count", &self.count).field("error", &self.error).finish()
    }
}

impl<W: Write> JsonlSink<W> {
    pub fn new(out: W) -> Self {
        Self { out, error: None, count: 0 }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes any value as one line.
    pub fn write_line<T: Serialize>(&mut self, value: &T) {
        if self.error.is_some() {
            return;
        }
        let res = serde_json::to_writer(&mut self.out, value)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match res {
            Ok(()) => self.count += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// Flushes and returns the writer, or the first error met.
    pub fn finish(mut self) -> std::io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> RecordOut for JsonlSink<W> {
    fn put(&mut self, record: TickRecord) {
        self.write_line(&record);
    }
}
