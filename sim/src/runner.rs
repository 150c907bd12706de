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
//! | `run.mcap` | all of the above in one MCAP recording (see `arbor_behaviors::recording`): what `arbor replay` reads |
//!
//! Everything except `memory.sqlite` is a deterministic function of (scenario, tree, seed).
//! Wall-clock figures are not written here: the caller keeps them apart.

use crate::scenario::Scenario;
use crate::world::{CriterionResult, Photo, World};
use arbor_behaviors::dataset::{self, DatasetLine, LineMetadata};
use arbor_behaviors::metrics::{Metrics, Stage, StageLatencies, TickMeter};
use arbor_behaviors::planner::{PlanRecord, format as plan_format, prompt as plan_prompt};
use arbor_behaviors::record::{JsonlSink, RecordOut, Recorder, TickRecord, TickSink};
use arbor_behaviors::recording::{
    EntitiesMsg, HaltMsg, MemoryEventMsg, ObservationsMsg, Phase, RecordingError, RecordingWriter, RunHeader, Topic,
    TreeMsg,
};
use arbor_behaviors::robot::SkillStatus;
use arbor_behaviors::{BuildError, CallId, Executor, NodeIdx, NodeLibrary, NodeStatus, Params, Tree, TreeError, yaml};
use arbor_memory::{EpisodicStore, Event, EventKind, MemoryError, WorkingMemory};
use arbor_perception::{PerceptionSource, SimTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Camera(#[from] crate::camera::CameraError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io { path: path.to_path_buf(), source }
}

/// Characters of user prompt the planner (and the dataset) allow.
pub const PLAN_PROMPT_BUDGET: usize = 1600;

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

/// Times stages into the run's histograms and the live metrics.
struct Timer {
    latencies: StageLatencies,
    metrics: Option<Arc<Metrics>>,
}

impl Timer {
    fn time<T>(&mut self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let t0 = Instant::now();
        let out = f();
        let d = t0.elapsed();
        self.latencies.entry(stage).or_default().record(d.as_secs_f64());
        if let Some(m) = &self.metrics {
            m.observe(stage, d);
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Timeout,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
        })
    }
}

/// What a run did; also written as `outcome.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
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
    /// Camera perception's figures (`--perception camera`): tracking quality against the
    /// simulator's ground truth, frames dropped, per-frame latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perception: Option<crate::camera::PerceptionReport>,
}

/// Each engine record goes to `ticks.jsonl` and to the recording.
struct Tee {
    jsonl: JsonlSink<BufWriter<File>>,
    mcap: RecordingWriter,
}

impl RecordOut for Tee {
    fn put(&mut self, record: TickRecord) {
        self.jsonl.put(record.clone());
        RecordOut::put(&mut self.mcap, record);
    }
}

/// Forwards tick events to the files and keeps skill calls for memory and counts.
struct RunSink {
    rec: Recorder<Tee>,
    calls: BTreeMap<String, u64>,
    memory_events: Vec<Event>,
    metrics: Option<Arc<Metrics>>,
    /// Start time and skill of calls in flight (skill durations for the metrics).
    started: BTreeMap<CallId, (SimTime, String)>,
}

impl RunSink {
    fn ended(&mut self, t: SimTime, call: CallId, result: &str) {
        if let (Some(m), Some((t0, skill))) = (&self.metrics, self.started.remove(&call)) {
            m.skill_duration.with_label_values(&[skill.as_str(), result]).observe(t.saturating_sub(t0).as_secs_f64());
        }
    }
}

impl RunSink {
    fn skill(&self, node: NodeIdx) -> String {
        self.rec.resolver().nodes().get(node as usize).map(|n| n.id.clone()).unwrap_or_default()
    }
}

impl TickSink for RunSink {
    fn transition(&mut self, tick: u64, t: SimTime, node: NodeIdx, from: NodeStatus, to: NodeStatus) {
        self.rec.transition(tick, t, node, from, to);
    }
    fn skill_started(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx, params: &Params) {
        let skill = self.skill(node);
        *self.calls.entry(skill.clone()).or_default() += 1;
        if let Some(m) = &self.metrics {
            m.skill_calls.with_label_values(&[skill.as_str()]).inc();
            self.started.insert(call, (t, skill.clone()));
        }
        self.memory_events.push(Event::new(t, EventKind::SkillStarted, skill));
        self.rec.skill_started(tick, t, call, node, params);
    }
    fn skill_finished(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx, status: &SkillStatus) {
        let (verdict, detail) = match status {
            SkillStatus::Success(d) => ("succeeded", d.as_str()),
            SkillStatus::Failure(d) => ("failed", d.as_str()),
            SkillStatus::Running => ("running", ""),
        };
        let text = format!("{} {verdict}: {detail}", self.skill(node));
        self.memory_events.push(Event::new(t, EventKind::SkillFinished, text));
        self.ended(t, call, verdict);
        self.rec.skill_finished(tick, t, call, node, status);
    }
    fn skill_halted(&mut self, tick: u64, t: SimTime, call: CallId, node: NodeIdx) {
        self.ended(t, call, "halted");
        self.rec.skill_halted(tick, t, call, node);
    }
    fn check(&mut self, tick: u64, t: SimTime, node: NodeIdx, params: &Params, answer: &SkillStatus) {
        self.rec.check(tick, t, node, params, answer);
    }
    fn error(&mut self, tick: u64, t: SimTime, node: NodeIdx, message: &str) {
        if let Some(m) = &self.metrics {
            m.errors.with_label_values(&["node_runtime"]).inc();
        }
        self.rec.error(tick, t, node, message);
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, RunError> {
    Ok(BufWriter::new(File::create(path).map_err(io_err(path))?))
}

fn finish_jsonl(sink: JsonlSink<BufWriter<File>>, path: &Path) -> Result<(), RunError> {
    sink.finish().map_err(io_err(path))?;
    Ok(())
}

/// Runs a scenario with a tree and writes the run directory.
pub fn run(cfg: &RunConfig) -> Result<RunSummary, RunError> {
    run_timed(cfg).map(|(summary, _)| summary)
}

/// As [`run`], also returning the wall-clock latency of each stage (for `timing.json`).
pub fn run_timed(cfg: &RunConfig) -> Result<(RunSummary, StageLatencies), RunError> {
    let metrics = cfg.live.metrics.clone();
    let pacer =
        cfg.live.realtime.filter(|f| *f > 0.0 && f.is_finite()).map(|factor| Pacer { factor, start: Instant::now() });
    let mut timer = Timer { latencies: StageLatencies::new(), metrics: metrics.clone() };
    let registry = crate::registry();
    let scenario = &cfg.scenario;
    let library = NodeLibrary::with_skills(&registry);
    let checked = cfg.tree.check(&cfg.tree_source, &library, Some(&scenario.vocabulary()), false)?;
    let mut executor = Executor::with_source(&checked, &cfg.tree_source)?;
    let out = &cfg.out_dir;
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let write = |name: &str, bytes: &[u8]| -> Result<(), RunError> {
        let p = out.join(name);
        std::fs::write(&p, bytes).map_err(io_err(&p))
    };
    write("scenario.yaml", cfg.scenario_text.as_bytes())?;
    let tree_yaml = yaml::to_yaml(checked.tree());
    write("tree.yaml", tree_yaml.as_bytes())?;

    // A run directory holds one run: start the memory database afresh.
    let db_path = out.join("memory.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db_path.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RunError::Io { path: p, source: e }),
        }
    }
    let mut episodic = EpisodicStore::open(&db_path)?;
    let ticks_path = out.join("ticks.jsonl");
    let obs_path = out.join("observations.jsonl");
    let events_path = out.join("events.jsonl");
    let nodes = executor.nodes();
    let goal = cfg.tree.goal.clone().unwrap_or_else(|| scenario.goal.clone());
    // Chunks go to disk every simulated second: a killed run loses at most that.
    let mut mcap = RecordingWriter::create(&out.join("run.mcap"), scenario.tick_hz.ceil().max(1.0) as u64)?;
    mcap.put(
        Topic::Run,
        0,
        &RunHeader {
            format: arbor_behaviors::recording::FORMAT_VERSION,
            scenario: scenario.name.clone(),
            goal: goal.clone(),
            seed: cfg.seed,
            tick_hz: scenario.tick_hz,
            tree_source: cfg.tree_source.clone(),
            tree_author: cfg.tree_author.clone(),
            scenario_yaml: cfg.scenario_text.clone(),
            working_memory: scenario.memory.clone(),
        },
    );
    mcap.put(
        Topic::Tree,
        0,
        &TreeMsg { name: checked.tree().name.clone(), yaml: tree_yaml.clone(), nodes: nodes.clone() },
    );
    if let Some(plan) = &cfg.plan {
        mcap.put(Topic::Planner, 0, plan);
    }
    let mut sink = RunSink {
        rec: Recorder::new(&nodes, Tee { jsonl: JsonlSink::new(create(&ticks_path)?), mcap }),
        calls: BTreeMap::new(),
        memory_events: Vec::new(),
        metrics: metrics.clone(),
        started: BTreeMap::new(),
    };
    let mut obs_out = JsonlSink::new(create(&obs_path)?);
    let mut events_out = JsonlSink::new(create(&events_path)?);

    let mut world = World::new(scenario, cfg.seed);
    let mut camera = match &cfg.perception {
        crate::camera::PerceptionMode::GroundTruth => None,
        crate::camera::PerceptionMode::Camera(setup) => Some(crate::camera::CameraPerception::new(scenario, setup)?),
    };
    let mut memory = WorkingMemory::with_config(&scenario.memory);
    memory.set_goal(goal.clone());

    let remember = |ev: Event,
                    (tick, phase): (u64, Phase),
                    memory: &mut WorkingMemory,
                    episodic: &mut EpisodicStore,
                    out: &mut JsonlSink<_>,
                    mcap: &mut RecordingWriter| {
        out.write_line(&ev);
        let msg = MemoryEventMsg { tick, t_us: ev.t.micros(), phase, event: ev };
        mcap.put(Topic::MemoryEvents, msg.t_us, &msg);
        memory.push_event(msg.event.clone());
        let t0 = Instant::now();
        let res = episodic.append(msg.event);
        (res, t0.elapsed())
    };
    let mut n_events = 0u64;
    remember(
        Event::new(SimTime::ZERO, EventKind::GoalSet, goal.clone()),
        (0, Phase::Perceive),
        &mut memory,
        &mut episodic,
        &mut events_out,
        &mut sink.rec.out.mcap,
    )
    .0?;
    n_events += 1;
    // Every tick timed: the simulator's loop costs far more than the meter.
    let mut meter = TickMeter::new(metrics.clone(), 1);

    let dt = 1.0 / scenario.tick_hz;
    let max_ticks = (scenario.time_limit_s * scenario.tick_hz).ceil() as u64;
    let mut status = NodeStatus::Idle;
    for tick in 1..=max_ticks {
        world.step(dt);
        let now = world.now();
        // Perceive.
        let (observations, attention) = timer.time(Stage::Perceive, || match camera.as_mut() {
            // A frame the detector failed on brings no observations (counted in the report).
            Some(c) => crate::camera::split(&c.observe(&world, now).0),
            None => (world.observe(now), Vec::new()),
        });
        let obs_msg = timer.time(Stage::Record, || {
            obs_out.write_line(&serde_json::json!({ "t_us": now.micros(), "observations": observations }));
            let obs_msg = ObservationsMsg { tick, t_us: now.micros(), observations };
            sink.rec.out.mcap.put(Topic::Observations, now.micros(), &obs_msg);
            obs_msg
        });
        let observations = obs_msg.observations;
        // Remember.
        let changes = timer.time(Stage::MemoryUpdate, || memory.update(now, &observations));
        let mut write_time = Duration::ZERO;
        // What perception brought this tick, in order: entities in and out of view, descriptions
        // that arrived (camera runs ask about people who just came into view), attention changes.
        let entity_event = |kind: EventKind, id: &arbor_perception::EntityId, verb: &str| {
            let mut ev = Event::new(now, kind, format!("{id} {verb}")).with_entity(id.clone());
            if let Some(e) = memory.entity(id.as_str()) {
                ev = ev.with_pose(e.position);
                if let Some(room) = world.room_at(e.position) {
                    ev = ev.with_place(room);
                }
            }
            ev
        };
        let mut perceived: Vec<Event> = Vec::new();
        for (ids, kind, verb) in [
            (&changes.appeared, EventKind::EntityAppeared, "came into view"),
            (&changes.disappeared, EventKind::EntityLeft, "went out of view"),
        ] {
            perceived.extend(ids.iter().map(|id| entity_event(kind, id, verb)));
        }
        if let Some(c) = camera.as_mut() {
            c.describe_new(now, &changes.appeared);
            perceived.extend(c.descriptions().into_iter().map(|d| crate::camera::described_event(d, now)));
        }
        for (id, started) in &attention {
            perceived.push(if *started {
                entity_event(EventKind::AttentionStarted, id, "started attending to the robot")
            } else {
                entity_event(EventKind::AttentionStopped, id, "stopped attending to the robot")
            });
        }
        for ev in perceived {
            let (res, d) = remember(
                ev,
                (tick, Phase::Perceive),
                &mut memory,
                &mut episodic,
                &mut events_out,
                &mut sink.rec.out.mcap,
            );
            res?;
            write_time += d;
            n_events += 1;
        }
        timer.time(Stage::Record, || {
            let entities = EntitiesMsg { tick, t_us: now.micros(), entities: memory.entities().cloned().collect() };
            sink.rec.out.mcap.put(Topic::Entities, now.micros(), &entities);
        });
        // Decide and act.
        let t0 = meter.start();
        status = executor.tick(now, &mut world, &memory, &mut sink);
        meter.done(t0, executor.stats().node_ticks);
        // Record what the skills and the world reported.
        let mut evs = std::mem::take(&mut sink.memory_events);
        evs.extend(world.drain_events());
        let n_new = evs.len();
        for ev in evs {
            let (res, d) =
                remember(ev, (tick, Phase::Act), &mut memory, &mut episodic, &mut events_out, &mut sink.rec.out.mcap);
            res?;
            write_time += d;
            n_events += 1;
        }
        timer.latencies.entry(Stage::MemoryWrite).or_default().record(write_time.as_secs_f64());
        timer.time(Stage::Record, || sink.rec.out.mcap.end_tick());
        if let Some(m) = &metrics {
            m.observe(Stage::MemoryWrite, write_time);
            m.observations.inc_by(observations.len() as u64);
            m.memory_events.inc_by((n_new + changes.appeared.len() + changes.disappeared.len()) as u64);
            m.tracked_entities.set(memory.in_view().count() as i64);
            m.working_memory_entities.set(memory.len() as i64);
            m.working_memory_events.set(memory.recent_events().count() as i64);
            m.queue_depth.with_label_values(&["episodic_batch"]).set(episodic.pending() as i64);
            m.sim_time_us.set(now.micros() as i64);
        }
        if let Some(p) = &pacer {
            p.wait_for(now);
        }
        if status.is_done() {
            break;
        }
    }
    let timed_out = !status.is_done();
    if timed_out {
        let now = world.now();
        let halt = HaltMsg {
            tick: executor.stats().ticks,
            t_us: now.micros(),
            reason: format!("time limit of {} s reached", scenario.time_limit_s),
        };
        sink.rec.out.mcap.put(Topic::Halt, now.micros(), &halt);
        executor.halt(now, &mut world, &memory, &mut sink);
    }
    let criteria = world.evaluate();
    let all_passed = criteria.iter().all(|c| c.passed);
    let outcome = match (timed_out, status, all_passed) {
        (true, _, _) => Outcome::Timeout,
        (false, NodeStatus::Success, true) => Outcome::Success,
        _ => Outcome::Failure,
    };
    let now = world.now();
    // A description still on its way is waited for briefly and recorded at the end.
    if let Some(c) = camera.as_mut() {
        for d in c.finish_descriptions(Duration::from_secs(10)) {
            let ev = crate::camera::described_event(d, now);
            let tick = executor.stats().ticks;
            remember(ev, (tick, Phase::Act), &mut memory, &mut episodic, &mut events_out, &mut sink.rec.out.mcap).0?;
            n_events += 1;
        }
    }
    remember(
        Event::new(now, EventKind::RunFinished, format!("run finished: {outcome}")),
        (executor.stats().ticks, Phase::Act),
        &mut memory,
        &mut episodic,
        &mut events_out,
        &mut sink.rec.out.mcap,
    )
    .0?;
    meter.publish(executor.stats().node_ticks);
    timer.latencies.insert(Stage::TreeTick, std::mem::take(&mut meter.hist));
    if let Some(m) = &metrics {
        m.runs.with_label_values(&[&outcome.to_string()]).inc();
    }
    n_events += 1;
    episodic.flush()?;
    let stats = executor.stats();
    let summary = RunSummary {
        scenario: scenario.name.clone(),
        tree: checked.tree().name.clone(),
        goal: goal.clone(),
        seed: cfg.seed,
        outcome,
        tree_status: status,
        sim_time_s: now.as_secs_f64(),
        ticks: stats.ticks,
        skill_calls: sink.calls.clone(),
        halts: stats.halts,
        distance_m: (world.odometry() * 1000.0).round() / 1000.0,
        criteria,
        photos: world.photos().to_vec(),
        events: n_events,
        perception: camera.as_ref().map(crate::camera::CameraPerception::report),
    };
    let Tee { jsonl, mut mcap } = sink.rec.out;
    mcap.put(Topic::Outcome, now.micros(), &summary);
    mcap.finish()?;
    finish_jsonl(jsonl, &ticks_path)?;
    finish_jsonl(obs_out, &obs_path)?;
    finish_jsonl(events_out, &events_path)?;
    let mut outcome_json = serde_json::to_string_pretty(&summary)
        .map_err(|e| RunError::Io { path: out.join("outcome.json"), source: e.into() })?;
    outcome_json.push('\n');
    write("outcome.json", outcome_json.as_bytes())?;

    if let Some(plan) = &cfg.plan {
        let mut text = serde_json::to_string_pretty(plan)
            .map_err(|e| RunError::Io { path: out.join("plan.json"), source: e.into() })?;
        text.push('\n');
        write("plan.json", text.as_bytes())?;
    }

    // One dataset line: exactly what the planner is asked (its system and user messages for
    // this goal and scenario), and this tree in the planning format as the answer.
    let prompt = plan_prompt::build(&registry, &goal, &crate::planning::context(scenario), PLAN_PROMPT_BUDGET);
    let answer = plan_format::render(checked.tree(), checked.library()).unwrap_or_else(|| tree_yaml.clone());
    let line = DatasetLine::new(
        prompt.system,
        prompt.user,
        answer.clone(),
        LineMetadata {
            scenario: scenario.name.clone(),
            seed: cfg.seed,
            source: cfg.tree_author.clone(),
            outcome: outcome.to_string(),
            success: outcome == Outcome::Success,
            ticks: stats.ticks,
            sim_time_s: now.as_secs_f64(),
            tree_sha256: dataset::sha256_hex(&answer),
        },
    );
    let ds_path = out.join("dataset.jsonl");
    let mut ds = create(&ds_path)?;
    serde_json::to_writer(&mut ds, &line).map_err(|e| RunError::Io { path: ds_path.clone(), source: e.into() })?;
    ds.write_all(b"\n").map_err(io_err(&ds_path))?;
    ds.flush().map_err(io_err(&ds_path))?;
    Ok((summary, timer.latencies))
}
