//! The run's records as the tree ticks: engine records to `ticks.jsonl` and the recording, skill
//! calls kept for memory, counts and metrics.

use arbor_behaviors::metrics::Metrics;
use arbor_behaviors::record::{JsonlSink, RecordOut, Recorder, TickRecord, TickSink};
use arbor_behaviors::robot::SkillStatus;
use arbor_behaviors::{CallId, NodeIdx, NodeStatus, Params, Robot, SkillCall};
use arbor_core::SimTime;
use arbor_memory::WorkingMemory;
use arbor_memory::{Event, EventKind};
use arbor_records::recording::RecordingWriter;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;

/// Each engine record goes to `ticks.jsonl` and to the recording, and, when asked for, is kept
/// until the next tick (a backend's status message says what the tick did).
pub(crate) struct Tee {
    pub jsonl: JsonlSink<BufWriter<File>>,
    pub mcap: RecordingWriter,
    pub last_tick: Option<Vec<TickRecord>>,
}

impl RecordOut for Tee {
    fn put(&mut self, record: TickRecord) {
        self.jsonl.put(record.clone());
        if let Some(l) = self.last_tick.as_mut() {
            l.push(record.clone());
        }
        RecordOut::put(&mut self.mcap, record);
    }
}

/// A skill call that finished this tick: what memory makes of it once the tick is over.
pub(crate) struct Finished {
    pub t: SimTime,
    pub skill: String,
    pub params: Params,
    pub status: SkillStatus,
}

/// Forwards tick events to the records and keeps what memory and the counts need.
pub(crate) struct RunSink {
    pub rec: Recorder<Tee>,
    pub calls: BTreeMap<String, u64>,
    /// `skill started` / `skill finished` events of this tick, in order.
    pub memory_events: Vec<Event>,
    /// Skill calls that finished this tick (for the events they leave: photos, arrivals, speech).
    pub finished: Vec<Finished>,
    pub metrics: Option<Arc<Metrics>>,
    /// Start time, skill and parameters of calls in flight.
    pub started: BTreeMap<CallId, (SimTime, String, Params)>,
}

impl RunSink {
    pub fn new(rec: Recorder<Tee>, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            rec,
            calls: BTreeMap::new(),
            memory_events: Vec::new(),
            finished: Vec::new(),
            metrics,
            started: BTreeMap::new(),
        }
    }

    fn ended(&mut self, t: SimTime, call: CallId, result: &str) -> Option<(String, Params)> {
        let (t0, skill, params) = self.started.remove(&call)?;
        if let Some(m) = &self.metrics {
            m.skill_duration.with_label_values(&[skill.as_str(), result]).observe(t.saturating_sub(t0).as_secs_f64());
        }
        Some((skill, params))
    }

    fn skill(&self, node: NodeIdx) -> String {
        self.rec.resolver().nodes().get(node as usize).map(|n| n.id.clone()).unwrap_or_default()
    }
}

impl TickSink for RunSink {
    fn transition(&mut self, tick: u64, t: SimTime, node: NodeIdx, from: NodeStatus, to: NodeStatus) {
        self.rec.transition(tick, t, node, from, to);
    }
    fn skill_started(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx, params: &Params) {
        let skill = self.skill(node);
        *self.calls.entry(skill.clone()).or_default() += 1;
        if let Some(m) = &self.metrics {
            m.skill_calls.with_label_values(&[skill.as_str()]).inc();
        }
        self.started.insert(call, (t, skill.clone(), params.clone()));
        self.memory_events.push(Event::new(t, EventKind::SkillStarted, skill));
        self.rec.skill_started(tick, t, call, node, params);
    }
    fn skill_finished(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx, status: &SkillStatus) {
        let (verdict, detail) = match status {
            SkillStatus::Success(d) => ("succeeded", d.as_str()),
            SkillStatus::Failure(d) => ("failed", d.as_str()),
            SkillStatus::Running => ("running", ""),
        };
        let text = format!("{} {verdict}: {detail}", self.skill(node));
        self.memory_events.push(Event::new(t, EventKind::SkillFinished, text));
        if let Some((skill, params)) = self.ended(t, call, verdict) {
            self.finished.push(Finished { t, skill, params, status: status.clone() });
        }
        self.rec.skill_finished(tick, t, call, node, status);
    }
    fn skill_outputs(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx, outputs: &Params) {
        self.rec.skill_outputs(tick, t, call, node, outputs);
    }
    fn skill_halted(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx) {
        self.ended(t, call, "halted");
        self.rec.skill_halted(tick, t, call, node);
    }
    fn check(&mut self, tick: u64, t: SimTime, node: NodeIdx, params: &Params, answer: &SkillStatus) {
        self.rec.check(tick, t, node, params, answer);
    }
    fn error(&mut self, tick: u64, t: SimTime, node: NodeIdx, message: &str) {
        if let Some(m) = &self.metrics {
            m.errors.with_label_values(&["node_runtime"]).inc();
        }
        self.rec.error(tick, t, node, message);
    }
}

/// The robot as the tree sees it through the runtime: the backend's skills, with `photographed`
/// answered from the photos this robot took.
pub(crate) struct Acting<'a, B: crate::Backend> {
    pub backend: &'a mut B,
    pub photographed: &'a mut BTreeSet<String>,
}

impl<B: crate::Backend> Acting<'_, B> {
    fn note(&mut self, call: &SkillCall<'_>, status: &SkillStatus) {
        if call.skill == "capture_photo"
            && matches!(status, SkillStatus::Success(_))
            && let Some(who) = call.text("entity").filter(|w| !w.is_empty())
        {
            self.photographed.insert(who.to_string());
        }
    }
}

impl<B: crate::Backend> Robot for Acting<'_, B> {
    fn start(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        let s = self.backend.start(call, memory);
        self.note(call, &s);
        s
    }
    fn poll(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        let s = self.backend.poll(call, memory);
        self.note(call, &s);
        s
    }
    fn halt(&mut self, call: &SkillCall<'_>) {
        self.backend.halt(call);
    }
    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        if call.skill == "photographed" {
            let name = call.text("entity").unwrap_or_default();
            return if self.photographed.contains(name) {
                SkillStatus::Success(format!("{name} photographed"))
            } else {
                SkillStatus::Failure(format!("{name} not photographed yet"))
            };
        }
        self.backend.check(call, memory)
    }
    fn outputs(&mut self, call: &SkillCall<'_>) -> arbor_behaviors::Params {
        self.backend.outputs(call)
    }
}
