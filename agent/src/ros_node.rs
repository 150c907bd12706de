//! `arbor run`: arbor as a ROS 2 node (r2r, feature `ros2`).
//!
//! One loop at `tick_hz` on a tokio runtime (current thread, a `LocalSet`): rcl spins on a
//! blocking thread of the runtime; subscriptions and action goals are tasks that file what
//! arrives; each tick (synchronous) takes the inbox, perceives the newest camera frame
//! (detector -> tracker -> re-id -> working memory), ticks the behavior tree against the robot's
//! skills, publishes status, entity markers and motion. Goals arrive as `std_msgs/String`: a tree
//! (YAML or BT.CPP XML) runs as given; words go to the LLM planner (feature `llm`) on a blocking
//! worker of the runtime, so the loop never blocks. The robot's skills are `ros_robot::RosRobot`.
//!
//! This file is the node's ROS I/O only: the loop's memory, tick and records are
//! [`arbor_runtime::Agent`]'s, the same as the simulator's.
//!
//! Each goal gets a run directory like a simulator run's (tree, ticks, events, observations,
//! episodic memory in SQLite, run.mcap, outcome, dataset line): replay, btlog, report, dataset
//! build and the fleet read it.
//! SIGINT/SIGTERM halt the tree (motion stops, remote goals are cancelled), finish the
//! records and exit 0.
//!
//! Over 600 lines: the node's one loop with its parameters and status messages (the robot's skills are ros_robot.rs, message definitions ros_msgdef.rs).

use crate::plan::PlanArgs;
use crate::ros_config::{NodeConfig, check_ros_args, ros_args, ros_param};
use crate::ros_robot::{Outputs, RosRobot, now_msg, quat_of, yaw_of};
use anyhow::{Context as _, Result, anyhow, bail};
use arbor_behaviors::metrics::{Metrics, Stage};
use arbor_behaviors::record::TickEvent;
use arbor_behaviors::{NodeStatus, Tree, Vocabulary, xml, yaml};
use arbor_core::{Pose2, SimTime};
use arbor_memory::WorkingMemory;
use arbor_perception::camera::CameraModel;
use arbor_perception::frame::Frame;
use arbor_perception::pipeline::{Pipeline, PipelineConfig};
use arbor_planner::PlanRecord;
use arbor_runtime::{Agent, Outcome, Perception, RosChannel, RunEnd, RunSpec, Stop};
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use r2r::arbor_msgs::action::ExecuteSkill::Action as ExecuteSkill;
use r2r::geometry_msgs::msg::{Point, PoseStamped, Twist, Vector3};
use r2r::nav_msgs::msg::Odometry;
use r2r::sensor_msgs::msg::{CameraInfo, Image};
use r2r::std_msgs::msg::{ColorRGBA, Header, String as StringMsg};
use r2r::visualization_msgs::msg::{Marker, MarkerArray};
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Clears its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What the subscription tasks have filed since the last tick.
#[derive(Default)]
struct Inbox {
    /// Every odometry pose, in order (the distance driven adds them all up).
    poses: Vec<Pose2>,
    camera_info: Option<CameraInfo>,
    /// The newest frame; `superseded` counts frames replaced before a tick perceived them.
    frame: Option<Image>,
    superseded: u64,
    /// Goals in arrival order: each replaces the one before it, in turn, at the next tick (two
    /// arriving between ticks are both seen: an identical second request joins the first's plan).
    goals: Vec<String>,
    /// Raw messages for the run's recording: (channel, CDR bytes).
    raw: Vec<(usize, Vec<u8>)>,
}

/// What the planner worker returns: the tree, the model that wrote it, the plan's record.
type PlanResult = Result<(Tree, String, PlanRecord)>;

/// `arbor run` options (the `--ros-args ...` part is read by rcl from the process arguments).
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub config: Option<PathBuf>,
    pub out: Option<PathBuf>,
    /// The fleet file (`--fleet`, else the ROS parameter `fleet`).
    pub fleet: Option<PathBuf>,
    pub plan: PlanArgs,
    /// Every process argument, for `--ros-args`.
    pub argv: Vec<String>,
}

/// Reads a parameter the launch file, `--params-file` or `-p` may have set.
struct Params<'a>(&'a r2r::Node);

impl Params<'_> {
    fn text(&self, name: &str) -> String {
        match self.0.get_parameter::<String>(name) {
            Ok(s) => s,
            Err(_) => ros_param(name).map(|p| p.default.to_string()).unwrap_or_default(),
        }
    }
    fn number(&self, name: &str) -> f64 {
        if let Ok(v) = self.0.get_parameter::<f64>(name) {
            return v;
        }
        if let Ok(v) = self.0.get_parameter::<i64>(name) {
            return v as f64;
        }
        ros_param(name).and_then(|p| p.default.parse().ok()).unwrap_or(0.0)
    }
}

/// rcl's init, which r2r turns into a panic when it fails (a params file rcl cannot parse):
/// caught here and reported as an error.
fn create_context() -> Result<r2r::Context> {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let res = std::panic::catch_unwind(r2r::Context::create);
    std::panic::set_hook(prev);
    match res {
        Ok(Ok(ctx)) => Ok(ctx),
        Ok(Err(e)) => bail!("ROS 2 init failed: {e}"),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown error".into());
            bail!("ROS 2 init failed (rcl rejected the --ros-args): {msg}")
        }
    }
}

fn slug(goal: &str) -> String {
    let s: String = goal
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .take(6)
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() { "goal".into() } else { s }
}

/// A goal message: a tree as text, or words for the planner.
enum GoalText {
    Tree(Tree),
    Words(String),
}

fn read_goal(text: &str, source: &str) -> Result<GoalText> {
    let t = text.trim();
    if t.is_empty() {
        bail!("empty goal");
    }
    if t.starts_with('<') {
        return Ok(GoalText::Tree(xml::parse(t, source)?));
    }
    // A YAML tree spans lines and names its root; one line of words is a goal for the planner.
    if t.contains('\n') && t.lines().any(|l| l.starts_with("root:")) {
        return Ok(GoalText::Tree(yaml::parse(t, source)?));
    }
    Ok(GoalText::Words(t.to_string()))
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let ros = ros_args(&args.argv);
    let expected_name = crate::ros_config::fq_name(&ros, "arbor");
    check_ros_args(&ros, &expected_name)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    let ctx = create_context()?;
    let mut node = r2r::Node::create(ctx, "arbor", "").map_err(|e| anyhow!("creating the ROS 2 node: {e}"))?;
    // use_sim_time: the ROS clock follows /clock (Gazebo, a bag), and so does everything arbor
    // times and stamps: skill deadlines, waits, records, memory.
    let sim_time = node.get_parameter::<bool>("use_sim_time").unwrap_or(false);
    if sim_time {
        node.get_time_source().enable_sim_time(&mut node).map_err(|e| anyhow!("use_sim_time: {e}"))?;
    }
    let fq_name = node.fully_qualified_name().unwrap_or(expected_name);

    let params = Params(&node);
    let config_path = match (&args.config, params.text("config")) {
        (Some(p), _) => Some(p.clone()),
        (None, p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => None,
    };
    let cfg = match &config_path {
        Some(p) => NodeConfig::load(p)?,
        None => NodeConfig::parse("{}", "<defaults>", None)?,
    };
    let out_root = match (&args.out, params.text("out_dir")) {
        (Some(p), _) => p.clone(),
        (None, p) if !p.is_empty() => PathBuf::from(p),
        _ => cfg.out_dir.clone(),
    };
    // The skill manifest: --skills, the parameter, the node YAML's `skills:`; checked for this
    // backend and against the interface definitions before the node goes up.
    let skills_path = match (&args.plan.skills, params.text("skills")) {
        (Some(p), _) => Some(p.clone()),
        (None, p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => cfg.skills.clone(),
    };
    let manifest = match &skills_path {
        Some(p) => {
            let m = arbor_behaviors::SkillManifest::load(p)?;
            m.check_backend(arbor_behaviors::manifest::Backend::Ros2)?;
            crate::ros_iface::from_env().check_manifest(&m)?;
            Some(Arc::new(m))
        }
        None => None,
    };
    let tick_hz = params.number("tick_hz");
    if !(tick_hz > 0.0 && tick_hz <= 1000.0) {
        bail!("parameter tick_hz must be in (0, 1000], got {tick_hz}");
    }
    // The fleet and the metrics endpoint, checked before the node goes up.
    let fleet_path = match (&args.fleet, params.text("fleet")) {
        (Some(p), _) => Some(p.clone()),
        (None, p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => None,
    };
    let fleet = match &fleet_path {
        Some(p) => Some(crate::fleet::Link::start(crate::fleet::FleetConfig::load(p)?, Duration::from_secs(5))?),
        None => None,
    };
    let metrics_addr = params.text("metrics_addr");
    let (metrics, _metrics_server) = if metrics_addr.is_empty() {
        (None, None)
    } else {
        let m = Arc::new(Metrics::new()?);
        let server = crate::metrics_server::MetricsServer::start(&metrics_addr, m.clone())
            .with_context(|| "parameter metrics_addr".to_string())?;
        println!("arbor: metrics on http://{}/metrics", server.addr);
        (Some(m), Some(server))
    };
    let depth = params.number("qos_depth").clamp(1.0, 1000.0) as usize;
    let image_every = params.number("record_image_every").max(0.0) as u64;
    let qos = || QosProfile::default().keep_last(depth);
    let image_qos = match params.text("image_qos").as_str() {
        "reliable" => QosProfile::default().keep_last(depth),
        _ => QosProfile::sensor_data().keep_last(depth),
    };
    let topic = |n: &str| params.text(n);
    let (image_topic, info_topic, odom_topic, goal_topic) =
        (topic("image_topic"), topic("camera_info_topic"), topic("odom_topic"), topic("goal_topic"));
    let (status_topic, entities_topic, cmd_vel_topic, goal_pose_topic, skill_action, map_frame) = (
        topic("status_topic"),
        topic("entities_topic"),
        topic("cmd_vel_topic"),
        topic("goal_pose_topic"),
        topic("skill_action"),
        topic("map_frame"),
    );
    let e = |what: &str, name: &str| format!("creating {what} '{name}'");
    let mut images =
        node.subscribe::<Image>(&image_topic, image_qos.clone()).with_context(|| e("subscription", &image_topic))?;
    let mut infos = node.subscribe::<CameraInfo>(&info_topic, qos()).with_context(|| e("subscription", &info_topic))?;
    let mut odoms = node.subscribe::<Odometry>(&odom_topic, qos()).with_context(|| e("subscription", &odom_topic))?;
    let mut goals = node.subscribe::<StringMsg>(&goal_topic, qos()).with_context(|| e("subscription", &goal_topic))?;
    // The ROS messages the node consumes, raw (CDR), for the run's recording: its run.mcap is
    // also a ROS log (rosbag2's MCAP layout). Without the message definitions (no ROS prefix on
    // this machine) the runs are recorded without them.
    let mut raw_types = vec![
        (odom_topic.clone(), "nav_msgs/msg/Odometry"),
        (info_topic.clone(), "sensor_msgs/msg/CameraInfo"),
        (goal_topic.clone(), "std_msgs/msg/String"),
    ];
    if image_every > 0 {
        raw_types.push((image_topic.clone(), "sensor_msgs/msg/Image"));
    }
    let ros_channels: Vec<RosChannel> =
        match crate::ros_msgdef::definitions(raw_types.iter().map(|(_, t)| *t), &crate::ros_msgdef::prefixes()) {
            Ok(defs) => raw_types
                .iter()
                .zip(defs)
                .map(|((topic, ty), definition)| RosChannel {
                    topic: topic.clone(),
                    type_name: ty.to_string(),
                    definition,
                })
                .collect(),
            Err(err) => {
                eprintln!("arbor: runs are recorded without the ROS messages: {err:#}");
                Vec::new()
            }
        };
    let mut raw_subs = Vec::new();
    for c in &ros_channels {
        let q = if c.type_name.ends_with("/Image") { image_qos.clone() } else { qos() };
        raw_subs.push(node.subscribe_raw(&c.topic, &c.type_name, q).with_context(|| e("raw subscription", &c.topic))?);
    }
    // Status is latched (transient local): a late subscriber still gets the latest.
    let status_pub = node
        .create_publisher::<StringMsg>(&status_topic, qos().transient_local())
        .with_context(|| e("publisher", &status_topic))?;
    let markers_pub = node
        .create_publisher::<MarkerArray>(&entities_topic, qos())
        .with_context(|| e("publisher", &entities_topic))?;
    let cmd_vel =
        node.create_publisher::<Twist>(&cmd_vel_topic, qos()).with_context(|| e("publisher", &cmd_vel_topic))?;
    let goal_pose = node
        .create_publisher::<PoseStamped>(&goal_pose_topic, qos())
        .with_context(|| e("publisher", &goal_pose_topic))?;
    let client =
        node.create_action_client::<ExecuteSkill>(&skill_action).with_context(|| e("action client", &skill_action))?;
    let server_up = Rc::new(RefCell::new(false));
    let server_wait = r2r::Node::is_available(&client).map_err(|e| anyhow!("{e}"))?;

    let mut clock = NodeClock { clock: node.get_ros_clock(), origin: None, last: SimTime::ZERO };
    let out = Rc::new(Outputs { cmd_vel, goal_pose, map_frame: map_frame.clone(), clock: node.get_ros_clock() });
    let (declared, watchers) = match &manifest {
        Some(m) => {
            let (d, w) = crate::ros_skills::Declared::create(
                &mut node,
                m,
                crate::ros_iface::from_env(),
                cfg.places.clone(),
                map_frame.clone(),
                qos(),
            )?;
            (Some(d), w)
        }
        None => (None, Vec::new()),
    };
    let mut robot = RosRobot::new(
        out.clone(),
        client,
        skill_action.clone(),
        server_up.clone(),
        cfg.places.clone(),
        cfg.navigation.clone(),
    );
    robot.declared = declared;
    // The runtime: working memory, the run in progress and its records (the simulator's, too).
    let recorded_skills = manifest.as_deref().map(arbor_runtime::skills::recorded);
    let registry = arbor_runtime::skills::registry_for(manifest.as_deref());
    let mut agent = Agent::new(registry, &cfg.memory, metrics.clone());
    // A robot's tree ticks cost little next to the meter: time one tick in 16.
    agent.sample_ticks_every(16);
    // The status message of each tick lists its skill events.
    agent.keep_last_tick(true);
    let mut fleet_stats = FleetStats::default();
    let scenario = format!("ros2:{fq_name}");
    let pipeline_cfg: Option<PipelineConfig> = if cfg.perception.enabled {
        let mut pc = crate::perceive_cmd::pipeline_config(cfg.perception.config.as_deref())?;
        pc.detector.threads = cfg.perception.threads;
        Some(pc)
    } else {
        None
    };
    let mut pipeline: Option<Pipeline> = None;
    let mut perception_off = false;
    let mut frames = 0u64;
    let mut dropped = 0u64;

    println!(
        "arbor: node {fq_name} up: goals on '{goal_topic}', status on '{status_topic}', skills via '{skill_action}', \
         runs in {}",
        out_root.display()
    );
    let publish_status = |v: &serde_json::Value| {
        if let Err(e) = status_pub.publish(&StringMsg { data: v.to_string() }) {
            eprintln!("arbor: publishing status failed: {e}");
        }
    };
    publish_status(&serde_json::json!({"state": "idle", "node": fq_name}));

    let mut planning: Option<(String, tokio::task::JoinHandle<PlanResult>)> = None;
    let mut n_runs = 0u64;
    // Odometry when the run started: the run's distance is what was driven since.
    let mut odometry_at_start = 0.0;
    let mut pending: Option<Pending> = match &cfg.tree {
        Some(p) => Some(Pending {
            tree: arbor_behaviors::load_tree(p)?,
            source: p.display().to_string(),
            goal: String::new(),
            author: "hand".into(),
            plan: None,
        }),
        None => None,
    };
    let period = Duration::from_secs_f64(1.0 / tick_hz);
    let mut last_markers = Instant::now();

    // The async side on tokio: rcl spins on a blocking thread of the runtime (messages in, action
    // replies); each subscription is a task that files what arrives in the inbox; action goals
    // are tasks too (`RosRobot`). The tick below stays synchronous: it takes the inbox as it is.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the node's tokio runtime")?;
    let tasks = tokio::task::LocalSet::new();
    let _guard = tasks.enter();
    let _runtime_guard = runtime.enter();
    let node = Arc::new(std::sync::Mutex::new(node));
    let spinning = Arc::new(AtomicBool::new(true));
    let spinner = {
        let (node, spinning) = (node.clone(), spinning.clone());
        runtime.spawn_blocking(move || {
            while spinning.load(Ordering::SeqCst) {
                match node.lock() {
                    Ok(mut n) => n.spin_once(Duration::from_millis(5)),
                    Err(_) => break,
                }
            }
        })
    };
    // Declared after the runtime, so dropped before it (on any early return too): the spinning
    // thread ends, and the runtime's drop, which waits for its blocking threads, does not hang.
    let _stop_spinning = StopOnDrop(spinning.clone());
    let inbox = Rc::new(RefCell::new(Inbox::default()));
    for w in watchers {
        tasks.spawn_local(w);
    }
    {
        let up = server_up.clone();
        tasks.spawn_local(async move {
            let answered = server_wait.await;
            *up.borrow_mut() = answered.is_ok();
        });
    }
    let ib = inbox.clone();
    tasks.spawn_local(async move {
        while let Some(o) = odoms.next().await {
            let p = &o.pose.pose;
            ib.borrow_mut().poses.push(Pose2::new(p.position.x, p.position.y, yaw_of(&p.orientation)));
        }
    });
    let ib = inbox.clone();
    tasks.spawn_local(async move {
        while let Some(i) = infos.next().await {
            ib.borrow_mut().camera_info = Some(i);
        }
    });
    let (ib, m) = (inbox.clone(), metrics.clone());
    tasks.spawn_local(async move {
        while let Some(img) = images.next().await {
            let mut inbox = ib.borrow_mut();
            if inbox.frame.replace(img).is_some() {
                // A newer frame came before this one was perceived.
                inbox.superseded += 1;
                if let Some(m) = &m {
                    m.frames_dropped.inc();
                }
            }
        }
    });
    let ib = inbox.clone();
    tasks.spawn_local(async move {
        while let Some(g) = goals.next().await {
            ib.borrow_mut().goals.push(g.data);
        }
    });
    // Raw copies for the run's recording, images decimated by `record_image_every`.
    for (i, mut sub) in raw_subs.into_iter().enumerate() {
        let image = ros_channels[i].type_name.ends_with("/Image");
        let ib = inbox.clone();
        tasks.spawn_local(async move {
            let mut seen = 0u64;
            while let Some(bytes) = sub.next().await {
                seen += 1;
                if image && !(seen - 1).is_multiple_of(image_every.max(1)) {
                    continue;
                }
                ib.borrow_mut().raw.push((i, bytes));
            }
        });
    }
    let mut pacing = tokio::time::interval(period);
    pacing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut camera_info: Option<CameraInfo> = None;

    while !stop.load(Ordering::SeqCst) {
        // Between ticks the tasks run; wake at least every 100 ms to see a signal.
        if tasks.block_on(&runtime, tokio::time::timeout(Duration::from_millis(100), pacing.tick())).is_err() {
            continue;
        }
        let now = clock.now();
        robot.now = now;
        // Messages in: every odometry pose (distance driven), newest camera info and frame.
        let (frame_msg, mut new_goals, raw_in) = {
            let mut inbox = inbox.borrow_mut();
            for p in inbox.poses.drain(..) {
                robot.set_pose(p);
            }
            if let Some(i) = inbox.camera_info.take() {
                camera_info = Some(i);
            }
            dropped += std::mem::take(&mut inbox.superseded);
            // A goal that starts a run is in its recording: the run starts below, after which
            // the raw messages are written.
            (inbox.frame.take(), std::mem::take(&mut inbox.goals), std::mem::take(&mut inbox.raw))
        };
        // Remote goals from the fleet: words, or a tree given with them.
        for g in fleet.as_ref().map(crate::fleet::Link::goals).unwrap_or_default() {
            new_goals.push(match g.tree {
                Some(mut t) => {
                    if !t.lines().any(|l| l.starts_with("goal:")) {
                        t = format!("goal: {:?}\n{t}", g.goal);
                    }
                    t
                }
                None => g.goal,
            });
        }

        // A new goal replaces what runs: halt it, close its records.
        for text in new_goals {
            if agent.is_running() {
                agent.halt(now, &mut robot, Stop::Outside("replaced by a new goal".into()));
                let f = agent.finish(now, run_end(&robot, odometry_at_start)).context("closing the run's records")?;
                fleet_stats.finished(&f, fleet.as_ref());
                println!("arbor: halted for a new goal ({})", f.dir.display());
            }
            // ... and what was about to run: a plan in flight, a tree not started yet.
            planning = None;
            pending = None;
            match read_goal(&text, &goal_topic) {
                Ok(GoalText::Tree(tree)) => {
                    let goal = tree.goal.clone().unwrap_or_else(|| tree.name.clone());
                    let source = format!("<{goal_topic}>");
                    pending = Some(Pending { tree, source, goal, author: "hand".into(), plan: None });
                }
                Ok(GoalText::Words(goal)) => {
                    publish_status(&serde_json::json!({"state": "planning", "goal": goal}));
                    let context = plan_context(&cfg, &agent.memory);
                    let mut plan_args = args.plan.clone();
                    plan_args.metrics = metrics.clone();
                    let g = goal.clone();
                    let m = metrics.clone();
                    let worker = tokio::task::spawn_blocking(move || {
                        // Names are checked by the planner's grammar and the tree check; whether
                        // a place is reachable is the navigator's call on a robot (no map here).
                        let check = |_: &Tree| Ok(());
                        let started = Instant::now();
                        let planned = crate::plan::plan_in(&g, context, &check, 0, &plan_args);
                        if let Some(m) = &m {
                            crate::plan::observe(m, &planned, started.elapsed());
                        }
                        planned.map(|o| (o.tree.tree().clone(), o.model.clone(), o.record()))
                    });
                    planning = Some((goal, worker));
                }
                Err(e) => publish_status(&serde_json::json!({"state": "error", "error": format!("{e:#}")})),
            }
        }
        if let Some((goal, worker)) = planning.as_mut()
            && worker.is_finished()
            && let Some(done) = worker.now_or_never()
        {
            match done {
                Ok(Ok((tree, model, record))) => {
                    let goal = goal.clone();
                    pending =
                        Some(Pending { tree, source: "<planner>".into(), goal, author: model, plan: Some(record) });
                    planning = None;
                }
                Ok(Err(e)) => {
                    publish_status(&serde_json::json!({"state": "error", "goal": goal, "error": format!("{e:#}")}));
                    planning = None;
                }
                Err(e) => {
                    let error = format!("the planner stopped: {e}");
                    publish_status(&serde_json::json!({"state": "error", "goal": goal, "error": error}));
                    planning = None;
                }
            }
        }
        if let Some(p) = pending.take() {
            n_runs += 1;
            let goal =
                if p.goal.is_empty() { p.tree.goal.clone().unwrap_or_else(|| p.tree.name.clone()) } else { p.goal };
            let mut entities: Vec<String> = cfg.people.iter().chain(cfg.objects.iter()).cloned().collect();
            entities.extend(agent.memory.entities().map(|e| e.id.to_string()));
            let spec = RunSpec {
                dir: out_root.join(format!("{n_runs:03}-{}-{}", now.as_secs_f64() as u64, slug(&goal))),
                scenario: scenario.clone(),
                scenario_text: None,
                vocabulary: Vocabulary { places: cfg.places.keys().cloned().collect(), entities },
                tree: p.tree,
                tree_source: p.source,
                tree_author: p.author,
                goal: goal.clone(),
                seed: 0,
                tick_hz,
                plan: p.plan,
                plan_context: plan_context(&cfg, &agent.memory),
                ros_channels: ros_channels.clone(),
                skills: recorded_skills.clone(),
            };
            match agent.start(now, spec) {
                Ok(dir) => {
                    odometry_at_start = robot.odometry_m;
                    let tree = agent.current().map(|(_, _, t)| t.to_string()).unwrap_or_default();
                    println!("arbor: running '{tree}' ({})", dir.display());
                }
                Err(e) => {
                    publish_status(&serde_json::json!({"state": "error", "goal": goal, "error": format!("{e:#}")}))
                }
            }
        }

        for (i, bytes) in raw_in {
            agent.record_ros(i, now, &bytes);
        }

        // Perceive: the newest frame through the pipeline, into memory (and the run's records).
        let mut perception = Perception::default();
        if let (Some(img), Some(pc), false) = (frame_msg, &pipeline_cfg, perception_off) {
            let pose = robot.pose.unwrap_or_default();
            if pipeline.is_none() {
                let hfov = match &camera_info {
                    Some(ci) if ci.k.len() == 9 && ci.k[0] > 0.0 && ci.width > 0 => {
                        2.0 * (f64::from(ci.width) / (2.0 * ci.k[0])).atan()
                    }
                    _ => cfg.perception.hfov_deg.to_radians(),
                };
                let cam = CameraModel::from_fov(img.width, img.height, hfov, cfg.perception.mount_height_m);
                match Pipeline::new(pc.clone(), cam) {
                    Ok(p) => pipeline = Some(p),
                    Err(e) => {
                        // A robot without its detector still runs its trees: say so, go on blind.
                        let msg = format!("perception disabled: starting the pipeline failed: {e}");
                        eprintln!("arbor: {msg}");
                        publish_status(&serde_json::json!({"state": "error", "error": msg}));
                        perception_off = true;
                    }
                }
            }
            let frame = agent.time(Stage::FrameDecode, || {
                Frame::from_raw(
                    now,
                    img.width,
                    img.height,
                    &img.encoding,
                    img.step as usize,
                    &img.data,
                    format!("{image_topic}#{}", frames),
                )
            });
            frames += 1;
            let output = match frame {
                Ok(f) => pipeline.as_mut().map(|p| {
                    let out = agent.time(Stage::Perceive, || p.process(&f, pose));
                    agent.record_pipeline(p.timings());
                    out
                }),
                Err(e) => {
                    eprintln!("arbor: dropped a frame: {e}");
                    None
                }
            };
            let perceived = matches!(output, Some(Ok(_)));
            match output {
                Some(Ok(fo)) => perception = Perception::of_frame(&fo),
                Some(Err(e)) => {
                    dropped += 1;
                    eprintln!("arbor: perception failed on a frame: {e}");
                }
                None => dropped += 1,
            }
            if let (Some(m), false) = (&metrics, perceived) {
                m.frames_dropped.inc();
            }
        } else if pipeline_cfg.is_none() || perception_off {
            // No camera pipeline: memory still ages (entities told about stay, none in view).
            perception.observations = Some(Vec::new());
        }
        let any_events = perception.observations.is_some();
        agent.perceive(now, perception, &robot, None).context("recording perception")?;
        if last_markers.elapsed() >= Duration::from_millis(200) || any_events {
            last_markers = Instant::now();
            let markers = entity_markers(&agent.memory, &map_frame, now_msg(&out.clock));
            if let Err(e) = markers_pub.publish(&markers) {
                eprintln!("arbor: publishing entities failed: {e}");
            }
        }

        // Decide and act.
        let Some(status) = agent.tick(now, &mut robot).context("recording the tick")? else { continue };
        publish_status(&tick_status(&agent, status, now));
        if status.is_done() {
            let f = agent.finish(now, run_end(&robot, odometry_at_start)).context("closing the run's records")?;
            fleet_stats.finished(&f, fleet.as_ref());
            let outcome = f.summary.outcome;
            println!("arbor: '{}' finished: {outcome} ({})", f.summary.tree, f.dir.display());
            publish_status(&serde_json::json!({
                "state": if outcome == Outcome::Success { "succeeded" } else { "failed" },
                "goal": f.summary.goal, "tree": f.summary.tree, "outcome": outcome.to_string(),
                "run_dir": f.dir.display().to_string(), "frames": frames, "dropped_frames": dropped,
            }));
        }
    }

    // SIGINT/SIGTERM: halt the tree (stops motion, cancels remote skills), finish the records.
    let now = clock.now();
    robot.now = now;
    if agent.is_running() {
        agent.halt(now, &mut robot, Stop::Outside("the node was stopped".into()));
        let f = agent.finish(now, run_end(&robot, odometry_at_start)).context("closing the run's records")?;
        fleet_stats.finished(&f, fleet.as_ref());
        let dir = f.dir.display().to_string();
        publish_status(&serde_json::json!({"state": "halted", "goal": f.summary.goal, "run_dir": dir}));
        println!("arbor: halted ({dir})");
    }
    out.twist(0.0);
    // Let the last messages (status, cancel requests) leave before the node goes.
    tasks.block_on(&runtime, tokio::time::sleep(Duration::from_millis(100)));
    spinning.store(false, Ordering::SeqCst);
    let _ = tasks.block_on(&runtime, spinner);
    println!("arbor: node stopped ({frames} frames, {dropped} dropped)");
    Ok(ExitCode::SUCCESS)
}

/// What the fleet hears about the node's runs; each finished run's episode goes to the outbox.
#[derive(Default)]
struct FleetStats {
    runs: u64,
    successes: u64,
    last_outcome: String,
}

impl FleetStats {
    fn finished(&mut self, f: &arbor_runtime::Finished, link: Option<&crate::fleet::Link>) {
        self.runs += 1;
        self.successes += u64::from(f.summary.outcome == Outcome::Success);
        self.last_outcome = f.summary.outcome.to_string();
        let Some(link) = link else { return };
        link.set_metrics(serde_json::json!({
            "robot": link.cfg.robot_id, "runs": self.runs, "successes": self.successes,
            "last_outcome": self.last_outcome,
        }));
        // On disk first: a broker that is away loses nothing.
        match link.queue_run(&f.dir) {
            Ok(id) => println!("arbor: episode {id} queued for the fleet"),
            Err(e) => eprintln!("arbor: queuing {} for the fleet failed: {e:#}", f.dir.display()),
        }
    }
}

/// The node's time: the ROS clock (simulated under use_sim_time) since the node's first reading
/// of it; never going back (a simulator reset holds the time until the clock passes it again).
struct NodeClock {
    clock: Arc<std::sync::Mutex<r2r::Clock>>,
    origin: Option<Duration>,
    last: SimTime,
}

impl NodeClock {
    fn now(&mut self) -> SimTime {
        let t = self.clock.lock().ok().and_then(|mut c| c.get_now().ok()).unwrap_or_default();
        // Under use_sim_time the clock reads zero until the first /clock message.
        if t.is_zero() {
            return self.last;
        }
        let origin = *self.origin.get_or_insert(t);
        self.last = self.last.max(SimTime::from_secs_f64(t.saturating_sub(origin).as_secs_f64()));
        self.last
    }
}

/// A tree waiting to start: sent as a tree, or planned from words.
struct Pending {
    tree: Tree,
    source: String,
    goal: String,
    author: String,
    plan: Option<PlanRecord>,
}

/// What the robot adds to a run's summary: the distance driven (no criteria, photos from memory).
fn run_end(robot: &RosRobot, odometry_at_start: f64) -> RunEnd {
    RunEnd { distance_m: robot.odometry_m - odometry_at_start, ..RunEnd::default() }
}

/// The status message of a tick: the running actions and the skill events of the tick.
fn tick_status(agent: &Agent, status: NodeStatus, now: SimTime) -> serde_json::Value {
    let running: Vec<String> = agent
        .executor()
        .map(|ex| {
            ex.nodes()
                .iter()
                .zip(ex.statuses())
                .filter(|(n, s)| *s == NodeStatus::Running && n.category.xml_name() == "Action")
                .map(|(n, _)| n.path.clone())
                .collect()
        })
        .unwrap_or_default();
    let state = match status {
        NodeStatus::Success => "succeeded",
        NodeStatus::Failure => "failed",
        _ => "running",
    };
    let skills: Vec<serde_json::Value> = agent
        .last_tick()
        .iter()
        .filter_map(|r| match &r.event {
            TickEvent::SkillStarted { skill, node, .. } => {
                Some(serde_json::json!({"skill": skill, "node": node, "event": "started"}))
            }
            TickEvent::SkillFinished { skill, node, success, detail, .. } => Some(
                serde_json::json!({"skill": skill, "node": node, "event": "finished", "success": success, "detail": detail}),
            ),
            TickEvent::SkillHalted { skill, node, .. } => {
                Some(serde_json::json!({"skill": skill, "node": node, "event": "halted"}))
            }
            _ => None,
        })
        .collect();
    let (dir, goal, tree) = agent.current().map(|(d, g, t)| (d.display().to_string(), g, t)).unwrap_or_default();
    serde_json::json!({
        "state": state,
        "goal": goal,
        "tree": tree,
        "tick": agent.executor().map(|e| e.stats().ticks).unwrap_or(0),
        "t_s": now.as_secs_f64(),
        "running": running,
        "skills": skills,
        "run_dir": dir,
    })
}

fn plan_context(cfg: &NodeConfig, memory: &WorkingMemory) -> arbor_planner::PlanContext {
    let mut people: Vec<String> = cfg.people.clone();
    let mut objects: Vec<String> = cfg.objects.clone();
    for e in memory.entities() {
        let list = if e.kind == arbor_core::EntityKind::Person { &mut people } else { &mut objects };
        if !list.iter().any(|n| n == e.id.as_str()) {
            list.push(e.id.to_string());
        }
    }
    arbor_planner::PlanContext {
        places: cfg.places.keys().cloned().collect(),
        people,
        objects,
        in_view: memory.in_view().map(|e| e.id.to_string()).collect(),
        recent_events: memory.recent_events().map(|e| e.text.clone()).collect(),
        remembered: last_seen(cfg, memory),
        examples: Vec::new(),
    }
}

/// "alice was last seen in the office": each remembered entity at its nearest configured place,
/// the same lines the simulator's planner context gives (and the fine-tuned planner learned).
fn last_seen(cfg: &NodeConfig, memory: &WorkingMemory) -> Vec<String> {
    memory
        .entities()
        .filter_map(|e| {
            let place = arbor_runtime::skills::nearest_place(&cfg.places, e.position)?;
            Some(format!("{} was last seen in the {place}", e.id))
        })
        .collect()
}

fn entity_markers(memory: &WorkingMemory, frame: &str, stamp: r2r::builtin_interfaces::msg::Time) -> MarkerArray {
    let mut markers = vec![Marker {
        header: Header { stamp: stamp.clone(), frame_id: frame.to_string() },
        ns: "arbor_entities".into(),
        action: Marker::DELETEALL as i32,
        ..Default::default()
    }];
    for (i, e) in memory.entities().enumerate() {
        let person = e.kind == arbor_core::EntityKind::Person;
        let color = if e.in_view {
            ColorRGBA { r: 0.1, g: 0.8, b: 0.2, a: 1.0 }
        } else {
            ColorRGBA { r: 0.6, g: 0.6, b: 0.6, a: 0.6 }
        };
        let pose = r2r::geometry_msgs::msg::Pose {
            position: Point { x: e.position.x, y: e.position.y, z: if person { 0.9 } else { 0.3 } },
            orientation: quat_of(0.0),
        };
        let header = Header { stamp: stamp.clone(), frame_id: frame.to_string() };
        markers.push(Marker {
            header: header.clone(),
            ns: "arbor_entities".into(),
            id: (2 * i) as i32,
            type_: if person { Marker::CYLINDER as i32 } else { Marker::CUBE as i32 },
            action: Marker::ADD as i32,
            pose: pose.clone(),
            scale: if person { Vector3 { x: 0.4, y: 0.4, z: 1.8 } } else { Vector3 { x: 0.3, y: 0.3, z: 0.3 } },
            color: color.clone(),
            ..Default::default()
        });
        let mut label_pose = pose;
        label_pose.position.z += 1.1;
        markers.push(Marker {
            header,
            ns: "arbor_entities".into(),
            id: (2 * i + 1) as i32,
            type_: Marker::TEXT_VIEW_FACING as i32,
            action: Marker::ADD as i32,
            pose: label_pose,
            scale: Vector3 { x: 0.0, y: 0.0, z: 0.25 },
            color,
            text: format!("{} ({})", e.id, e.label),
            ..Default::default()
        });
    }
    MarkerArray { markers }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use crate::ros_robot::wrap;
    use std::f64::consts::PI;

    #[test]
    fn goals_are_trees_or_words() {
        assert!(matches!(read_goal("photograph alice", "g").unwrap(), GoalText::Words(_)));
        let yaml = "name: t\nroot:\n  say: {text: hi}\n";
        assert!(matches!(read_goal(yaml, "g"), Ok(GoalText::Tree(_))));
        let bad = "name: t\nroot:\n  sequence: 3\n";
        assert!(read_goal(bad, "g").is_err());
        assert!(read_goal("  ", "g").is_err());
        assert!(read_goal("<root><broken", "g").is_err());
    }

    #[test]
    fn node_name_follows_remapping() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(crate::ros_config::fq_name(&v(&["-r", "a:=b"]), "arbor"), "/arbor");
        assert_eq!(crate::ros_config::fq_name(&v(&["-r", "__node:=robot1_arbor"]), "arbor"), "/robot1_arbor");
        assert!((wrap(3.0 * PI) - PI).abs() < 1e-9 || (wrap(3.0 * PI) + PI).abs() < 1e-9);
        assert!((yaw_of(&quat_of(1.2)) - 1.2).abs() < 1e-9);
    }
}
