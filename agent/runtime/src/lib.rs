//! arbor-runtime: the one loop that both backends drive.
//!
//! ```text
//! backend (simulator world | ROS 2 node)          runtime (this crate)
//!   observations, attention  ── perceive ──▶  working memory update, entity events with places,
//!                                             descriptions, attention  ─▶ events.jsonl, SQLite,
//!                                             run.mcap (observations, entities, memory events)
//!   its skills (a Robot)     ◀── tick ─────   the executor ticks the tree; skill calls, results
//!                                             and what they leave (photos, arrivals, speech)
//!                                             ─▶ ticks.jsonl, run.mcap, memory
//!   criteria, distance       ── finish ────▶  outcome.json, plan.json, dataset.jsonl, metrics
//! ```
//!
//! A backend supplies only what differs: its skills ([`Backend`], a [`arbor_behaviors::Robot`]
//! that can also say where things are), its observations ([`Perception`]), its clock (the `now`
//! of every call) and its vocabulary ([`RunSpec::vocabulary`]). Everything that is recorded,
//! remembered or counted is made here, once, so a robot run and a simulator run leave the same
//! run directory: `arbor replay`, `arbor btlog`, `arbor report`, `arbor dataset build` and the
//! fleet read both.

mod agent;
mod records;
pub mod skills;
mod spec;
pub mod summary;

pub use agent::{Agent, IDLE_EVENTS_MAX};
pub use spec::{Finished, RosChannel, RunEnd, RunSpec, Stop};
pub use summary::{CriterionResult, Outcome, PerceptionReport, Photo, RunSummary};

use arbor_behaviors::{BuildError, Robot, TreeError};
use arbor_core::{EntityId, Observation, Point2, Pose2, SimTime};
use arbor_memory::{Event, MemoryError};
use std::path::{Path, PathBuf};

/// Characters of user prompt the planner (and the dataset) allow.
pub const PLAN_PROMPT_BUDGET: usize = 1600;

/// A robot as the runtime drives it: its skills, plus where it is and what a point is called.
pub trait Backend: Robot {
    /// The name of the place that holds `p` (a room on the simulator's map, the nearest
    /// configured place on a robot), for the `place` of events.
    fn place_at(&self, p: Point2) -> Option<String>;
    /// The robot's pose, if known.
    fn robot_pose(&self) -> Option<Pose2>;
}

/// Something that describes entities that just came into view (a vision-language model behind
/// a worker); what has arrived comes back as `Described` events.
pub trait Describe {
    fn describe(&mut self, now: SimTime, appeared: &[EntityId]) -> Vec<Event>;
}

/// What a backend perceived in one tick.
#[derive(Debug, Clone, Default)]
pub struct Perception {
    /// The frame's observations; `None` when no frame came this tick (memory is not updated).
    pub observations: Option<Vec<Observation>>,
    /// Attention changes: (entity, started).
    pub attention: Vec<(EntityId, bool)>,
}

impl Perception {
    /// Observations and attention changes of one frame of the camera pipeline.
    pub fn of_frame(out: &arbor_perception::pipeline::FrameOutput) -> Self {
        Self { observations: Some(out.observations()), attention: out.attention_changes.clone() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Recording(#[from] arbor_records::recording::RecordingError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a run is already in progress")]
    Busy,
    #[error("no run is in progress")]
    NotRunning,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io { path: path.to_path_buf(), source }
}
