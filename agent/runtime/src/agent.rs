//! [`Agent`]: working memory, the run in progress and its records. A backend calls, each tick,
//! [`Agent::perceive`] then [`Agent::tick`]; between goals it keeps calling `perceive` (memory
//! goes on; what is perceived is kept for the next run).

use crate::records::{Acting, RunSink, Tee};
use crate::skills::skill_event;
use crate::spec::{Finished, RunEnd, RunSpec, Stop};
use crate::summary::{CriterionResult, Outcome, Photo, RunSummary};
use crate::{Backend, Describe, PLAN_PROMPT_BUDGET, Perception, RunError, io_err};
use arbor_behaviors::metrics::{Metrics, Stage, StageLatencies, TickMeter};
use arbor_behaviors::record::{JsonlSink, Recorder, TickRecord};
use arbor_behaviors::{Executor, NodeLibrary, NodeStatus, SkillRegistry, yaml};
use arbor_core::{EntityId, SimTime};
use arbor_memory::{EpisodicStore, Event, EventKind, WorkingConfig, WorkingMemory};
use arbor_planner::{PlanRecord, format as plan_format, prompt as plan_prompt};
use arbor_records::dataset::{self, DatasetLine, LineMetadata};
use arbor_records::recording::{
    EntitiesMsg, HaltMsg, MemoryEventMsg, ObservationsMsg, Phase, RecordingWriter, RunHeader, Topic, TreeMsg,
};
use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events perceived between goals, kept for the next run (oldest dropped beyond this).
pub const IDLE_EVENTS_MAX: usize = 1024;

/// Times stages into the run's histograms and the live metrics.
struct Timer {
    latencies: StageLatencies,
    metrics: Option<Arc<Metrics>>,
}

impl Timer {
    fn time<T>(&mut self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let t0 = Instant::now();
        let out = f();
        self.record(stage, t0.elapsed());
        out
    }
    fn record(&mut self, stage: Stage, d: Duration) {
        self.latencies.entry(stage).or_default().record(d.as_secs_f64());
        if let Some(m) = &self.metrics {
            m.observe(stage, d);
        }
    }
}

/// One goal being carried out, with its records.
struct Run {
    dir: PathBuf,
    scenario: String,
    goal: String,
    seed: u64,
    tree_name: String,
    tree_author: String,
    answer: String,
    plan: Option<PlanRecord>,
    prompt: plan_prompt::ChatPrompt,
    executor: Executor,
    sink: RunSink,
    obs_out: JsonlSink<BufWriter<File>>,
    events_out: JsonlSink<BufWriter<File>>,
    episodic: EpisodicStore,
    n_events: u64,
    /// Ticks begun (the recording's frames).
    frames: u64,
    /// A frame is open: perceived, not ticked yet.
    open: bool,
    status: NodeStatus,
    stopped: Option<Stop>,
    meter: TickMeter,
    photos: Vec<Photo>,
    write_time: Duration,
    /// MCAP channel ids of the spec's `ros_channels`, in order.
    ros_ids: Vec<u16>,
}

impl Run {
    /// Into the run's records and memory: `events.jsonl`, the recording, working memory,
    /// the episodic store.
    fn remember(&mut self, memory: &mut WorkingMemory, ev: Event, phase: Phase) -> Result<(), RunError> {
        let tick = if phase == Phase::Perceive { self.frames } else { self.executor.stats().ticks };
        self.events_out.write_line(&ev);
        let msg = MemoryEventMsg { tick, t_us: ev.t.micros(), phase, event: ev };
        self.sink.rec.out.mcap.put(Topic::MemoryEvents, msg.t_us, &msg);
        memory.push_event(msg.event.clone());
        let t0 = Instant::now();
        let res = self.episodic.append(msg.event);
        self.write_time += t0.elapsed();
        self.n_events += 1;
        if let Some(m) = &self.sink.metrics {
            m.memory_events.inc();
        }
        Ok(res?)
    }
}

/// Working memory, the run in progress and its records: the loop both backends drive.
pub struct Agent {
    registry: SkillRegistry,
    library: NodeLibrary,
    memory_config: WorkingConfig,
    pub memory: WorkingMemory,
    run: Option<Run>,
    idle: VecDeque<Event>,
    photographed: BTreeSet<String>,
    metrics: Option<Arc<Metrics>>,
    timer: Timer,
    /// Ticks timed by the tree-tick meter: 1 = every tick.
    tick_sample_every: u32,
    keep_last_tick: bool,
}

fn create(path: &Path) -> Result<BufWriter<File>, RunError> {
    Ok(BufWriter::new(File::create(path).map_err(io_err(path))?))
}

impl Agent {
    pub fn new(registry: SkillRegistry, memory: &WorkingConfig, metrics: Option<Arc<Metrics>>) -> Self {
        let library = NodeLibrary::with_skills(&registry);
        Self {
            registry,
            library,
            memory_config: memory.clone(),
            memory: WorkingMemory::with_config(memory),
            run: None,
            idle: VecDeque::new(),
            photographed: BTreeSet::new(),
            timer: Timer { latencies: StageLatencies::new(), metrics: metrics.clone() },
            metrics,
            tick_sample_every: 1,
            keep_last_tick: false,
        }
    }

    /// Times one tick in `n` (a robot's tree ticks cost little next to the meter).
    pub fn sample_ticks_every(&mut self, n: u32) {
        self.tick_sample_every = n.max(1);
    }

    pub fn registry(&self) -> &SkillRegistry {
        &self.registry
    }

    pub fn library(&self) -> &NodeLibrary {
        &self.library
    }

    /// The detection and tracking times of a camera pipeline's last frame.
    pub fn record_pipeline(&mut self, t: arbor_perception::pipeline::StageTimings) {
        self.timer.record(Stage::Detection, t.detection);
        self.timer.record(Stage::Tracking, t.tracking);
    }

    /// The live metrics this agent updates, if any.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Times a backend's stage (perception) like the runtime's own.
    pub fn time<T>(&mut self, stage: Stage, f: impl FnOnce() -> T) -> T {
        self.timer.time(stage, f)
    }

    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// The running tree's executor (node statuses, stats), if a run is in progress.
    pub fn executor(&self) -> Option<&Executor> {
        self.run.as_ref().map(|r| &r.executor)
    }

    /// Keeps each tick's engine records for [`Agent::last_tick`] (a backend's status message);
    /// off by default: a copy of every record that nobody reads costs the simulator's hot loop.
    pub fn keep_last_tick(&mut self, keep: bool) {
        self.keep_last_tick = keep;
    }

    /// The engine records of the last tick (empty unless [`Agent::keep_last_tick`]).
    pub fn last_tick(&self) -> &[TickRecord] {
        self.run.as_ref().and_then(|r| r.sink.rec.out.last_tick.as_deref()).unwrap_or(&[])
    }

    /// The run's directory and goal, if a run is in progress.
    pub fn current(&self) -> Option<(&Path, &str, &str)> {
        self.run.as_ref().map(|r| (r.dir.as_path(), r.goal.as_str(), r.tree_name.as_str()))
    }

    /// Starts a run: checks the tree, opens the records, remembers what was perceived since the
    /// last run and the goal. Nothing is written when the tree does not check.
    pub fn start(&mut self, now: SimTime, spec: RunSpec) -> Result<PathBuf, RunError> {
        if self.run.is_some() {
            return Err(RunError::Busy);
        }
        let checked = spec.tree.check(&spec.tree_source, &self.library, Some(&spec.vocabulary), false)?;
        let executor = Executor::with_source(&checked, &spec.tree_source)?;
        let out = &spec.dir;
        std::fs::create_dir_all(out).map_err(io_err(out))?;
        let write = |name: &str, bytes: &[u8]| -> Result<(), RunError> {
            let p = out.join(name);
            std::fs::write(&p, bytes).map_err(io_err(&p))
        };
        if let Some(text) = &spec.scenario_text {
            write("scenario.yaml", text.as_bytes())?;
        }
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
        let episodic = EpisodicStore::open(&db_path)?;
        let nodes = executor.nodes();
        // Chunks go to disk every second of run time: a killed run loses at most that.
        let mut mcap = RecordingWriter::create(&out.join("run.mcap"), spec.tick_hz.ceil().max(1.0) as u64)?;
        mcap.put(
            Topic::Run,
            0,
            &RunHeader {
                format: arbor_records::recording::FORMAT_VERSION,
                scenario: spec.scenario.clone(),
                goal: spec.goal.clone(),
                seed: spec.seed,
                tick_hz: spec.tick_hz,
                tree_source: spec.tree_source.clone(),
                tree_author: spec.tree_author.clone(),
                scenario_yaml: spec.scenario_text.clone().unwrap_or_default(),
                working_memory: self.memory_config.clone(),
                vocabulary: spec.scenario_text.is_none().then(|| spec.vocabulary.clone()),
                skills: spec.skills.clone(),
            },
        );
        mcap.put(
            Topic::Tree,
            0,
            &TreeMsg { name: checked.tree().name.clone(), yaml: tree_yaml.clone(), nodes: nodes.clone() },
        );
        if let Some(plan) = &spec.plan {
            mcap.put(Topic::Planner, 0, plan);
        }
        let mut ros_ids = Vec::with_capacity(spec.ros_channels.len());
        for c in &spec.ros_channels {
            ros_ids.push(mcap.add_ros2_channel(&c.topic, &c.type_name, &c.definition)?);
        }
        // What memory holds from before (a robot remembers across goals): replay starts from it.
        if !self.memory.is_empty() {
            let entities = EntitiesMsg { tick: 0, t_us: 0, entities: self.memory.entities().cloned().collect() };
            mcap.put(Topic::Entities, 0, &entities);
        }
        let last_tick = self.keep_last_tick.then(Vec::new);
        let tee = Tee { jsonl: JsonlSink::new(create(&out.join("ticks.jsonl"))?), mcap, last_tick };
        let prompt = plan_prompt::build(&self.registry, &spec.goal, &spec.plan_context, PLAN_PROMPT_BUDGET);
        let answer = plan_format::render(checked.tree(), checked.library()).unwrap_or_else(|| tree_yaml.clone());
        let mut run = Run {
            dir: spec.dir.clone(),
            scenario: spec.scenario,
            goal: spec.goal,
            seed: spec.seed,
            tree_name: checked.tree().name.clone(),
            tree_author: spec.tree_author,
            answer,
            plan: spec.plan,
            prompt,
            executor,
            sink: RunSink::new(Recorder::new(&nodes, tee), self.metrics.clone()),
            obs_out: JsonlSink::new(create(&out.join("observations.jsonl"))?),
            events_out: JsonlSink::new(create(&out.join("events.jsonl"))?),
            episodic,
            n_events: 0,
            frames: 0,
            open: false,
            status: NodeStatus::Idle,
            stopped: None,
            meter: TickMeter::new(self.metrics.clone(), self.tick_sample_every),
            photos: Vec::new(),
            write_time: Duration::ZERO,
            ros_ids,
        };
        self.memory.set_goal(run.goal.clone());
        for ev in std::mem::take(&mut self.idle) {
            run.remember(&mut self.memory, ev, Phase::Perceive)?;
        }
        let goal = Event::new(now, EventKind::GoalSet, run.goal.clone());
        run.remember(&mut self.memory, goal, Phase::Perceive)?;
        run.write_time = Duration::ZERO;
        let dir = run.dir.clone();
        self.run = Some(run);
        Ok(dir)
    }

    /// Perceive and remember: what the backend observed this tick (if a frame came), the events
    /// it makes (entities in and out of view with their place, descriptions, attention), into
    /// working memory and, while a run is in progress, its records.
    pub fn perceive<B: Backend>(
        &mut self,
        now: SimTime,
        perception: Perception,
        backend: &B,
        describer: Option<&mut dyn Describe>,
    ) -> Result<(), RunError> {
        let Perception { observations, attention } = perception;
        let stale = observations.is_none();
        let observations = observations.unwrap_or_default();
        let observations = match self.run.as_mut() {
            Some(run) => {
                run.frames += 1;
                run.open = true;
                let tick = run.frames;
                self.timer.time(Stage::Record, || {
                    if !stale {
                        run.obs_out
                            .write_line(&serde_json::json!({ "t_us": now.micros(), "observations": observations }));
                    }
                    let msg = ObservationsMsg { tick, t_us: now.micros(), observations, stale };
                    run.sink.rec.out.mcap.put(Topic::Observations, now.micros(), &msg);
                    msg.observations
                })
            }
            None => observations,
        };
        let changes = if stale {
            Default::default()
        } else {
            let memory = &mut self.memory;
            self.timer.time(Stage::MemoryUpdate, || memory.update(now, &observations))
        };
        if let Some(m) = &self.metrics {
            m.observations.inc_by(observations.len() as u64);
            // What memory holds follows perception, also between runs (a robot perceives idle).
            m.tracked_entities.set(self.memory.in_view().count() as i64);
            m.working_memory_entities.set(self.memory.len() as i64);
        }
        let memory = &self.memory;
        let entity_event = |kind: EventKind, id: &EntityId, verb: &str| {
            let mut ev = Event::new(now, kind, format!("{id} {verb}")).with_entity(id.clone());
            if let Some(e) = memory.entity(id.as_str()) {
                ev = ev.with_pose(e.position);
                if let Some(place) = backend.place_at(e.position) {
                    ev = ev.with_place(place);
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
        if let Some(d) = describer {
            perceived.extend(d.describe(now, &changes.appeared));
        }
        for (id, started) in &attention {
            perceived.push(if *started {
                entity_event(EventKind::AttentionStarted, id, "started attending to the robot")
            } else {
                entity_event(EventKind::AttentionStopped, id, "stopped attending to the robot")
            });
        }
        match self.run.as_mut() {
            Some(run) => {
                for ev in perceived {
                    run.remember(&mut self.memory, ev, Phase::Perceive)?;
                }
                let memory = &self.memory;
                self.timer.time(Stage::Record, || {
                    let entities = EntitiesMsg {
                        tick: run.frames,
                        t_us: now.micros(),
                        entities: memory.entities().cloned().collect(),
                    };
                    run.sink.rec.out.mcap.put(Topic::Entities, now.micros(), &entities);
                });
            }
            None => {
                if let Some(m) = &self.metrics {
                    m.memory_events.inc_by(perceived.len() as u64);
                }
                for ev in perceived {
                    self.memory.push_event(ev.clone());
                    if self.idle.len() == IDLE_EVENTS_MAX {
                        self.idle.pop_front();
                    }
                    self.idle.push_back(ev);
                }
            }
        }
        Ok(())
    }

    /// Decide and act: ticks the tree once against the backend's skills, then remembers what the
    /// skills did. Returns the tree's status (None when no run is in progress).
    pub fn tick<B: Backend>(&mut self, now: SimTime, backend: &mut B) -> Result<Option<NodeStatus>, RunError> {
        if self.run.as_ref().is_some_and(|r| !r.open) {
            // No perception this tick: a stale frame, so that every tick has one.
            self.perceive(now, Perception::default(), backend, None)?;
        }
        let Some(run) = self.run.as_mut() else { return Ok(None) };
        if let Some(l) = run.sink.rec.out.last_tick.as_mut() {
            l.clear();
        }
        let t0 = run.meter.start();
        let mut acting = Acting { backend, photographed: &mut self.photographed };
        run.status = run.executor.tick(now, &mut acting, &self.memory, &mut run.sink);
        run.meter.done(t0, run.executor.stats().node_ticks);
        // What the skills did: started / finished, then what they leave (photos, arrivals, speech).
        let mut evs = std::mem::take(&mut run.sink.memory_events);
        let place = backend.robot_pose().and_then(|p| backend.place_at(p.position()));
        let finished = std::mem::take(&mut run.sink.finished);
        let in_view: Vec<String> =
            if finished.is_empty() { Vec::new() } else { self.memory.in_view().map(|e| e.id.to_string()).collect() };
        for f in finished {
            if let Some(ev) = skill_event(f.t, &f.skill, &f.params, &f.status, place.as_deref(), &in_view) {
                if ev.kind == EventKind::PhotoTaken {
                    let in_frame = in_view.clone();
                    let subject = ev.entity.as_ref().map(|e| e.to_string());
                    let subject_looking = subject.as_deref().and_then(|s| self.memory.entity(s)).is_some_and(|e| {
                        e.is_attending(arbor_behaviors::conditions::DEFAULT_ATTENTION_THRESHOLD as f32)
                    });
                    run.photos.push(Photo { t_us: f.t.micros(), subject, in_frame, subject_looking });
                }
                evs.push(ev);
            }
        }
        for ev in evs {
            run.remember(&mut self.memory, ev, Phase::Act)?;
        }
        self.timer.record(Stage::MemoryWrite, std::mem::take(&mut run.write_time));
        let mcap = &mut run.sink.rec.out.mcap;
        self.timer.time(Stage::Record, || mcap.end_tick());
        run.open = false;
        if let Some(m) = &self.metrics {
            m.tracked_entities.set(self.memory.in_view().count() as i64);
            m.working_memory_entities.set(self.memory.len() as i64);
            m.working_memory_events.set(self.memory.recent_events().count() as i64);
            m.queue_depth.with_label_values(&["episodic_batch"]).set(run.episodic.pending() as i64);
            m.sim_time_us.set(now.micros() as i64);
        }
        Ok(Some(run.status))
    }

    /// Stops the tree before it finished (time limit, new goal, node stopped): recorded, then
    /// halted (motion stops, remote skills are cancelled).
    pub fn halt<B: Backend>(&mut self, now: SimTime, backend: &mut B, stop: Stop) {
        let Some(run) = self.run.as_mut() else { return };
        let reason = match &stop {
            Stop::TimeLimit(r) | Stop::Outside(r) => r.clone(),
        };
        let halt = HaltMsg { tick: run.executor.stats().ticks, t_us: now.micros(), reason };
        run.sink.rec.out.mcap.put(Topic::Halt, now.micros(), &halt);
        let mut acting = Acting { backend, photographed: &mut self.photographed };
        run.executor.halt(now, &mut acting, &self.memory, &mut run.sink);
        run.sink.memory_events.clear();
        run.sink.finished.clear();
        run.stopped = Some(stop);
    }

    /// A raw message on the run's `ros_channels[channel]`, at `now` (nothing without a run).
    pub fn record_ros(&mut self, channel: usize, now: SimTime, data: &[u8]) {
        if let Some(run) = self.run.as_mut()
            && let Some(&id) = run.ros_ids.get(channel)
        {
            run.sink.rec.out.mcap.put_raw(id, now.micros(), data);
        }
    }

    /// An event that arrived after the last tick (a description waited for at the end).
    pub fn remember_late(&mut self, ev: Event) -> Result<(), RunError> {
        match self.run.as_mut() {
            Some(run) => run.remember(&mut self.memory, ev, Phase::Act),
            None => {
                self.memory.push_event(ev);
                Ok(())
            }
        }
    }

    /// The outcome the run would end with now.
    fn outcome(run: &Run, criteria: &[CriterionResult]) -> Outcome {
        match (&run.stopped, run.status, criteria.iter().all(|c| c.passed)) {
            (Some(Stop::TimeLimit(_)), _, _) => Outcome::Timeout,
            (Some(Stop::Outside(_)), _, _) => Outcome::Halted,
            (None, NodeStatus::Success, true) => Outcome::Success,
            _ => Outcome::Failure,
        }
    }

    /// Ends the run: its last event, the records closed, `outcome.json`, `plan.json` and the
    /// run's dataset line written. Memory stays (the next run starts from it).
    pub fn finish(&mut self, now: SimTime, end: RunEnd) -> Result<Finished, RunError> {
        let Some(mut run) = self.run.take() else { return Err(RunError::NotRunning) };
        let outcome = Self::outcome(&run, &end.criteria);
        let ev = Event::new(now, EventKind::RunFinished, format!("run finished: {outcome}"));
        run.remember(&mut self.memory, ev, Phase::Act)?;
        run.meter.publish(run.executor.stats().node_ticks);
        let mut latencies = std::mem::take(&mut self.timer.latencies);
        latencies.insert(Stage::TreeTick, std::mem::take(&mut run.meter.hist));
        if let Some(m) = &self.metrics {
            m.runs.with_label_values(&[&outcome.to_string()]).inc();
        }
        run.episodic.flush()?;
        let stats = run.executor.stats();
        let summary = RunSummary {
            scenario: run.scenario.clone(),
            tree: run.tree_name.clone(),
            goal: run.goal.clone(),
            seed: run.seed,
            outcome,
            tree_status: run.status,
            sim_time_s: now.as_secs_f64(),
            ticks: stats.ticks,
            skill_calls: run.sink.calls.clone(),
            halts: stats.halts,
            distance_m: (end.distance_m * 1000.0).round() / 1000.0,
            criteria: end.criteria,
            photos: end.photos.unwrap_or(std::mem::take(&mut run.photos)),
            events: run.n_events,
            perception: end.perception,
            halted_because: match &run.stopped {
                Some(Stop::Outside(r)) => Some(r.clone()),
                _ => None,
            },
        };
        let out = run.dir.clone();
        let Tee { jsonl, mut mcap, .. } = run.sink.rec.out;
        mcap.put(Topic::Outcome, now.micros(), &summary);
        mcap.finish()?;
        let finish = |sink: JsonlSink<BufWriter<File>>, name: &str| -> Result<(), RunError> {
            sink.finish().map(|_| ()).map_err(io_err(&out.join(name)))
        };
        finish(jsonl, "ticks.jsonl")?;
        finish(run.obs_out, "observations.jsonl")?;
        finish(run.events_out, "events.jsonl")?;
        let json = |name: &str, v: &dyn erased::Json| -> Result<(), RunError> {
            let p = out.join(name);
            let mut text = v.pretty().map_err(|e| RunError::Io { path: p.clone(), source: e.into() })?;
            text.push('\n');
            std::fs::write(&p, text).map_err(io_err(&p))
        };
        json("outcome.json", &summary)?;
        if let Some(plan) = &run.plan {
            json("plan.json", plan)?;
        }
        // One dataset line: exactly what the planner is asked (its system and user messages for
        // this goal and context), and this tree in the planning format as the answer.
        let line = DatasetLine::new(
            run.prompt.system,
            run.prompt.user,
            run.answer.clone(),
            LineMetadata {
                scenario: run.scenario.clone(),
                seed: run.seed,
                source: run.tree_author.clone(),
                outcome: outcome.to_string(),
                success: outcome == Outcome::Success,
                ticks: stats.ticks,
                sim_time_s: now.as_secs_f64(),
                tree_sha256: dataset::sha256_hex(&run.answer),
            },
        );
        let ds_path = out.join("dataset.jsonl");
        let mut ds = create(&ds_path)?;
        serde_json::to_writer(&mut ds, &line).map_err(|e| RunError::Io { path: ds_path.clone(), source: e.into() })?;
        ds.write_all(b"\n").map_err(io_err(&ds_path))?;
        ds.flush().map_err(io_err(&ds_path))?;
        Ok(Finished { summary, latencies, dir: out })
    }
}

/// Pretty JSON of either summary or plan record, through one function.
mod erased {
    pub trait Json {
        fn pretty(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn pretty(&self) -> serde_json::Result<String> {
            serde_json::to_string_pretty(self)
        }
    }
}
