//! arbor-perception: what the robot perceives, and the shared types every other crate
//! builds on (the lowest crate owns them, see ARCHITECTURE.md).
//!
//! - [`time`]: simulation/robot time and the injected [`time::Clock`].
//! - [`geometry`]: 2D poses over nalgebra.
//! - [`entity`]: entity ids and kinds.
//! - [`observation`]: what a perception source reports each frame.
//! - [`onnx`]: ONNX Runtime (loaded at run time) and where models live.
//! - [`rng`]: the seeded, version-stable random generator used wherever noise is needed.
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
pub mod entity;
pub mod frame;
pub mod geometry;
pub mod mot;
pub mod observation;
pub mod onnx;
pub mod pipeline;
pub mod rng;
pub mod time;
pub mod track;

pub use entity::{EntityId, EntityKind};
pub use geometry::{Point2, Pose2};
pub use observation::{Observation, PerceptionSource};
pub use rng::Rng;
pub use time::{Clock, ManualClock, SimTime};
