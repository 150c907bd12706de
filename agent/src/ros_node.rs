//! `arbor run`: arbor as a ROS 2 node (r2r, feature `ros2`).
//!
//! One thread, one loop at `tick_hz`: spin rcl (messages in), perceive the newest camera frame
//! (detector -> tracker -> re-id -> working memory), tick the behavior tree against the robot's
//! skills, publish status, entity markers and motion. Goals arrive as `std_msgs/String`: a tree
//! (YAML or BT.CPP XML) runs as given; words go to the LLM planner (feature `llm`) on a worker
//! thread, so the loop never blocks. Skills:
//! - `navigate_to`: `geometry_msgs/PoseStamped` on `goal_pose` (what Nav2's bt_navigator and
//!   RViz use), arrival judged on odometry; halting sends the current pose (stop there);
//! - `look_at`, `scan`: `cmd_vel` turns closed on odometry's heading; `wait`: the clock;
//! - every other skill (`capture_photo`, `say`, ...): a goal of the `arbor_msgs/action/ExecuteSkill`
//!   action to the robot's skill server; halting the node cancels the goal.
//!
//! Each goal gets a run directory (tree, ticks, events, episodic memory in SQLite, outcome).
//! SIGINT/SIGTERM halt the tree (motion stops, remote goals are cancelled), finish the
//! records and exit 0.

use crate::plan::PlanArgs;
use crate::ros_config::{NodeConfig, check_ros_args, ros_args, ros_param};
use anyhow::{Context as _, Result, anyhow, bail};
use arbor_behaviors::record::{JsonlSink, RecordOut, Recorder, TickEvent, TickRecord};
use arbor_behaviors::{
    CallId, Executor, NodeLibrary, NodeStatus, Robot, SkillCall, SkillStatus, Tree, Value, Vocabulary, conditions, xml,
    yaml,
};
use arbor_memory::{EpisodicStore, Event, EventKind, WorkingMemory};
use arbor_perception::camera::CameraModel;
use arbor_perception::frame::Frame;
use arbor_perception::pipeline::{Pipeline, PipelineConfig};
use arbor_perception::{Point2, Pose2, SimTime};
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use r2r::arbor_msgs::action::ExecuteSkill::Action as ExecuteSkill;
use r2r::geometry_msgs::msg::{Point, PoseStamped, Quaternion, Twist, Vector3};
use r2r::nav_msgs::msg::Odometry;
use r2r::sensor_msgs::msg::{CameraInfo, Image};
use r2r::std_msgs::msg::{ColorRGBA, Header, String as StringMsg};
use r2r::visualization_msgs::msg::{Marker, MarkerArray};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::f64::consts::PI;
use std::fs::File;
use std::future::Future;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// `arbor run` options (the `--ros-args ...` part is read by rcl from the process arguments).
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub config: Option<PathBuf>,
    pub out: Option<PathBuf>,
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

/// The node's name after `-r __node:=name`.
fn node_name(ros: &[String]) -> String {
    ros.windows(2)
        .filter(|w| w[0] == "-r" || w[0] == "--remap")
        .filter_map(|w| w[1].strip_prefix("__node:=").or_else(|| w[1].split_once(":__node:=").map(|(_, n)| n)))
        .next_back()
        .unwrap_or("arbor")
        .to_string()
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

/// A header stamp from the node's ROS clock (simulated time under use_sim_time).
fn now_msg(clock: &std::sync::Mutex<r2r::Clock>) -> r2r::builtin_interfaces::msg::Time {
    let d = clock.lock().ok().and_then(|mut c| c.get_now().ok()).unwrap_or_default();
    r2r::Clock::to_builtin_time(&d)
}

fn yaw_of(q: &Quaternion) -> f64 {
    (2.0 * (q.w * q.z + q.x * q.y)).atan2(1.0 - 2.0 * (q.y * q.y + q.z * q.z))
}

fn quat_of(yaw: f64) -> Quaternion {
    Quaternion { x: 0.0, y: 0.0, z: (yaw / 2.0).sin(), w: (yaw / 2.0).cos() }
}

fn wrap(a: f64) -> f64 {
    let mut a = (a + PI) % (2.0 * PI);
    if a < 0.0 {
        a += 2.0 * PI;
    }
    a - PI
}

/// What the skills publish; shared by the robot and the loop.
struct Outputs {
    cmd_vel: r2r::Publisher<Twist>,
    goal_pose: r2r::Publisher<PoseStamped>,
    map_frame: String,
    clock: Arc<std::sync::Mutex<r2r::Clock>>,
}

impl Outputs {
    fn twist(&self, angular_z: f64) {
        let t = Twist { linear: Vector3::default(), angular: Vector3 { x: 0.0, y: 0.0, z: angular_z } };
        if let Err(e) = self.cmd_vel.publish(&t) {
            eprintln!("arbor: publishing cmd_vel failed: {e}");
        }
    }
    fn goal(&self, x: f64, y: f64, yaw: f64) {
        let msg = PoseStamped {
            header: Header { stamp: now_msg(&self.clock), frame_id: self.map_frame.clone() },
            pose: r2r::geometry_msgs::msg::Pose { position: Point { x, y, z: 0.0 }, orientation: quat_of(yaw) },
        };
        if let Err(e) = self.goal_pose.publish(&msg) {
            eprintln!("arbor: publishing goal_pose failed: {e}");
        }
    }
}

/// What the planner thread sends back: the tree and what to record about the plan.
type PlanResult = Result<(Tree, serde_json::Value)>;

type RemoteFuture = Pin<Box<dyn Future<Output = SkillStatus>>>;

enum Running {
    Nav { goal: Point2, label: String, deadline: SimTime },
    Turn { yaw: f64, label: String, deadline: SimTime },
    Spin { turned: f64, last: Option<f64>, deadline: SimTime },
    Wait { until: SimTime },
    Remote { fut: RemoteFuture, handle: Rc<RefCell<Option<r2r::ActionClientGoal<ExecuteSkill>>>>, skill: String },
}

/// The robot as the tree sees it, over ROS 2.
struct RosRobot {
    out: Rc<Outputs>,
    client: r2r::ActionClient<ExecuteSkill>,
    action_name: String,
    server_up: Rc<RefCell<bool>>,
    places: BTreeMap<String, [f64; 2]>,
    nav: crate::ros_config::NavigationSection,
    pose: Option<Pose2>,
    now: SimTime,
    running: BTreeMap<CallId, Running>,
    photographed: BTreeSet<String>,
    /// Memory events from skills (photo taken, arrived, said), drained after each tick.
    events: Vec<Event>,
}

impl RosRobot {
    fn target_of(&self, name: &str, memory: &WorkingMemory) -> Option<(Point2, bool)> {
        if let Some(p) = self.places.get(name) {
            return Some((Point2::new(p[0], p[1]), true));
        }
        memory.entity(name).map(|e| (e.position, false))
    }

    fn remote(&mut self, call: &SkillCall<'_>) -> Result<Running, String> {
        if !*self.server_up.borrow() {
            return Err(format!("no skill server answers on '{}' (arbor_msgs/action/ExecuteSkill)", self.action_name));
        }
        let params: serde_json::Map<String, serde_json::Value> = call
            .params
            .iter()
            .map(|(k, v)| {
                let j = match v {
                    Value::Number(n) => serde_json::json!(n),
                    Value::Bool(b) => serde_json::json!(b),
                    Value::Text(t) => serde_json::json!(t),
                };
                (k.clone(), j)
            })
            .collect();
        let goal = r2r::arbor_msgs::action::ExecuteSkill::Goal {
            skill: call.skill.to_string(),
            node: call.node.to_string(),
            params_json: serde_json::Value::Object(params).to_string(),
        };
        let req = self.client.send_goal_request(goal).map_err(|e| format!("sending the goal failed: {e}"))?;
        let handle = Rc::new(RefCell::new(None));
        let h = handle.clone();
        let skill = call.skill.to_string();
        let fut = async move {
            let (goal, result, _feedback) = match req.await {
                Ok(x) => x,
                Err(e) => return SkillStatus::Failure(format!("the skill server refused {skill}: {e}")),
            };
            *h.borrow_mut() = Some(goal);
            match result.await {
                Ok((status, r)) if r.success && status == r2r::GoalStatus::Succeeded => SkillStatus::Success(r.message),
                Ok((status, r)) => SkillStatus::Failure(if r.message.is_empty() {
                    format!("{skill} ended {status:?}")
                } else {
                    r.message
                }),
                Err(e) => SkillStatus::Failure(format!("{skill}: no result from the skill server: {e}")),
            }
        };
        Ok(Running::Remote { fut: Box::pin(fut), handle, skill: call.skill.to_string() })
    }

    fn step(&mut self, id: CallId, call: &SkillCall<'_>) -> SkillStatus {
        let now = self.now;
        let pose = self.pose;
        let tol = self.nav.goal_tolerance_m;
        let htol = self.nav.heading_tolerance;
        let turn = self.nav.turn_speed;
        let Some(r) = self.running.get_mut(&id) else {
            return SkillStatus::Failure(format!("call {id} is not running"));
        };
        let status = match r {
            Running::Nav { goal, label, deadline } => match pose {
                Some(p) if p.position().distance(*goal) <= tol => SkillStatus::Success(format!("arrived at {label}")),
                _ if now >= *deadline => {
                    SkillStatus::Failure(format!("did not reach {label} within {} s", self.nav.timeout_s))
                }
                _ => SkillStatus::Running,
            },
            Running::Turn { yaw, label, deadline } => match pose {
                Some(p) => {
                    let err = wrap(*yaw - p.yaw);
                    if err.abs() <= htol {
                        self.out.twist(0.0);
                        SkillStatus::Success(format!("facing {label}"))
                    } else if now >= *deadline {
                        self.out.twist(0.0);
                        SkillStatus::Failure(format!("could not turn to {label}"))
                    } else {
                        self.out.twist((1.5 * err).clamp(-turn, turn));
                        SkillStatus::Running
                    }
                }
                None if now >= *deadline => SkillStatus::Failure("no odometry: cannot turn".into()),
                None => SkillStatus::Running,
            },
            Running::Spin { turned, last, deadline } => {
                if let Some(p) = pose {
                    if let Some(l) = *last {
                        *turned += wrap(p.yaw - l).abs();
                    }
                    *last = Some(p.yaw);
                }
                if *turned >= 2.0 * PI - htol {
                    self.out.twist(0.0);
                    SkillStatus::Success("looked around".into())
                } else if now >= *deadline {
                    self.out.twist(0.0);
                    SkillStatus::Failure("scan did not complete a turn".into())
                } else {
                    self.out.twist(turn);
                    SkillStatus::Running
                }
            }
            Running::Wait { until } => {
                if now >= *until {
                    SkillStatus::Success("waited".into())
                } else {
                    SkillStatus::Running
                }
            }
            Running::Remote { fut, .. } => {
                let mut cx = Context::from_waker(Waker::noop());
                match fut.as_mut().poll(&mut cx) {
                    Poll::Pending => SkillStatus::Running,
                    Poll::Ready(s) => s,
                }
            }
        };
        if !status.is_running() {
            self.running.remove(&id);
            if let SkillStatus::Success(detail) = &status {
                let ev = match call.skill {
                    "capture_photo" => {
                        let who = call.text("entity").unwrap_or("");
                        if !who.is_empty() {
                            self.photographed.insert(who.to_string());
                        }
                        Some(Event::new(now, EventKind::PhotoTaken, format!("photo taken: {detail}")))
                    }
                    "navigate_to" => Some(Event::new(now, EventKind::Arrived, detail.clone())),
                    "say" => {
                        Some(Event::new(now, EventKind::Said, format!("said: {}", call.text("text").unwrap_or(""))))
                    }
                    _ => None,
                };
                self.events.extend(ev);
            }
        }
        status
    }
}

impl Robot for RosRobot {
    fn start(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        let now = self.now;
        let running = match call.skill {
            "navigate_to" => {
                let target = call.text("target").unwrap_or("");
                let Some((p, is_place)) = self.target_of(target, memory) else {
                    return SkillStatus::Failure(format!("unknown place or entity '{target}'"));
                };
                // Up to a person or object, not onto them: stop `standoff_m` short, facing them.
                let (gx, gy, yaw) = match (self.pose, is_place) {
                    (Some(r), false) => {
                        let d = r.position().distance(p).max(1e-6);
                        let k = ((d - self.nav.standoff_m) / d).max(0.0);
                        let yaw = (p.y - r.y).atan2(p.x - r.x);
                        (r.x + (p.x - r.x) * k, r.y + (p.y - r.y) * k, yaw)
                    }
                    (Some(r), true) => (p.x, p.y, (p.y - r.y).atan2(p.x - r.x)),
                    (None, _) => (p.x, p.y, 0.0),
                };
                self.out.goal(gx, gy, yaw);
                Running::Nav {
                    goal: Point2::new(gx, gy),
                    label: target.to_string(),
                    deadline: now.plus(SimTime::from_secs_f64(self.nav.timeout_s)),
                }
            }
            "look_at" => {
                let who = call.text("entity").unwrap_or("");
                let Some(e) = memory.entity(who) else {
                    return SkillStatus::Failure(format!("{who} has not been seen"));
                };
                let Some(r) = self.pose else { return SkillStatus::Failure("no odometry yet: cannot turn".into()) };
                let yaw = (e.position.y - r.y).atan2(e.position.x - r.x);
                Running::Turn {
                    yaw,
                    label: who.to_string(),
                    deadline: now.plus(SimTime::from_secs_f64(2.0 * PI / self.nav.turn_speed + 5.0)),
                }
            }
            "scan" => Running::Spin {
                turned: 0.0,
                last: self.pose.map(|p| p.yaw),
                deadline: now.plus(SimTime::from_secs_f64(4.0 * PI / self.nav.turn_speed + 5.0)),
            },
            "wait" => Running::Wait { until: now.plus(SimTime::from_secs_f64(call.number("seconds").unwrap_or(0.0))) },
            _ => match self.remote(call) {
                Ok(r) => r,
                Err(e) => return SkillStatus::Failure(e),
            },
        };
        self.running.insert(call.id, running);
        self.step(call.id, call)
    }

    fn poll(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemory) -> SkillStatus {
        self.step(call.id, call)
    }

    fn halt(&mut self, call: &SkillCall<'_>) {
        match self.running.remove(&call.id) {
            Some(Running::Nav { .. }) => {
                // Stop where the robot is: the navigator's new goal is its own pose.
                if let Some(p) = self.pose {
                    self.out.goal(p.x, p.y, p.yaw);
                }
                self.out.twist(0.0);
            }
            Some(Running::Turn { .. } | Running::Spin { .. }) => self.out.twist(0.0),
            Some(Running::Remote { handle, skill, .. }) => {
                if let Some(goal) = handle.borrow().as_ref() {
                    // The request goes out now; its answer is not waited for.
                    if let Err(e) = goal.cancel() {
                        eprintln!("arbor: cancelling {skill} failed: {e}");
                    }
                }
            }
            Some(Running::Wait { .. }) | None => {}
        }
    }

    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        if call.skill == "photographed" {
            let who = call.text("entity").unwrap_or("");
            return if self.photographed.contains(who) {
                SkillStatus::Success(format!("{who} has been photographed"))
            } else {
                SkillStatus::Failure(format!("no photo of {who} yet"))
            };
        }
        conditions::evaluate(call, memory)
    }
}

/// Tick records go to the run's ticks.jsonl and are kept for the status message of the tick.
struct NodeOut {
    jsonl: JsonlSink<BufWriter<File>>,
    tick: Vec<TickRecord>,
}

impl RecordOut for NodeOut {
    fn put(&mut self, record: TickRecord) {
        self.jsonl.write_line(&record);
        self.tick.push(record);
    }
}

/// One goal being carried out, with its records.
struct ActiveRun {
    dir: PathBuf,
    goal: String,
    tree_name: String,
    executor: Executor,
    sink: Recorder<NodeOut>,
    events: JsonlSink<BufWriter<File>>,
    episodic: EpisodicStore,
    status: NodeStatus,
    skill_calls: u64,
}

impl ActiveRun {
    fn remember(&mut self, memory: &mut WorkingMemory, ev: Event) -> Result<()> {
        self.events.write_line(&ev);
        memory.push_event(ev.clone());
        self.episodic.append(ev).with_context(|| format!("writing {}", self.dir.join("memory.sqlite").display()))
    }

    /// Ends the run: last event, records flushed, outcome written.
    fn finish(mut self, memory: &mut WorkingMemory, now: SimTime, outcome: &str, detail: &str) -> Result<PathBuf> {
        self.remember(memory, Event::new(now, EventKind::RunFinished, format!("run finished: {outcome}")))?;
        self.episodic.flush().with_context(|| format!("flushing {}", self.dir.display()))?;
        let dir = self.dir.clone();
        let io = |p: &Path, e: std::io::Error| anyhow!("writing {}: {e}", p.display());
        self.sink.out.jsonl.finish().map_err(|e| io(&dir.join("ticks.jsonl"), e))?;
        self.events.finish().map_err(|e| io(&dir.join("events.jsonl"), e))?;
        let stats = self.executor.stats();
        let summary = serde_json::json!({
            "goal": self.goal,
            "tree": self.tree_name,
            "outcome": outcome,
            "detail": detail,
            "tree_status": self.status,
            "ticks": stats.ticks,
            "halts": stats.halts,
            "skill_calls": self.skill_calls,
            "t_s": now.as_secs_f64(),
        });
        let p = dir.join("outcome.json");
        std::fs::write(&p, format!("{}\n", serde_json::to_string_pretty(&summary)?)).map_err(|e| io(&p, e))?;
        Ok(dir)
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
    let name = node_name(&ros);
    check_ros_args(&ros, &name)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    let ctx = create_context()?;
    let mut node = r2r::Node::create(ctx, "arbor", "").map_err(|e| anyhow!("creating the ROS 2 node: {e}"))?;
    let fq_name = node.fully_qualified_name().unwrap_or_else(|_| format!("/{name}"));

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
    let tick_hz = params.number("tick_hz");
    if !(tick_hz > 0.0 && tick_hz <= 1000.0) {
        bail!("parameter tick_hz must be in (0, 1000], got {tick_hz}");
    }
    let depth = params.number("qos_depth").clamp(1.0, 1000.0) as usize;
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
        node.subscribe::<Image>(&image_topic, image_qos).with_context(|| e("subscription", &image_topic))?;
    let mut infos = node.subscribe::<CameraInfo>(&info_topic, qos()).with_context(|| e("subscription", &info_topic))?;
    let mut odoms = node.subscribe::<Odometry>(&odom_topic, qos()).with_context(|| e("subscription", &odom_topic))?;
    let mut goals = node.subscribe::<StringMsg>(&goal_topic, qos()).with_context(|| e("subscription", &goal_topic))?;
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
    let mut server_wait = Some(r2r::Node::is_available(&client).map_err(|e| anyhow!("{e}"))?.boxed_local());

    let start = Instant::now();
    let out = Rc::new(Outputs { cmd_vel, goal_pose, map_frame: map_frame.clone(), clock: node.get_ros_clock() });
    let mut robot = RosRobot {
        out: out.clone(),
        client,
        action_name: skill_action.clone(),
        server_up: server_up.clone(),
        places: cfg.places.clone(),
        nav: cfg.navigation.clone(),
        pose: None,
        now: SimTime::ZERO,
        running: BTreeMap::new(),
        photographed: BTreeSet::new(),
        events: Vec::new(),
    };

    let registry = arbor_sim::registry();
    let library = NodeLibrary::with_skills(&registry);
    let mut memory = WorkingMemory::with_config(&cfg.memory);
    let pipeline_cfg: Option<PipelineConfig> = if cfg.perception.enabled {
        let mut pc = crate::perceive_cmd::pipeline_config(cfg.perception.config.as_deref())?;
        pc.detector.threads = cfg.perception.threads;
        Some(pc)
    } else {
        None
    };
    let mut pipeline: Option<Pipeline> = None;
    let mut perception_off = false;
    let mut camera_info: Option<CameraInfo> = None;
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

    let mut active: Option<ActiveRun> = None;
    let mut planning: Option<(String, Receiver<PlanResult>)> = None;
    let mut n_runs = 0u64;
    // What the robot perceived while no goal ran (bounded): recorded at the start of the next
    // run, before its goal, so a face seen just before a goal arrives is in that run's records.
    let mut idle_events: std::collections::VecDeque<Event> = std::collections::VecDeque::new();
    const IDLE_EVENTS_MAX: usize = 1024;
    let mut pending_tree: Option<(Tree, String, String, Option<serde_json::Value>)> = match &cfg.tree {
        Some(p) => Some((arbor_behaviors::load_tree(p)?, p.display().to_string(), String::new(), None)),
        None => None,
    };
    let period = Duration::from_secs_f64(1.0 / tick_hz);
    let mut next = Instant::now();
    let mut last_markers = Instant::now();

    while !stop.load(Ordering::SeqCst) {
        let wait = next.saturating_duration_since(Instant::now());
        node.spin_once(wait.min(period));
        if Instant::now() < next {
            continue;
        }
        next += period;
        if next < Instant::now() {
            next = Instant::now() + period;
        }
        let now = SimTime::from_secs_f64(start.elapsed().as_secs_f64());
        robot.now = now;
        let mut cx = Context::from_waker(Waker::noop());
        if let Some(w) = server_wait.as_mut()
            && let Poll::Ready(r) = w.as_mut().poll(&mut cx)
        {
            *server_up.borrow_mut() = r.is_ok();
            server_wait = None;
        }
        // Messages in: newest odometry and camera info, newest frame.
        while let Poll::Ready(Some(o)) = odoms.poll_next_unpin(&mut cx) {
            let p = &o.pose.pose;
            robot.pose = Some(Pose2::new(p.position.x, p.position.y, yaw_of(&p.orientation)));
        }
        while let Poll::Ready(Some(i)) = infos.poll_next_unpin(&mut cx) {
            camera_info = Some(i);
        }
        let mut frame_msg = None;
        while let Poll::Ready(Some(img)) = images.poll_next_unpin(&mut cx) {
            if frame_msg.is_some() {
                dropped += 1;
            }
            frame_msg = Some(img);
        }
        let mut new_goal = None;
        while let Poll::Ready(Some(g)) = goals.poll_next_unpin(&mut cx) {
            new_goal = Some(g.data);
        }

        // Perceive.
        let mut perceived: Vec<Event> = Vec::new();
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
            let frame = Frame::from_raw(
                now,
                img.width,
                img.height,
                &img.encoding,
                img.step as usize,
                &img.data,
                format!("{image_topic}#{}", frames),
            );
            frames += 1;
            let output = match frame {
                Ok(f) => pipeline.as_mut().map(|p| p.process(&f, pose)),
                Err(e) => {
                    eprintln!("arbor: dropped a frame: {e}");
                    None
                }
            };
            match output {
                Some(Ok(fo)) => {
                    let (observations, attention) = arbor_sim::camera::split(&fo);
                    let changes = memory.update(now, &observations);
                    for (ids, kind, verb) in [
                        (&changes.appeared, EventKind::EntityAppeared, "came into view"),
                        (&changes.disappeared, EventKind::EntityLeft, "went out of view"),
                    ] {
                        for id in ids {
                            let mut ev = Event::new(now, kind, format!("{id} {verb}")).with_entity(id.clone());
                            if let Some(e) = memory.entity(id.as_str()) {
                                ev = ev.with_pose(e.position);
                            }
                            perceived.push(ev);
                        }
                    }
                    for (id, started) in attention {
                        let (kind, verb) = if started {
                            (EventKind::AttentionStarted, "started attending to the robot")
                        } else {
                            (EventKind::AttentionStopped, "stopped attending to the robot")
                        };
                        perceived.push(Event::new(now, kind, format!("{id} {verb}")).with_entity(id));
                    }
                }
                Some(Err(e)) => {
                    dropped += 1;
                    eprintln!("arbor: perception failed on a frame: {e}");
                }
                None => dropped += 1,
            }
        } else if pipeline_cfg.is_none() || perception_off {
            // No camera pipeline: memory still ages (entities told about stay, none in view).
            let _ = memory.update(now, &[]);
        }
        if last_markers.elapsed() >= Duration::from_millis(200) || !perceived.is_empty() {
            last_markers = Instant::now();
            let markers = entity_markers(&memory, &map_frame, now_msg(&out.clock));
            if let Err(e) = markers_pub.publish(&markers) {
                eprintln!("arbor: publishing entities failed: {e}");
            }
        }

        // A new goal replaces what runs: halt it, close its records.
        if let Some(text) = new_goal {
            if let Some(mut run) = active.take() {
                run.executor.halt(now, &mut robot, &memory, &mut run.sink);
                let dir = run.finish(&mut memory, now, "halted", "replaced by a new goal")?;
                println!("arbor: halted for a new goal ({})", dir.display());
            }
            planning = None;
            match read_goal(&text, &goal_topic) {
                Ok(GoalText::Tree(tree)) => {
                    let goal = tree.goal.clone().unwrap_or_else(|| tree.name.clone());
                    pending_tree = Some((tree, format!("<{goal_topic}>"), goal, None));
                }
                Ok(GoalText::Words(goal)) => {
                    publish_status(&serde_json::json!({"state": "planning", "goal": goal}));
                    let (tx, rx) = sync_channel(1);
                    let context = plan_context(&cfg, &memory);
                    let plan_args = args.plan.clone();
                    let g = goal.clone();
                    std::thread::spawn(move || {
                        // Names are checked by the planner's grammar and the tree check; whether
                        // a place is reachable is the navigator's call on a robot (no map here).
                        let check = |_: &Tree| Ok(());
                        let res = crate::plan::plan_in(&g, context, &check, 0, &plan_args).map(|o| {
                            let record = serde_json::json!({"plan": o.plan_text, "attempts": o.figures.attempts});
                            (o.tree.tree().clone(), record)
                        });
                        let _ = tx.send(res);
                    });
                    planning = Some((goal, rx));
                }
                Err(e) => publish_status(&serde_json::json!({"state": "error", "error": format!("{e:#}")})),
            }
        }
        if let Some((goal, rx)) = &planning {
            match rx.try_recv() {
                Ok(Ok((tree, record))) => {
                    pending_tree = Some((tree, "<planner>".into(), goal.clone(), Some(record)));
                    planning = None;
                }
                Ok(Err(e)) => {
                    publish_status(&serde_json::json!({"state": "error", "goal": goal, "error": format!("{e:#}")}));
                    planning = None;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    publish_status(
                        &serde_json::json!({"state": "error", "goal": goal, "error": "the planner stopped"}),
                    );
                    planning = None;
                }
            }
        }
        if let Some((tree, source, goal, plan)) = pending_tree.take() {
            n_runs += 1;
            match start_run(&tree, &source, &goal, plan, &library, &cfg, &memory, &out_root, n_runs, now) {
                Ok(mut run) => {
                    for ev in idle_events.drain(..) {
                        run.remember(&mut memory, ev)?;
                    }
                    let g = Event::new(now, EventKind::GoalSet, run.goal.clone());
                    run.remember(&mut memory, g)?;
                    memory.set_goal(run.goal.clone());
                    println!("arbor: running '{}' ({})", run.tree_name, run.dir.display());
                    active = Some(run);
                }
                Err(e) => {
                    publish_status(&serde_json::json!({"state": "error", "goal": goal, "error": format!("{e:#}")}))
                }
            }
        }

        // Decide and act.
        if active.is_none() {
            for ev in perceived.drain(..) {
                if idle_events.len() == IDLE_EVENTS_MAX {
                    idle_events.pop_front();
                }
                idle_events.push_back(ev);
            }
        }
        if let Some(run) = active.as_mut() {
            for ev in perceived.drain(..) {
                run.remember(&mut memory, ev)?;
            }
            run.sink.out.tick.clear();
            run.status = run.executor.tick(now, &mut robot, &memory, &mut run.sink);
            for ev in std::mem::take(&mut robot.events) {
                run.remember(&mut memory, ev)?;
            }
            let mut finished = Vec::new();
            for r in &run.sink.out.tick {
                match &r.event {
                    TickEvent::SkillStarted { skill, .. } => {
                        run.skill_calls += 1;
                        finished.push(Event::new(now, EventKind::SkillStarted, format!("{skill} started")));
                    }
                    TickEvent::SkillFinished { skill, success, detail, .. } => {
                        let verdict = if *success { "succeeded" } else { "failed" };
                        finished.push(Event::new(
                            now,
                            EventKind::SkillFinished,
                            format!("{skill} {verdict}: {detail}"),
                        ));
                    }
                    _ => {}
                }
            }
            for ev in finished {
                run.remember(&mut memory, ev)?;
            }
            let running: Vec<String> = run
                .executor
                .nodes()
                .iter()
                .zip(run.executor.statuses())
                .filter(|(n, s)| *s == NodeStatus::Running && n.category.xml_name() == "Action")
                .map(|(n, _)| n.path.clone())
                .collect();
            let state = match run.status {
                NodeStatus::Success => "succeeded",
                NodeStatus::Failure => "failed",
                _ => "running",
            };
            let skills: Vec<serde_json::Value> = run
                .sink
                .out
                .tick
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
            publish_status(&serde_json::json!({
                "state": state,
                "goal": run.goal,
                "tree": run.tree_name,
                "tick": run.executor.stats().ticks,
                "t_s": now.as_secs_f64(),
                "running": running,
                "skills": skills,
                "run_dir": run.dir.display().to_string(),
            }));
            if run.status.is_done()
                && let Some(run) = active.take()
            {
                let outcome = if run.status == NodeStatus::Success { "success" } else { "failure" };
                let (goal, tree) = (run.goal.clone(), run.tree_name.clone());
                let dir = run.finish(&mut memory, now, outcome, "")?;
                println!("arbor: '{tree}' finished: {outcome} ({})", dir.display());
                publish_status(&serde_json::json!({
                    "state": if outcome == "success" { "succeeded" } else { "failed" },
                    "goal": goal, "tree": tree, "outcome": outcome, "run_dir": dir.display().to_string(),
                    "frames": frames, "dropped_frames": dropped,
                }));
            }
        }
    }

    // SIGINT/SIGTERM: halt the tree (stops motion, cancels remote skills), finish the records.
    let now = SimTime::from_secs_f64(start.elapsed().as_secs_f64());
    robot.now = now;
    if let Some(mut run) = active.take() {
        run.executor.halt(now, &mut robot, &memory, &mut run.sink);
        let goal = run.goal.clone();
        let dir = run.finish(&mut memory, now, "halted", "the node was stopped")?;
        publish_status(&serde_json::json!({"state": "halted", "goal": goal, "run_dir": dir.display().to_string()}));
        println!("arbor: halted ({})", dir.display());
    }
    out.twist(0.0);
    // Let the last messages (status, cancel requests) leave before the node goes.
    node.spin_once(Duration::from_millis(100));
    println!("arbor: node stopped ({frames} frames, {dropped} dropped)");
    Ok(ExitCode::SUCCESS)
}

fn plan_context(cfg: &NodeConfig, memory: &WorkingMemory) -> arbor_behaviors::planner::PlanContext {
    let mut people: Vec<String> = cfg.people.clone();
    let mut objects: Vec<String> = cfg.objects.clone();
    for e in memory.entities() {
        let list = if e.kind == arbor_perception::EntityKind::Person { &mut people } else { &mut objects };
        if !list.iter().any(|n| n == e.id.as_str()) {
            list.push(e.id.to_string());
        }
    }
    arbor_behaviors::planner::PlanContext {
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
            let (place, _) = cfg
                .places
                .iter()
                .map(|(name, p)| (name, e.position.distance(Point2::new(p[0], p[1]))))
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            Some(format!("{} was last seen in the {place}", e.id))
        })
        .collect()
}

#[allow(clippy::too_many_arguments, reason = "one call site: the loop's state, passed as it is")]
fn start_run(
    tree: &Tree,
    source: &str,
    goal: &str,
    plan: Option<serde_json::Value>,
    library: &NodeLibrary,
    cfg: &NodeConfig,
    memory: &WorkingMemory,
    out_root: &Path,
    n: u64,
    now: SimTime,
) -> Result<ActiveRun> {
    let mut entities: Vec<String> = cfg.people.iter().chain(cfg.objects.iter()).cloned().collect();
    entities.extend(memory.entities().map(|e| e.id.to_string()));
    let vocab = Vocabulary { places: cfg.places.keys().cloned().collect(), entities };
    let checked = tree.check(source, library, Some(&vocab), false)?;
    let executor = Executor::with_source(&checked, source)?;
    let goal = if goal.is_empty() { tree.goal.clone().unwrap_or_else(|| tree.name.clone()) } else { goal.to_string() };
    let dir = out_root.join(format!("{n:03}-{}-{}", now.as_secs_f64() as u64, slug(&goal)));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: &str| -> Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("tree.yaml", &yaml::to_yaml(checked.tree()))?;
    if let Some(p) = &plan {
        write("plan.json", &format!("{}\n", serde_json::to_string_pretty(p)?))?;
    }
    let create = |name: &str| -> Result<BufWriter<File>> {
        let p = dir.join(name);
        Ok(BufWriter::new(File::create(&p).with_context(|| format!("creating {}", p.display()))?))
    };
    let nodes = executor.nodes();
    let sink = Recorder::new(&nodes, NodeOut { jsonl: JsonlSink::new(create("ticks.jsonl")?), tick: Vec::new() });
    let events = JsonlSink::new(create("events.jsonl")?);
    let episodic = EpisodicStore::open(dir.join("memory.sqlite"))?;
    Ok(ActiveRun {
        dir,
        goal,
        tree_name: checked.tree().name.clone(),
        executor,
        sink,
        events,
        episodic,
        status: NodeStatus::Idle,
        skill_calls: 0,
    })
}

fn entity_markers(memory: &WorkingMemory, frame: &str, stamp: r2r::builtin_interfaces::msg::Time) -> MarkerArray {
    let mut markers = vec![Marker {
        header: Header { stamp: stamp.clone(), frame_id: frame.to_string() },
        ns: "arbor_entities".into(),
        action: Marker::DELETEALL as i32,
        ..Default::default()
    }];
    for (i, e) in memory.entities().enumerate() {
        let person = e.kind == arbor_perception::EntityKind::Person;
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
        assert_eq!(node_name(&v(&["-r", "a:=b"])), "arbor");
        assert_eq!(node_name(&v(&["-r", "__node:=robot1_arbor"])), "robot1_arbor");
        assert!((wrap(3.0 * PI) - PI).abs() < 1e-9 || (wrap(3.0 * PI) + PI).abs() < 1e-9);
        assert!((yaw_of(&quat_of(1.2)) - 1.2).abs() < 1e-9);
    }
}
