//! arbor-sim: the built-in simulator, the embedded default way to run arbor.
//!
//! - [`scenario`]: the YAML scenario (map, robot, people, objects, success criteria), parsed
//!   and validated with errors that name the file, line and field;
//! - [`nav`]: occupancy grid and A* path planning around walls;
//! - [`world`]: the deterministic world state, its step function, the ground-truth camera
//!   (a [`arbor_core::PerceptionSource`]) and the skills (a [`arbor_behaviors::Robot`]);
//! - [`render`]: the camera rendered in pixels (walls, floor, people with real face photos);
//! - [`camera`]: `--perception camera`: rendered frames through the real perception pipeline;
//! - [`runner`]: the loop perceive -> remember -> decide -> act -> record, writing a run
//!   directory.

pub mod camera;
pub mod generate;
pub mod nav;
pub mod planning;
pub mod replay;
pub mod runner;
pub mod scenario;
pub mod symbolic;
pub mod world;

pub use arbor_runtime::skills::{register, registry};
pub use runner::{RunConfig, RunError, RunSummary, run};
pub use scenario::{Scenario, ScenarioError};
pub use world::{World, render};
