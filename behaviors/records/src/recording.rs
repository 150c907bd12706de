//! A run as one MCAP file (`run.mcap`): every channel a run produces, JSON-encoded with a JSON
//! schema per channel, so Foxglove Studio and the Python `mcap` package read it as is.
//!
//! | topic | message | when |
//! |---|---|---|
//! | `/arbor/run` | [`RunHeader`] | once, first |
//! | `/arbor/tree` | [`TreeMsg`]: the tree (YAML) and its node table | once |
//! | `/arbor/observations` | [`ObservationsMsg`] | every tick, before the tree ticks |
//! | `/arbor/entities` | [`EntitiesMsg`]: working memory's entities | every tick |
//! | `/arbor/memory/events` | [`MemoryEventMsg`] | as they happen |
//! | `/arbor/tree/transitions` | [`TickRecord`] (`event: transition`) | as they happen |
//! | `/arbor/skills` | [`TickRecord`] (skill calls, results, condition answers, errors) | as they happen |
//! | `/arbor/tree/halt` | [`HaltMsg`]: the tree was halted from outside (time limit, SIGINT); the halt's records follow | at most once |
//! | `/arbor/planner` | the planner's request/response record | once, when the tree was planned |
//! | `/arbor/outcome` | the run's summary | once, last |
//!
//! Log and publish times are sim time (ns), so the same seed writes the same bytes. The
//! writer closes a chunk at tick boundaries ([`RecordingWriter::end_tick`]) every so many
//! ticks and flushes it to disk: after `kill -9`, everything up to the last flushed chunk is
//! readable ([`Recording::open`] recovers a file without summary or footer).

use arbor_behaviors::record::{TickEvent, TickRecord};
use arbor_behaviors::{NodeInfo, NodeStatus};
use arbor_core::Observation;
use arbor_memory::{EntityState, Event};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Version of the message layout below; readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;

/// The channels of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    Run,
    Tree,
    Observations,
    Entities,
    MemoryEvents,
    Transitions,
    Skills,
    Halt,
    Planner,
    Outcome,
}

impl Topic {
    pub const ALL: [Topic; 10] = [
        Topic::Run,
        Topic::Tree,
        Topic::Observations,
        Topic::Entities,
        Topic::MemoryEvents,
        Topic::Transitions,
        Topic::Skills,
        Topic::Halt,
        Topic::Planner,
        Topic::Outcome,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topic::Run => "/arbor/run",
            Topic::Tree => "/arbor/tree",
            Topic::Observations => "/arbor/observations",
            Topic::Entities => "/arbor/entities",
            Topic::MemoryEvents => "/arbor/memory/events",
            Topic::Transitions => "/arbor/tree/transitions",
            Topic::Skills => "/arbor/skills",
            Topic::Halt => "/arbor/tree/halt",
            Topic::Planner => "/arbor/planner",
            Topic::Outcome => "/arbor/outcome",
        }
    }

    fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }

    fn schema_name(self) -> &'static str {
        match self {
            Topic::Run => "arbor.RunHeader",
            Topic::Tree => "arbor.Tree",
            Topic::Observations => "arbor.Observations",
            Topic::Entities => "arbor.Entities",
            Topic::MemoryEvents => "arbor.MemoryEvent",
            Topic::Transitions | Topic::Skills => "arbor.TickRecord",
            Topic::Halt => "arbor.Halt",
            Topic::Planner => "arbor.PlanRecord",
            Topic::Outcome => "arbor.Outcome",
        }
    }

    /// The JSON schema of the channel's messages (what Foxglove shows as the message layout).
    fn schema(self) -> serde_json::Value {
        use serde_json::json;
        let tick =
            json!({"type": "integer", "minimum": 0, "description": "tree tick number (0 before the first tick)"});
        let t_us = json!({"type": "integer", "minimum": 0, "description": "sim time, microseconds"});
        let obj = |required: &[&str], props: serde_json::Value| json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "required": required, "properties": props});
        match self {
            Topic::Run => obj(
                &["format", "scenario", "goal", "seed", "tick_hz"],
                json!({"format": {"type": "integer"}, "scenario": {"type": "string"}, "goal": {"type": "string"},
                       "seed": {"type": "integer"}, "tick_hz": {"type": "number"}, "tree_source": {"type": "string"},
                       "tree_author": {"type": "string"}, "scenario_yaml": {"type": "string"}}),
            ),
            Topic::Tree => obj(
                &["name", "yaml", "nodes"],
                json!({"name": {"type": "string"}, "yaml": {"type": "string"},
                       "nodes": {"type": "array", "items": {"type": "object", "properties": {
                           "path": {"type": "string"}, "id": {"type": "string"}, "category": {"type": "string"}}}}}),
            ),
            Topic::Observations => obj(
                &["tick", "t_us", "observations"],
                json!({"tick": tick, "t_us": t_us, "observations": {"type": "array", "items": {"type": "object"}}}),
            ),
            Topic::Entities => obj(
                &["tick", "t_us", "entities"],
                json!({"tick": tick, "t_us": t_us, "entities": {"type": "array", "items": {"type": "object"}}}),
            ),
            Topic::MemoryEvents => obj(
                &["tick", "t_us", "phase", "event"],
                json!({"tick": tick, "t_us": t_us, "phase": {"enum": ["perceive", "act"]}, "event": {"type": "object"}}),
            ),
            Topic::Transitions | Topic::Skills => obj(
                &["tick", "t_us", "event", "node"],
                json!({"tick": tick, "t_us": t_us,
                       "event": {"enum": ["transition", "skill_started", "skill_finished", "skill_halted", "check", "error"]},
                       "node": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
                       "skill": {"type": "string"}, "call": {"type": "integer"}, "params": {"type": "object"},
                       "success": {"type": "boolean"}, "detail": {"type": "string"}, "message": {"type": "string"}}),
            ),
            Topic::Halt => {
                obj(&["tick", "t_us", "reason"], json!({"tick": tick, "t_us": t_us, "reason": {"type": "string"}}))
            }
            Topic::Planner => obj(&["goal", "model", "plan_text"], json!({"goal": {"type": "string"}})),
            Topic::Outcome => {
                obj(&["outcome", "ticks"], json!({"outcome": {"type": "string"}, "ticks": {"type": "integer"}}))
            }
        }
    }
}

/// First message: what was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    pub format: u32,
    pub scenario: String,
    pub goal: String,
    pub seed: u64,
    pub tick_hz: f64,
    pub tree_source: String,
    pub tree_author: String,
    /// The scenario file's text as given.
    pub scenario_yaml: String,
    /// Working memory bounds of the run (replay rebuilds memory with the same ones).
    #[serde(default)]
    pub working_memory: arbor_memory::WorkingConfig,
    /// A robot run has no scenario file: the names its tree was checked against are here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<arbor_behaviors::Vocabulary>,
    /// The skill manifest the run's tree was checked against, when it is not the default
    /// (photographer) one: its file name and text (replay checks the tree against it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<RecordedManifest>,
}

/// A skill manifest as a run used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedManifest {
    pub source: String,
    pub yaml: String,
}

/// The tree as run, and the executor's node table (index = position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeMsg {
    pub name: String,
    pub yaml: String,
    pub nodes: Vec<NodeInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationsMsg {
    pub tick: u64,
    pub t_us: u64,
    pub observations: Vec<Observation>,
    /// True when no perception frame came this tick (a robot's camera is slower than its
    /// tick): working memory was not updated. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitiesMsg {
    pub tick: u64,
    pub t_us: u64,
    pub entities: Vec<EntityState>,
}

/// When in the tick loop an event entered memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// From perception, before the tree ticked (or before the first tick).
    Perceive,
    /// From the tree's skills and the world, after the tree ticked.
    Act,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEventMsg {
    pub tick: u64,
    pub t_us: u64,
    pub phase: Phase,
    pub event: Event,
}

/// The tree was halted from outside; the records of the halt follow on their channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HaltMsg {
    pub tick: u64,
    pub t_us: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

/// Writes a run's MCAP file. Errors are kept (the first) and returned by [`finish`], so a full
/// disk never panics the tick loop and is never silent.
///
/// [`finish`]: RecordingWriter::finish
pub struct RecordingWriter {
    path: PathBuf,
    w: Option<mcap::Writer<BufWriter<File>>>,
    channels: BTreeMap<Topic, u16>,
    seq: u32,
    flush_every: u64,
    ticks_since_flush: u64,
    error: Option<String>,
    buf: Vec<u8>,
    messages: u64,
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter").field("path", &self.path).field("messages", &self.messages).finish()
    }
}

impl RecordingWriter {
    /// Creates the file and its channels; a chunk goes to disk every `flush_every_ticks` ticks.
    pub fn create(path: &Path, flush_every_ticks: u64) -> Result<Self, RecordingError> {
        let io = |e: &dyn std::fmt::Display| RecordingError::Io { path: path.to_path_buf(), message: e.to_string() };
        let file = File::create(path).map_err(|e| io(&e))?;
        // No compression (readers need no codec), chunks closed only by `end_tick`, so every
        // chunk on disk ends at a tick boundary.
        let opts = mcap::WriteOptions::new()
            .compression(None)
            .chunk_size(None)
            .profile("")
            .library(concat!("arbor ", env!("CARGO_PKG_VERSION")));
        let mut w = opts.create(BufWriter::new(file)).map_err(|e| io(&e))?;
        let mut channels = BTreeMap::new();
        for topic in Topic::ALL {
            let schema = serde_json::to_vec(&topic.schema()).map_err(|e| io(&e))?;
            let sid = w.add_schema(topic.schema_name(), "jsonschema", &schema).map_err(|e| io(&e))?;
            let cid = w.add_channel(sid, topic.name(), "json", &BTreeMap::new()).map_err(|e| io(&e))?;
            channels.insert(topic, cid);
        }
        Ok(Self {
            path: path.to_path_buf(),
            w: Some(w),
            channels,
            seq: 0,
            flush_every: flush_every_ticks.max(1),
            ticks_since_flush: 0,
            error: None,
            buf: Vec::with_capacity(1024),
            messages: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Messages written so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Writes one message at sim time `t_us`.
    pub fn put<T: Serialize>(&mut self, topic: Topic, t_us: u64, msg: &T) {
        if self.error.is_some() {
            return;
        }
        let (Some(w), Some(&channel_id)) = (self.w.as_mut(), self.channels.get(&topic)) else { return };
        self.buf.clear();
        if let Err(e) = serde_json::to_writer(&mut self.buf, msg) {
            self.error = Some(format!("{}: cannot encode a message: {e}", topic.name()));
            return;
        }
        self.seq = self.seq.wrapping_add(1);
        let t_ns = t_us.saturating_mul(1000);
        let header =
            mcap::records::MessageHeader { channel_id, sequence: self.seq, log_time: t_ns, publish_time: t_ns };
        match w.write_to_known_channel(&header, &self.buf) {
            Ok(()) => self.messages += 1,
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Adds a ROS 2 channel as rosbag2's MCAP storage writes it: `ros2msg` schema (the message
    /// definition with its dependencies), `cdr` messages. arbor's readers skip such channels;
    /// ROS tools (and `mcap-ros2-support`) decode them.
    pub fn add_ros2_channel(&mut self, topic: &str, type_name: &str, definition: &str) -> Result<u16, RecordingError> {
        let io = |e: &dyn std::fmt::Display| RecordingError::Io { path: self.path.clone(), message: e.to_string() };
        let Some(w) = self.w.as_mut() else { return Err(io(&"the recording is finished")) };
        let sid = w.add_schema(type_name, "ros2msg", definition.as_bytes()).map_err(|e| io(&e))?;
        let cid = w.add_channel(sid, topic, "cdr", &BTreeMap::new()).map_err(|e| io(&e))?;
        Ok(cid)
    }

    /// Writes one already-encoded message (CDR, as it came off the wire) on a channel of
    /// [`RecordingWriter::add_ros2_channel`], at run time `t_us`.
    pub fn put_raw(&mut self, channel_id: u16, t_us: u64, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let Some(w) = self.w.as_mut() else { return };
        self.seq = self.seq.wrapping_add(1);
        let t_ns = t_us.saturating_mul(1000);
        let header =
            mcap::records::MessageHeader { channel_id, sequence: self.seq, log_time: t_ns, publish_time: t_ns };
        match w.write_to_known_channel(&header, data) {
            Ok(()) => self.messages += 1,
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Marks the end of a tick: every `flush_every_ticks` ticks the open chunk is closed and
    /// flushed to the file.
    pub fn end_tick(&mut self) {
        self.ticks_since_flush += 1;
        if self.ticks_since_flush >= self.flush_every {
            self.ticks_since_flush = 0;
            self.flush();
        }
    }

    /// Closes the open chunk and flushes it to the file.
    pub fn flush(&mut self) {
        if self.error.is_some() {
            return;
        }
        if let Some(w) = self.w.as_mut()
            && let Err(e) = w.flush()
        {
            self.error = Some(e.to_string());
        }
    }

    /// Writes the summary and footer; returns the first error met while recording.
    pub fn finish(mut self) -> Result<u64, RecordingError> {
        let path = self.path.clone();
        let err = |message: String| RecordingError::Io { path: path.clone(), message };
        if let Some(e) = self.error.take() {
            return Err(err(e));
        }
        if let Some(mut w) = self.w.take() {
            w.finish().map_err(|e| err(e.to_string()))?;
            use std::io::Write;
            w.into_inner().flush().map_err(|e| err(e.to_string()))?;
        }
        Ok(self.messages)
    }
}

/// Engine records go to `/arbor/tree/transitions` (status changes) or `/arbor/skills` (the rest).
impl arbor_behaviors::record::RecordOut for RecordingWriter {
    fn put(&mut self, record: TickRecord) {
        let topic =
            if matches!(record.event, TickEvent::Transition { .. }) { Topic::Transitions } else { Topic::Skills };
        RecordingWriter::put(self, topic, record.t_us, &record);
    }
}

/// One message as read back: its channel, sim time and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    pub topic: Topic,
    pub t_ns: u64,
    pub data: Vec<u8>,
}

/// Everything a tick of the recording holds, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickFrame {
    pub tick: u64,
    pub t_us: u64,
    pub observations: Vec<Observation>,
    /// No perception frame this tick: memory was not updated with `observations`.
    pub stale: bool,
    /// Events that entered memory from perception before the tree ticked.
    pub perceived: Vec<Event>,
    /// Events that entered memory after the tree ticked.
    pub acted: Vec<Event>,
    /// The engine's records of this tick: transitions, skill events, condition answers, errors.
    pub records: Vec<TickRecord>,
}

/// A recording read back into memory.
#[derive(Debug, Clone)]
pub struct Recording {
    pub path: PathBuf,
    pub header: RunHeader,
    pub tree: TreeMsg,
    /// Events before the first tick (the goal).
    pub initial_events: Vec<Event>,
    /// Working memory's entities when the run started (empty for a simulator run).
    pub initial_entities: Vec<EntityState>,
    /// Ticks 1..=n in order.
    pub frames: Vec<TickFrame>,
    /// Why the tree was halted from outside after its last tick, if it was.
    pub halt: Option<HaltMsg>,
    /// The records of that halt.
    pub closing_records: Vec<TickRecord>,
    pub planner: Option<serde_json::Value>,
    pub outcome: Option<serde_json::Value>,
    /// Messages per topic.
    pub counts: BTreeMap<&'static str, u64>,
    /// Why the file ended early (no footer: the writer was killed), when it did.
    pub truncated: Option<String>,
}

impl Recording {
    /// Reads every message of a recording, in file order. A file cut short (the writer was
    /// killed) yields what its complete records hold, and says so in the second value.
    pub fn read_raw(path: &Path) -> Result<(Vec<RawMessage>, Option<String>), RecordingError> {
        let bytes =
            std::fs::read(path).map_err(|e| RecordingError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        let fmt = |message: String| RecordingError::Format { path: path.to_path_buf(), message };
        if !bytes.starts_with(mcap::MAGIC) {
            return Err(fmt("not an MCAP file (no magic bytes at the start)".into()));
        }
        // Chunk CRCs are checked: a damaged chunk is an error, never replayed as if it were data.
        let opts = mcap::read::Options::IgnoreEndMagic | mcap::read::Options::ValidateChunkCrcs;
        let stream = mcap::MessageStream::new_with_options(&bytes, opts).map_err(|e| fmt(e.to_string()))?;
        let mut out = Vec::new();
        let mut truncated = None;
        for m in stream {
            match m {
                Ok(m) => {
                    let Some(topic) = Topic::from_name(&m.channel.topic) else { continue };
                    out.push(RawMessage { topic, t_ns: m.log_time, data: m.data.into_owned() });
                }
                Err(e @ mcap::McapError::BadChunkCrc { .. }) => {
                    return Err(fmt(format!("damaged: a chunk after message {} fails its CRC check ({e})", out.len())));
                }
                // A complete file (its footer is there) that cannot be read on is damaged, not cut
                // short: a chunk that does not decompress, a record that does not parse.
                Err(e) if mcap::read::footer(&bytes).is_ok() => {
                    return Err(fmt(format!("damaged: the record after message {} cannot be read ({e})", out.len())));
                }
                Err(e) => {
                    truncated = Some(format!("file ends early after {} messages ({e})", out.len()));
                    break;
                }
            }
        }
        if truncated.is_none() && mcap::read::footer(&bytes).is_err() {
            truncated = Some(format!("no footer: the writer stopped after {} messages", out.len()));
        }
        Ok((out, truncated))
    }

    /// Reads and decodes a recording into ticks.
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let (raw, truncated) = Self::read_raw(path)?;
        let fmt = |message: String| RecordingError::Format { path: path.to_path_buf(), message };
        fn decode<T: DeserializeOwned>(m: &RawMessage, i: usize) -> Result<T, String> {
            serde_json::from_slice(&m.data).map_err(|e| format!("message {i} on {}: {e}", m.topic.name()))
        }
        let mut header: Option<RunHeader> = None;
        let mut tree: Option<TreeMsg> = None;
        let mut initial_events = Vec::new();
        let mut initial_entities = Vec::new();
        let mut frames: Vec<TickFrame> = Vec::new();
        let mut closing_records = Vec::new();
        let mut halt: Option<HaltMsg> = None;
        let mut planner = None;
        let mut outcome = None;
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (i, m) in raw.iter().enumerate() {
            *counts.entry(m.topic.name()).or_default() += 1;
            match m.topic {
                Topic::Run => {
                    let h: RunHeader = decode(m, i).map_err(fmt)?;
                    if h.format != FORMAT_VERSION {
                        return Err(fmt(format!(
                            "recording format {} (this arbor reads format {FORMAT_VERSION})",
                            h.format
                        )));
                    }
                    header = Some(h);
                }
                Topic::Tree => tree = Some(decode(m, i).map_err(fmt)?),
                Topic::Observations => {
                    let o: ObservationsMsg = decode(m, i).map_err(fmt)?;
                    let expected = frames.len() as u64 + 1;
                    if o.tick != expected {
                        return Err(fmt(format!(
                            "message {i}: observations of tick {} where tick {expected} was due",
                            o.tick
                        )));
                    }
                    frames.push(TickFrame {
                        tick: o.tick,
                        t_us: o.t_us,
                        observations: o.observations,
                        stale: o.stale,
                        ..TickFrame::default()
                    });
                }
                Topic::MemoryEvents => {
                    let e: MemoryEventMsg = decode(m, i).map_err(fmt)?;
                    match (e.tick, frames.last_mut()) {
                        (0, _) | (_, None) => initial_events.push(e.event),
                        (t, Some(f)) if t == f.tick => match e.phase {
                            Phase::Perceive => f.perceived.push(e.event),
                            Phase::Act => f.acted.push(e.event),
                        },
                        (t, Some(f)) => {
                            return Err(fmt(format!("message {i}: memory event of tick {t} inside tick {}", f.tick)));
                        }
                    }
                }
                Topic::Transitions | Topic::Skills => {
                    let r: TickRecord = decode(m, i).map_err(fmt)?;
                    match frames.last_mut() {
                        _ if halt.is_some() => closing_records.push(r),
                        Some(f) if f.tick == r.tick => f.records.push(r),
                        _ => return Err(fmt(format!("message {i}: a record of tick {} outside its tick", r.tick))),
                    }
                }
                Topic::Halt => halt = Some(decode(m, i).map_err(fmt)?),
                Topic::Planner => planner = Some(decode(m, i).map_err(fmt)?),
                Topic::Outcome => outcome = Some(decode(m, i).map_err(fmt)?),
                // Working memory as the run found it (a robot remembers across goals).
                Topic::Entities if frames.is_empty() => {
                    let e: EntitiesMsg = decode(m, i).map_err(fmt)?;
                    initial_entities = e.entities;
                }
                Topic::Entities => {}
            }
        }
        let header = header.ok_or_else(|| fmt("no /arbor/run message: not an arbor recording".into()))?;
        let tree = tree.ok_or_else(|| fmt("no /arbor/tree message: the recording has no tree".into()))?;
        Ok(Self {
            path: path.to_path_buf(),
            header,
            tree,
            initial_events,
            initial_entities,
            frames,
            halt,
            closing_records,
            planner,
            outcome,
            counts,
            truncated,
        })
    }

    /// Transitions of the recording, for counting.
    pub fn transitions(&self) -> impl Iterator<Item = &TickRecord> {
        self.frames.iter().flat_map(|f| f.records.iter()).filter(|r| matches!(r.event, TickEvent::Transition { .. }))
    }

    /// The tree's final status as recorded (root's last transition), if any.
    pub fn root_status(&self) -> Option<NodeStatus> {
        let root = self.tree.nodes.first()?.path.as_str();
        self.frames.iter().rev().flat_map(|f| f.records.iter().rev()).find_map(|r| match &r.event {
            TickEvent::Transition { node, to, .. } if node == root => Some(*to),
            _ => None,
        })
    }
}
