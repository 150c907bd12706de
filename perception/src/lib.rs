//! arbor-perception: what the robot perceives, and the shared types every other crate
//! builds on (the lowest crate owns them, see ARCHITECTURE.md).
//!
//! - [`time`]: simulation/robot time and the injected [`time::Clock`].
//! - [`geometry`]: 2D poses over nalgebra.
//! - [`entity`]: entity ids and kinds.
//! - [`observation`]: what a perception source reports each frame.
//! - [`onnx`]: ONNX Runtime (loaded at run time) and where models live.
//! - [`rng`]: the seeded, version-stable random generator used wherever noise is needed.

pub mod entity;
pub mod geometry;
pub mod observation;
pub mod onnx;
pub mod rng;
pub mod time;

pub use entity::{EntityId, EntityKind};
pub use geometry::{Point2, Pose2};
pub use observation::{Observation, PerceptionSource};
pub use rng::Rng;
pub use time::{Clock, ManualClock, SimTime};
