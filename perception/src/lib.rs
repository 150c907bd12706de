//! arbor-perception: what the robot perceives. The shared types (time, geometry, entity ids,
//! observations, the rng) live in `arbor-core` and are re-exported here under their old paths.
//!
//! - [`onnx`]: ONNX Runtime (loaded at run time) and where models live.
//! - [`frame`]: camera frames (image files, raw sensor buffers, the simulator's renderer).
//! - [`detect`]: the detector trait, CenterFace and YOLOv8-layout backends, NMS.
//! - [`track`]: ByteTrack-style multi-object tracking (Kalman filter, two-stage association).
//! - [`assign`]: optimal assignment (Hungarian).
//! - [`camera`]: pinhole camera model, detections to world positions with uncertainty.
//! - [`attention`]: attention score with hysteresis from face landmarks, distance, dwell.
//! - [`appearance`]: appearance re-identification of enrolled people.
//! - [`mot`]: tracking metrics (MOTA, IDF1, ID switches, detection precision/recall).
//! - [`pipeline`]: frame -> detections -> tracks -> entities (observations).
//! - [`describe`]: vision-language descriptions, asynchronous and rate-limited.

pub mod appearance;
pub mod assign;
pub mod attention;
pub mod camera;
pub mod describe;
pub mod detect;
pub mod frame;
pub mod mot;
pub mod onnx;
pub mod pipeline;
pub mod track;

pub use arbor_core::{
    Clock, EntityId, EntityKind, ManualClock, Observation, PerceptionSource, Point2, Pose2, Rng, SimTime,
};
pub use arbor_core::{entity, geometry, observation, rng, time};
