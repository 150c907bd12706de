//! The run loop: perceive -> remember -> decide -> act -> record, on the simulator, until
//! the tree finishes or the scenario's time runs out. Writes a run directory:
//!
//! | file | what |
//! |---|---|
//! | `scenario.yaml` | the scenario as given |
//! | `tree.yaml` | the tree as run (arbor YAML) |
//! | `ticks.jsonl` | every status transition and skill call/result, stamped with tick and sim time |
//! | `observations.jsonl` | each perception frame's observations |
//! | `events.jsonl` | episodic events (also in `memory.sqlite`) |
//! | `outcome.json` | outcome, criteria, counts, photos |
//! | `dataset.jsonl` | one fine-tuning line: goal + context -> tree, with the outcome |
//! | `memory.sqlite` | the episodic memory database |
//! | `run.mcap` | all of the above in one MCAP recording (see `arbor_records::recording`): what `arbor replay` reads |
//!
//! Everything except `memory.sqlite` is a deterministic function of (scenario, tree, seed).
//! Wall-clock figures are not written here: the caller keeps them apart.

use crate::scenario::Scenario;
use crate::world::World;
use arbor_behaviors::metrics::{Metrics, Stage, StageLatencies};
use arbor_behaviors::{NodeStatus, Tree};
use arbor_core::{PerceptionSource, SimTime};
use arbor_planner::PlanRecord;
use arbor_runtime::{Agent, Perception, RunEnd, RunSpec, Stop};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use arbor_runtime::{Outcome, PLAN_PROMPT_BUDGET, RunSummary};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Runtime(#[from] arbor_runtime::RunError),
    #[error(transparent)]
    Camera(#[from] crate::camera::CameraError),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub scenario: Scenario,
    /// The scenario file's text, copied into the run directory as given.
    pub scenario_text: String,
    pub tree: Tree,
    /// Names the tree in error messages (its file path, "<planner>", ...).
    pub tree_source: String,
    /// Who wrote the tree ("hand", "expert", a model name), for the dataset line.
    pub tree_author: String,
    pub seed: u64,
    pub out_dir: PathBuf,
    /// When the tree came from the planner: what it was asked and answered (`plan.json`).
    pub plan: Option<PlanRecord>,
    /// Live options: metrics and pacing. They change nothing that is recorded.
    pub live: LiveOptions,
    /// Ground truth (default) or the rendered camera through the real perception pipeline.
    pub perception: crate::camera::PerceptionMode,
}

/// What a run does for people watching it live; none of it reaches the records.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// Metrics to update as the run goes (served on `/metrics` by the binary).
    pub metrics: Option<Arc<Metrics>>,
    /// Pace the run to this multiple of real time (1.0 = real time); as fast as possible when None.
    pub realtime: Option<f64>,
}

/// Keeps sim time at `factor` x wall time by sleeping (only when ahead).
struct Pacer {
    factor: f64,
    start: Instant,
}

impl Pacer {
    fn wait_for(&self, now: SimTime) {
        let target = Duration::from_secs_f64(now.as_secs_f64() / self.factor);
        if let Some(ahead) = target.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// Runs a scenario with a tree and writes the run directory.
pub fn run(cfg: &RunConfig) -> Result<RunSummary, RunError> {
    run_timed(cfg).map(|(summary, _)| summary)
}

/// As [`run`], also returning the wall-clock latency of each stage (for `timing.json`).
///
/// The simulator is a backend of [`arbor_runtime::Agent`]: it steps the world, observes it
/// (ground truth or the rendered camera through the pipeline) and offers the world's skills;
/// the runtime remembers, ticks and records.
pub fn run_timed(cfg: &RunConfig) -> Result<(RunSummary, StageLatencies), RunError> {
    let pacer =
        cfg.live.realtime.filter(|f| *f > 0.0 && f.is_finite()).map(|factor| Pacer { factor, start: Instant::now() });
    let scenario = &cfg.scenario;
    let registry = arbor_runtime::skills::registry_for(scenario.manifest.as_deref());
    let mut agent = Agent::new(registry, &scenario.memory, cfg.live.metrics.clone());
    let goal = cfg.tree.goal.clone().unwrap_or_else(|| scenario.goal.clone());
    agent.start(
        SimTime::ZERO,
        RunSpec {
            dir: cfg.out_dir.clone(),
            scenario: scenario.name.clone(),
            scenario_text: Some(cfg.scenario_text.clone()),
            vocabulary: scenario.vocabulary(),
            tree: cfg.tree.clone(),
            tree_source: cfg.tree_source.clone(),
            tree_author: cfg.tree_author.clone(),
            goal,
            seed: cfg.seed,
            tick_hz: scenario.tick_hz,
            plan: cfg.plan.clone(),
            plan_context: crate::planning::context(scenario),
            ros_channels: Vec::new(),
            skills: scenario.manifest.as_deref().map(arbor_runtime::skills::recorded),
        },
    )?;
    let mut world = World::new(scenario, cfg.seed);
    let mut camera = match &cfg.perception {
        crate::camera::PerceptionMode::GroundTruth => None,
        crate::camera::PerceptionMode::Camera(setup) => Some(crate::camera::CameraPerception::new(scenario, setup)?),
    };
    let dt = 1.0 / scenario.tick_hz;
    let max_ticks = (scenario.time_limit_s * scenario.tick_hz).ceil() as u64;
    let mut status = NodeStatus::Idle;
    for _ in 1..=max_ticks {
        world.step(dt);
        let now = world.now();
        let perception = agent.time(Stage::Perceive, || match camera.as_mut() {
            // A frame the detector failed on brings no observations (counted in the report).
            Some(c) => Perception::of_frame(&c.observe(&world, now).0),
            None => Perception { observations: Some(world.observe(now)), attention: Vec::new() },
        });
        if let Some(c) = &camera {
            agent.record_pipeline(c.timings());
        }
        let describer = camera.as_mut().map(|c| c as &mut dyn arbor_runtime::Describe);
        agent.perceive(now, perception, &world, describer)?;
        status = agent.tick(now, &mut world)?.unwrap_or(status);
        if let Some(p) = &pacer {
            p.wait_for(now);
        }
        if status.is_done() {
            break;
        }
    }
    let now = world.now();
    if !status.is_done() {
        agent.halt(now, &mut world, Stop::TimeLimit(format!("time limit of {} s reached", scenario.time_limit_s)));
    }
    let criteria = world.evaluate();
    // A description still on its way is waited for briefly and recorded at the end.
    if let Some(c) = camera.as_mut() {
        for d in c.finish_descriptions(Duration::from_secs(10)) {
            agent.remember_late(crate::camera::described_event(d, now))?;
        }
    }
    let end = RunEnd {
        criteria,
        photos: Some(world.photos().to_vec()),
        distance_m: world.odometry(),
        perception: camera.as_ref().map(crate::camera::CameraPerception::report),
    };
    let finished = agent.finish(now, end)?;
    Ok((finished.summary, finished.latencies))
}
