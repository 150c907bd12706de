//! arbor-core: the small set of types every other arbor crate builds on, with no dependency on
//! perception's models, the tree engine or memory (see ARCHITECTURE.md, "Crates").
//!
//! - [`time`]: simulation/robot time and the injected [`time::Clock`].
//! - [`geometry`]: 2D poses over nalgebra.
//! - [`entity`]: entity ids and kinds.
//! - [`observation`]: what a perception source reports each frame.
//! - [`digest`]: content ids (hex SHA-256).
//! - [`rng`]: the seeded, version-stable random generator used wherever noise is needed.

pub mod digest;
pub mod entity;
pub mod geometry;
pub mod observation;
pub mod rng;
pub mod time;

pub use entity::{EntityId, EntityKind};
pub use geometry::{Point2, Pose2};
pub use observation::{Observation, PerceptionSource};
pub use rng::Rng;
pub use time::{Clock, ManualClock, SimTime};
