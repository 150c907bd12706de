//! What a run is given and what it gives back.

use crate::summary::{CriterionResult, PerceptionReport, Photo, RunSummary};
use arbor_behaviors::metrics::StageLatencies;
use arbor_behaviors::{Tree, Vocabulary};
use arbor_planner::{PlanContext, PlanRecord};
use std::path::PathBuf;

/// What to run: one goal, one tree, one run directory.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub dir: PathBuf,
    /// The scenario's name (simulator) or `ros2:<node>` (robot).
    pub scenario: String,
    /// The scenario file's text (simulator): `scenario.yaml` and the recording's header.
    pub scenario_text: Option<String>,
    /// Names the tree is checked against; recorded in the header when there is no scenario.
    pub vocabulary: Vocabulary,
    pub tree: Tree,
    /// Names the tree in error messages (its file path, "<planner>", ...).
    pub tree_source: String,
    /// Who wrote the tree ("hand", "expert", a model name), for the dataset line.
    pub tree_author: String,
    pub goal: String,
    pub seed: u64,
    pub tick_hz: f64,
    /// When the tree came from the planner: what it was asked and answered (`plan.json`).
    pub plan: Option<PlanRecord>,
    /// What the planner knows for this goal: the dataset line's prompt.
    pub plan_context: PlanContext,
    /// Raw channels the backend records alongside (a robot's ROS messages).
    pub ros_channels: Vec<RosChannel>,
    /// The skill manifest, when not the default one (recorded in the header for replay).
    pub skills: Option<arbor_records::recording::RecordedManifest>,
}

/// A ROS 2 topic recorded as it came (CDR), so that the recording doubles as a ROS log.
#[derive(Debug, Clone, PartialEq)]
pub struct RosChannel {
    pub topic: String,
    /// `sensor_msgs/msg/Image`.
    pub type_name: String,
    /// The `ros2msg` definition: the type's .msg text and its dependencies'.
    pub definition: String,
}

/// How a run was stopped before its tree finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The simulator's time limit.
    TimeLimit(String),
    /// From outside: a new goal, the node stopped.
    Outside(String),
}

/// What the backend adds to the summary when a run ends.
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    /// Success criteria (the simulator's ground truth; none on a robot).
    pub criteria: Vec<CriterionResult>,
    /// The backend's own account of the photos (the simulator's ground truth); the runtime's
    /// when `None`.
    pub photos: Option<Vec<Photo>>,
    pub distance_m: f64,
    pub perception: Option<PerceptionReport>,
}

/// What a finished run leaves: its summary, stage latencies (for `timing.json`) and directory.
#[derive(Debug, Clone)]
pub struct Finished {
    pub summary: RunSummary,
    pub latencies: StageLatencies,
    pub dir: PathBuf,
}
