//! Offline replay of a recording: the recorded tree (or another one) is re-executed with the
//! recorded world standing in for the robot. Working memory is rebuilt from the recorded
//! observations and events, memory-backed conditions are re-evaluated on it, skill calls and
//! robot conditions are answered from the recorded results. Every engine event of every tick
//! is compared with the recording; the first difference is reported with its tick, node path,
//! and what was expected and got.
//!
//! With another tree, replay goes on as far as the recording can answer: it stops at the first
//! skill call or robot condition the recording has no answer for, and says why.

use crate::recording::Recording;
use arbor_behaviors::record::{TickEvent, TickRecord, TickSink};
use arbor_behaviors::robot::{CallId, Robot, SkillCall, SkillStatus};
use arbor_behaviors::value::Params;
use arbor_behaviors::{CheckedTree, Executor, NodeIdx, NodeInfo, NodeStatus, conditions};
use arbor_core::SimTime;
use arbor_memory::WorkingMemory;
use serde::Serialize;
use std::collections::HashMap;

/// One engine event in comparable form (node by index in the replayed tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Transition { node: NodeIdx, from: NodeStatus, to: NodeStatus },
    Started { node: NodeIdx },
    Finished { node: NodeIdx, success: bool },
    Halted { node: NodeIdx },
    Outputs { node: NodeIdx },
    Check { node: NodeIdx, success: bool },
    Error { node: NodeIdx },
}

/// Marks a recorded node path the replayed tree does not have.
const NO_NODE: NodeIdx = NodeIdx::MAX;

impl Ev {
    fn from_record(r: &TickRecord, index: &HashMap<&str, NodeIdx>) -> Ev {
        let idx = |path: &str| index.get(path).copied().unwrap_or(NO_NODE);
        match &r.event {
            TickEvent::Transition { node, from, to } => Ev::Transition { node: idx(node), from: *from, to: *to },
            TickEvent::SkillStarted { node, .. } => Ev::Started { node: idx(node) },
            TickEvent::SkillFinished { node, success, .. } => Ev::Finished { node: idx(node), success: *success },
            TickEvent::SkillHalted { node, .. } => Ev::Halted { node: idx(node) },
            TickEvent::SkillOutputs { node, .. } => Ev::Outputs { node: idx(node) },
            TickEvent::Check { node, success, .. } => Ev::Check { node: idx(node), success: *success },
            TickEvent::Error { node, .. } => Ev::Error { node: idx(node) },
        }
    }

    fn node(self) -> NodeIdx {
        match self {
            Ev::Transition { node, .. }
            | Ev::Started { node }
            | Ev::Finished { node, .. }
            | Ev::Halted { node }
            | Ev::Outputs { node }
            | Ev::Check { node, .. }
            | Ev::Error { node } => node,
        }
    }

    fn describe(self, nodes: &[NodeInfo], recorded: Option<&TickRecord>) -> String {
        let path = |n: NodeIdx| match recorded {
            Some(r) if n == NO_NODE => record_node(r).to_string(),
            _ => nodes.get(n as usize).map(|i| i.path.clone()).unwrap_or_else(|| format!("#{n}")),
        };
        let ok = |s: bool| if s { "success" } else { "failure" };
        match self {
            Ev::Transition { node, from, to } => format!("{} {from} -> {to}", path(node)),
            Ev::Started { node } => format!("{} starts its skill", path(node)),
            Ev::Finished { node, success } => format!("{} skill finishes with {}", path(node), ok(success)),
            Ev::Halted { node } => format!("{} skill halted", path(node)),
            Ev::Outputs { node } => format!("{} skill leaves its outputs", path(node)),
            Ev::Check { node, success } => format!("{} condition answers {}", path(node), ok(success)),
            Ev::Error { node } => format!("{} reports an error", path(node)),
        }
    }
}

fn record_node(r: &TickRecord) -> &str {
    match &r.event {
        TickEvent::Transition { node, .. }
        | TickEvent::SkillStarted { node, .. }
        | TickEvent::SkillFinished { node, .. }
        | TickEvent::SkillHalted { node, .. }
        | TickEvent::SkillOutputs { node, .. }
        | TickEvent::Check { node, .. }
        | TickEvent::Error { node, .. } => node,
    }
}

/// The first place where the replayed tree did something else than the recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    pub tick: u64,
    pub t_us: u64,
    /// Path of the node concerned (the recorded one when the replayed tree did nothing).
    pub node: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tick {} (t = {:.3} s), node '{}': expected {}, got {}",
            self.tick,
            self.t_us as f64 / 1e6,
            self.node,
            self.expected,
            self.got
        )
    }
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The replayed tree is the recorded one (same node table).
    pub same_tree: bool,
    pub ticks_recorded: u64,
    pub ticks_replayed: u64,
    /// Engine events compared with the recording.
    pub events_compared: u64,
    /// Node visits the engine made while replaying (for throughput figures).
    pub node_visits: u64,
    pub divergence: Option<Divergence>,
    /// Why replay stopped before the end of the recording, if it did.
    pub stopped: Option<String>,
    /// Why the recording itself ends early (no footer), if it does.
    pub truncated: Option<String>,
    pub recorded_status: Option<NodeStatus>,
    pub replayed_status: NodeStatus,
}

impl ReplayReport {
    /// Identical: no divergence and nothing left unanswered.
    pub fn identical(&self) -> bool {
        self.divergence.is_none() && self.stopped.is_none()
    }
}

/// A recorded skill call and how it ended.
#[derive(Debug)]
struct RecCall {
    node: String,
    skill: String,
    params: Params,
    start_tick: u64,
    end: End,
    /// What the call left for its output ports.
    outputs: Params,
}

#[derive(Debug)]
enum End {
    Finished { tick: u64, status: SkillStatus },
    Halted { tick: u64 },
    Open,
}

/// The recorded world, answering as a robot.
struct ReplayRobot {
    calls: Vec<RecCall>,
    /// Recorded calls by start tick, with a cursor past the ones already claimed.
    by_start: HashMap<u64, (Vec<usize>, usize)>,
    claimed: Vec<bool>,
    live: HashMap<CallId, usize>,
    checks: HashMap<u64, Vec<(String, Params, SkillStatus)>>,
    tick: u64,
    stop: Option<String>,
}

fn status_of(success: bool, detail: &str) -> SkillStatus {
    if success { SkillStatus::Success(detail.to_string()) } else { SkillStatus::Failure(detail.to_string()) }
}

impl ReplayRobot {
    fn new(rec: &Recording) -> Self {
        let mut calls: Vec<RecCall> = Vec::new();
        let mut by_call: HashMap<CallId, usize> = HashMap::new();
        let mut checks: HashMap<u64, Vec<(String, Params, SkillStatus)>> = HashMap::new();
        let all = rec.frames.iter().flat_map(|f| f.records.iter()).chain(rec.closing_records.iter());
        for r in all {
            match &r.event {
                TickEvent::SkillStarted { call, node, skill, params } => {
                    by_call.insert(*call, calls.len());
                    calls.push(RecCall {
                        node: node.clone(),
                        skill: skill.clone(),
                        params: params.clone(),
                        start_tick: r.tick,
                        end: End::Open,
                        outputs: Params::new(),
                    });
                }
                TickEvent::SkillFinished { call, success, detail, .. } => {
                    if let Some(&i) = by_call.get(call) {
                        calls[i].end = End::Finished { tick: r.tick, status: status_of(*success, detail) };
                    }
                }
                TickEvent::SkillHalted { call, .. } => {
                    if let Some(&i) = by_call.get(call) {
                        calls[i].end = End::Halted { tick: r.tick };
                    }
                }
                TickEvent::SkillOutputs { call, outputs, .. } => {
                    if let Some(&i) = by_call.get(call) {
                        calls[i].outputs = outputs.clone();
                    }
                }
                TickEvent::Check { skill, params, success, detail, .. } => {
                    checks.entry(r.tick).or_default().push((
                        skill.clone(),
                        params.clone(),
                        status_of(*success, detail),
                    ));
                }
                TickEvent::Transition { .. } | TickEvent::Error { .. } => {}
            }
        }
        let mut by_start: HashMap<u64, (Vec<usize>, usize)> = HashMap::new();
        for (i, c) in calls.iter().enumerate() {
            by_start.entry(c.start_tick).or_default().0.push(i);
        }
        let claimed = vec![false; calls.len()];
        Self { calls, by_start, claimed, live: HashMap::new(), checks, tick: 0, stop: None }
    }

    fn unanswerable(&mut self, why: String) -> SkillStatus {
        if self.stop.is_none() {
            self.stop = Some(why.clone());
        }
        SkillStatus::Failure(format!("replay: {why}"))
    }

    fn answer(&mut self, i: usize) -> SkillStatus {
        let c = &self.calls[i];
        match &c.end {
            End::Finished { tick, status } if *tick == self.tick => status.clone(),
            End::Finished { tick, .. } if *tick > self.tick => SkillStatus::Running,
            End::Finished { tick, .. } => {
                let why = format!(
                    "tick {}: {} ({}) is still running here, but it finished at tick {tick} in the recording",
                    self.tick, c.skill, c.node
                );
                self.unanswerable(why)
            }
            End::Halted { tick } if self.tick < *tick => SkillStatus::Running,
            End::Halted { tick } => {
                let why = format!(
                    "tick {}: {} ({}) is still running here, but the recording halted it at tick {tick} and never saw how it would end",
                    self.tick, c.skill, c.node
                );
                self.unanswerable(why)
            }
            End::Open => SkillStatus::Running,
        }
    }
}

fn params_text(p: &Params) -> String {
    serde_json::to_string(p).unwrap_or_default()
}

impl Robot for ReplayRobot {
    fn start(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemory) -> SkillStatus {
        let tick = self.tick;
        let (candidates, cursor) = match self.by_start.get_mut(&tick) {
            Some((c, cur)) => (c.as_slice(), cur),
            None => (&[][..], &mut 0),
        };
        // Fast path (the recorded tree): calls start in the recorded order.
        while *cursor < candidates.len() && self.claimed[candidates[*cursor]] {
            *cursor += 1;
        }
        let same = |c: &RecCall, strict_node: bool| {
            c.skill == call.skill && c.params == *call.params && (!strict_node || c.node == call.node)
        };
        let next = candidates.get(*cursor).copied().filter(|&i| same(&self.calls[i], true));
        let found = next.or_else(|| {
            let free = |&&i: &&usize| !self.claimed[i];
            let find = |strict| candidates.iter().filter(free).copied().find(|&i| same(&self.calls[i], strict));
            find(true).or_else(|| find(false))
        });
        let Some(i) = found else {
            let recorded: Vec<String> = candidates
                .iter()
                .filter(|&&i| !self.claimed[i])
                .map(|&i| {
                    format!("{}{} ({})", self.calls[i].skill, params_text(&self.calls[i].params), self.calls[i].node)
                })
                .collect();
            let why = format!(
                "tick {tick}: the tree calls {}{} ({}) but the recording has no such call at this tick{}",
                call.skill,
                params_text(call.params),
                call.node,
                if recorded.is_empty() { String::new() } else { format!(" (recorded: {})", recorded.join(", ")) }
            );
            return self.unanswerable(why);
        };
        self.claimed[i] = true;
        self.live.insert(call.id, i);
        self.answer(i)
    }

    fn poll(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemory) -> SkillStatus {
        match self.live.get(&call.id) {
            Some(&i) => self.answer(i),
            None => self.unanswerable(format!("tick {}: call {} was never started in replay", self.tick, call.id)),
        }
    }

    fn halt(&mut self, call: &SkillCall<'_>) {
        self.live.remove(&call.id);
    }

    fn outputs(&mut self, call: &SkillCall<'_>) -> Params {
        self.live.get(&call.id).map(|&i| self.calls[i].outputs.clone()).unwrap_or_default()
    }

    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        if conditions::is_memory_condition(call.skill) {
            return conditions::evaluate(call, memory);
        }
        let found = self
            .checks
            .get(&self.tick)
            .and_then(|v| v.iter().find(|(s, p, _)| s == call.skill && p == call.params).map(|(_, _, a)| a.clone()));
        match found {
            Some(answer) => answer,
            None => {
                let why = format!(
                    "tick {}: the tree asks {}{} ({}), which the recording did not answer at this tick",
                    self.tick,
                    call.skill,
                    params_text(call.params),
                    call.node
                );
                self.unanswerable(why)
            }
        }
    }
}

/// A first mismatch: tick, time, index of the expected event (none: nothing more was
/// expected), the event got (none: the tree did nothing more).
type Mismatch = (u64, SimTime, Option<usize>, Option<Ev>);

/// Compares the engine's events of one tick with the recorded ones, without allocating.
struct CompareSink<'a> {
    expected: &'a [Ev],
    records: &'a [TickRecord],
    cursor: usize,
    compared: u64,
    /// First mismatch: (tick, t, expected index or none, got event or none).
    first: Option<Mismatch>,
}

impl CompareSink<'_> {
    fn got(&mut self, tick: u64, t: SimTime, ev: Ev) {
        self.compared += 1;
        let want = self.expected.get(self.cursor).copied();
        if self.first.is_none() && want != Some(ev) {
            self.first = Some((tick, t, want.map(|_| self.cursor), Some(ev)));
        }
        self.cursor += 1;
    }

    fn end(&mut self, tick: u64, t: SimTime) {
        if self.first.is_none() && self.cursor < self.expected.len() {
            self.first = Some((tick, t, Some(self.cursor), None));
        }
    }
}

impl TickSink for CompareSink<'_> {
    fn transition(&mut self, tick: u64, t: SimTime, node: NodeIdx, from: NodeStatus, to: NodeStatus) {
        self.got(tick, t, Ev::Transition { node, from, to });
    }
    fn skill_started(&mut self, tick: u64, t: SimTime, _call: CallId, node: NodeIdx, _params: &Params) {
        self.got(tick, t, Ev::Started { node });
    }
    fn skill_finished(&mut self, tick: u64, t: SimTime, _call: CallId, node: NodeIdx, status: &SkillStatus) {
        self.got(tick, t, Ev::Finished { node, success: matches!(status, SkillStatus::Success(_)) });
    }
    fn skill_halted(&mut self, tick: u64, t: SimTime, _call: CallId, node: NodeIdx) {
        self.got(tick, t, Ev::Halted { node });
    }
    fn skill_outputs(&mut self, tick: u64, t: SimTime, _call: CallId, node: NodeIdx, _outputs: &Params) {
        self.got(tick, t, Ev::Outputs { node });
    }
    fn check(&mut self, tick: u64, t: SimTime, node: NodeIdx, _params: &Params, answer: &SkillStatus) {
        self.got(tick, t, Ev::Check { node, success: matches!(answer, SkillStatus::Success(_)) });
    }
    fn error(&mut self, tick: u64, t: SimTime, node: NodeIdx, _message: &str) {
        self.got(tick, t, Ev::Error { node });
    }
}

/// Replays `rec` with `tree` (the recorded tree, or another one checked against the same
/// skills). Never panics on recorded data: what cannot be answered stops the replay.
pub fn replay(rec: &Recording, tree: &CheckedTree, source: &str) -> Result<ReplayReport, arbor_behaviors::BuildError> {
    let mut executor = Executor::with_source(tree, source)?;
    let nodes = executor.nodes();
    let same_tree = nodes.len() == rec.tree.nodes.len()
        && nodes.iter().zip(&rec.tree.nodes).all(|(a, b)| a.path == b.path && a.id == b.id);
    let index: HashMap<&str, NodeIdx> =
        nodes.iter().enumerate().map(|(i, n)| (n.path.as_str(), i as NodeIdx)).collect();
    let expected: Vec<Vec<Ev>> =
        rec.frames.iter().map(|f| f.records.iter().map(|r| Ev::from_record(r, &index)).collect()).collect();
    let closing: Vec<Ev> = rec.closing_records.iter().map(|r| Ev::from_record(r, &index)).collect();

    let mut robot = ReplayRobot::new(rec);
    let mut memory = WorkingMemory::with_config(&rec.header.working_memory);
    memory.restore_entities(rec.initial_entities.iter().cloned());
    memory.set_goal(rec.header.goal.clone());
    for ev in &rec.initial_events {
        memory.push_event(ev.clone());
    }
    let mut report = ReplayReport {
        same_tree,
        ticks_recorded: rec.frames.len() as u64,
        ticks_replayed: 0,
        events_compared: 0,
        node_visits: 0,
        divergence: None,
        stopped: None,
        truncated: rec.truncated.clone(),
        recorded_status: rec.root_status(),
        replayed_status: NodeStatus::Idle,
    };
    let mut first: Option<(Mismatch, &[TickRecord])> = None;
    let mut status = NodeStatus::Idle;
    for (k, frame) in rec.frames.iter().enumerate() {
        if status.is_done() {
            report.stopped = Some(format!(
                "the tree finished with {status} at tick {}, but the recording goes on to tick {}",
                report.ticks_replayed,
                rec.frames.len()
            ));
            break;
        }
        let now = SimTime(frame.t_us);
        if !frame.stale {
            memory.update(now, &frame.observations);
        }
        for ev in &frame.perceived {
            memory.push_event(ev.clone());
        }
        robot.tick = frame.tick;
        let mut sink =
            CompareSink { expected: &expected[k], records: &frame.records, cursor: 0, compared: 0, first: None };
        status = executor.tick(now, &mut robot, &memory, &mut sink);
        sink.end(frame.tick, now);
        report.events_compared += sink.compared;
        report.ticks_replayed += 1;
        if first.is_none()
            && let Some(m) = sink.first
        {
            first = Some((m, sink.records));
        }
        for ev in &frame.acted {
            memory.push_event(ev.clone());
        }
        if let Some(why) = robot.stop.take() {
            report.stopped = Some(why);
            break;
        }
    }
    if report.stopped.is_none() && rec.halt.is_some() && !status.is_done() {
        let last = rec.frames.last().map(|f| (f.tick, SimTime(f.t_us))).unwrap_or_default();
        let mut sink =
            CompareSink { expected: &closing, records: &rec.closing_records, cursor: 0, compared: 0, first: None };
        executor.halt(last.1, &mut robot, &memory, &mut sink);
        sink.end(last.0, last.1);
        report.events_compared += sink.compared;
        if first.is_none()
            && let Some(m) = sink.first
        {
            first = Some((m, sink.records));
        }
        status = executor.status();
    } else if report.stopped.is_none() && !status.is_done() && rec.truncated.is_none() && rec.halt.is_none() {
        report.stopped =
            Some(format!("the recording ends at tick {} while the tree is still running", rec.frames.len()));
    }
    report.replayed_status = if status == NodeStatus::Idle { executor.status() } else { status };
    report.node_visits = executor.stats().node_ticks;
    if let Some(((tick, t, want, got), records)) = first {
        let want_ev = want.and_then(|i| records.get(i).map(|r| (Ev::from_record(r, &index), r)));
        let node = match (want_ev, got) {
            (Some((_, r)), _) => record_node(r).to_string(),
            (None, Some(g)) => nodes.get(g.node() as usize).map(|n| n.path.clone()).unwrap_or_default(),
            (None, None) => String::new(),
        };
        report.divergence = Some(Divergence {
            tick,
            t_us: t.micros(),
            node,
            expected: want_ev
                .map(|(e, r)| e.describe(&nodes, Some(r)))
                .unwrap_or_else(|| "nothing more in this tick".into()),
            got: got.map(|g| g.describe(&nodes, None)).unwrap_or_else(|| "nothing more in this tick".into()),
        });
    }
    Ok(report)
}
