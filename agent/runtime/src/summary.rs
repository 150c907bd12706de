//! What a run did: `outcome.json` (and the recording's `/arbor/outcome`), the same shape for a
//! simulator run and a robot run.

use arbor_behaviors::NodeStatus;
use arbor_perception::mot::MotSummary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    /// The scenario's time limit (simulator) passed with the tree still running.
    Timeout,
    /// Stopped from outside before the tree finished: a new goal replaced it, or the node was
    /// stopped.
    Halted,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
            Outcome::Halted => "halted",
        })
    }
}

/// A photo the robot took. On the simulator `in_frame` and `subject_looking` are ground truth;
/// on a robot `in_frame` is what working memory had in view and `subject_looking` whether the
/// subject was attending to the robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Photo {
    pub t_us: u64,
    pub subject: Option<String>,
    /// Entities in the frame.
    pub in_frame: Vec<String>,
    /// The subject was looking at the robot.
    pub subject_looking: bool,
}

/// The result of one success criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionResult {
    pub criterion: String,
    pub passed: bool,
    pub detail: String,
}

/// How camera perception went (`outcome.json`'s `perception`): deterministic figures only (the
/// per-frame wall-clock time is the `perceive` stage of `timing.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerceptionReport {
    pub mode: String,
    pub detector: String,
    pub frames: u64,
    pub dropped_frames: u64,
    /// People enrolled for re-identification (rendered alone, 1.5 m, facing the camera).
    pub enrolled: Vec<String>,
    pub tracking: MotSummary,
    /// Vision-language descriptions received and failed (0 without a describer).
    #[serde(default)]
    pub descriptions: u64,
    #[serde(default)]
    pub description_errors: u64,
}

/// What a run did; also written as `outcome.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The scenario's name, or `ros2:<node>` for a robot run.
    pub scenario: String,
    pub tree: String,
    pub goal: String,
    pub seed: u64,
    pub outcome: Outcome,
    pub tree_status: NodeStatus,
    pub sim_time_s: f64,
    pub ticks: u64,
    pub skill_calls: BTreeMap<String, u64>,
    pub halts: u64,
    pub distance_m: f64,
    pub criteria: Vec<CriterionResult>,
    pub photos: Vec<Photo>,
    pub events: u64,
    /// Camera perception's figures: tracking quality against the simulator's ground truth,
    /// frames dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perception: Option<PerceptionReport>,
    /// Why the run was halted from outside (`outcome: halted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted_because: Option<String>,
}
