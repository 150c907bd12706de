//! What the engine reports while it ticks: status transitions and skill calls. The run
//! recorder writes them as JSON lines (MCAP comes with the recording issue).

use crate::engine::NodeStatus;
use crate::robot::CallId;
use crate::value::Params;
use arbor_perception::SimTime;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// One thing the engine did, stamped with the tick number and sim time.
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
    /// A running skill call was cancelled because the tree stopped ticking it.
    SkillHalted { call: CallId, node: String, skill: String },
}

/// Receives the engine's events. Implementations must not block the tick.
pub trait TickSink {
    fn record(&mut self, tick: u64, t: SimTime, event: TickEvent);
}

/// Keeps events in memory (tests, replay comparison).
#[derive(Debug, Default, Clone)]
pub struct VecSink(pub Vec<TickRecord>);

impl TickSink for VecSink {
    fn record(&mut self, tick: u64, t: SimTime, event: TickEvent) {
        self.0.push(TickRecord { tick, t_us: t.micros(), event });
    }
}

/// Discards events (benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl TickSink for NullSink {
    fn record(&mut self, _tick: u64, _t: SimTime, _event: TickEvent) {}
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

impl<W: Write> TickSink for JsonlSink<W> {
    fn record(&mut self, tick: u64, t: SimTime, event: TickEvent) {
        self.write_line(&TickRecord { tick, t_us: t.micros(), event });
    }
}
