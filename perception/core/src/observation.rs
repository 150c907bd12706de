//! Observations: what one perception frame says about one entity.

use crate::{EntityId, EntityKind, Point2, SimTime};
use serde::{Deserialize, Serialize};

/// One entity as seen in one frame, in the world frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub stamp: SimTime,
    pub entity: EntityId,
    pub kind: EntityKind,
    /// Class label or display name ("person", "mug", or a recognised name).
    pub label: String,
    /// Estimated world position, metres.
    pub position: Point2,
    /// Range from the camera, metres.
    pub range: f64,
    /// Bearing relative to the camera's optical axis, radians (left positive).
    pub bearing: f64,
    /// Detection confidence in [0, 1].
    pub confidence: f32,
    /// For people: how likely they are attending to the robot, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<f32>,
    /// 1-sigma uncertainty of `position`, metres (camera geometry); None for ground truth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f32>,
}

/// Anything that turns the world (or pixels) into observations, one frame at a time.
/// The simulator's ground-truth camera is the first implementation; the pixel pipeline
/// (detector + tracker) and ROS 2 images come later behind the same trait.
pub trait PerceptionSource {
    /// Observations for the frame at `now`. A source that has no frame yet returns none.
    fn observe(&mut self, now: SimTime) -> Vec<Observation>;
}
