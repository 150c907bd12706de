//! The robot as the tree sees it over ROS 2 (feature `ros2`): `RosRobot`, a
//! [`arbor_runtime::Backend`]. Skills:
//! - `navigate_to`: `geometry_msgs/PoseStamped` on `goal_pose` (what Nav2's bt_navigator and
//!   RViz use), arrival judged on odometry; halting sends the current pose (stop there);
//! - `look_at`, `scan`: `cmd_vel` turns closed on odometry's heading; `wait`: the clock;
//! - every other skill (`capture_photo`, `say`, ...): a goal of the `arbor_msgs/action/ExecuteSkill`
//!   action to the robot's skill server (a task on the node's tokio `LocalSet` sends the goal and
//!   awaits its result); halting the node cancels the goal.
//!
//! What skills leave in memory (photos, arrivals, speech) and the `photographed` condition are
//! the runtime's, the same as on the simulator.

use arbor_behaviors::{CallId, Robot, SkillCall, SkillStatus, Value};
use arbor_core::{Point2, Pose2, SimTime};
use arbor_memory::WorkingMemory;
use r2r::arbor_msgs::action::ExecuteSkill::Action as ExecuteSkill;
use r2r::geometry_msgs::msg::{Point, PoseStamped, Quaternion, Twist, Vector3};
use r2r::std_msgs::msg::Header;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::rc::Rc;
use std::sync::Arc;

/// A header stamp from the node's ROS clock (simulated time under use_sim_time).
pub fn now_msg(clock: &std::sync::Mutex<r2r::Clock>) -> r2r::builtin_interfaces::msg::Time {
    let d = clock.lock().ok().and_then(|mut c| c.get_now().ok()).unwrap_or_default();
    r2r::Clock::to_builtin_time(&d)
}

pub fn yaw_of(q: &Quaternion) -> f64 {
    (2.0 * (q.w * q.z + q.x * q.y)).atan2(1.0 - 2.0 * (q.y * q.y + q.z * q.z))
}

pub fn quat_of(yaw: f64) -> Quaternion {
    Quaternion { x: 0.0, y: 0.0, z: (yaw / 2.0).sin(), w: (yaw / 2.0).cos() }
}

pub fn wrap(a: f64) -> f64 {
    let mut a = (a + PI) % (2.0 * PI);
    if a < 0.0 {
        a += 2.0 * PI;
    }
    a - PI
}

/// What the skills publish; shared by the robot and the loop.
pub struct Outputs {
    pub cmd_vel: r2r::Publisher<Twist>,
    pub goal_pose: r2r::Publisher<PoseStamped>,
    pub map_frame: String,
    pub clock: Arc<std::sync::Mutex<r2r::Clock>>,
}

impl Outputs {
    pub fn twist(&self, angular_z: f64) {
        let t = Twist { linear: Vector3::default(), angular: Vector3 { x: 0.0, y: 0.0, z: angular_z } };
        if let Err(e) = self.cmd_vel.publish(&t) {
            eprintln!("arbor: publishing cmd_vel failed: {e}");
        }
    }
    /// Whether anything listens on goal_pose (a goal published to nobody is lost: volatile QoS).
    pub fn navigator_listens(&self) -> bool {
        self.goal_pose.get_inter_process_subscription_count().is_ok_and(|n| n > 0)
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

enum Running {
    Nav {
        goal: Point2,
        label: String,
        deadline: SimTime,
        /// The goal's yaw, and whether the goal went out (it waits for a navigator to listen).
        yaw: f64,
        sent: bool,
    },
    Turn {
        yaw: f64,
        label: String,
        deadline: SimTime,
    },
    Spin {
        turned: f64,
        last: Option<f64>,
        deadline: SimTime,
    },
    Wait {
        until: SimTime,
    },
    /// An action goal on its way: a task on the node's tokio `LocalSet` sends it and awaits the
    /// result, which the tick picks up from `result`.
    /// A manifest's ROS-bound skill: its call lives in `RosRobot::declared`.
    Declared,
    Remote {
        result: Rc<RefCell<Option<SkillStatus>>>,
        task: tokio::task::JoinHandle<()>,
        handle: Rc<RefCell<Option<r2r::ActionClientGoal<ExecuteSkill>>>>,
        skill: String,
    },
}

/// The robot as the tree sees it, over ROS 2.
pub struct RosRobot {
    out: Rc<Outputs>,
    client: r2r::ActionClient<ExecuteSkill>,
    action_name: String,
    server_up: Rc<RefCell<bool>>,
    places: BTreeMap<String, [f64; 2]>,
    nav: crate::ros_config::NavigationSection,
    pub pose: Option<Pose2>,
    pub now: SimTime,
    running: BTreeMap<CallId, Running>,
    /// Metres driven, from odometry.
    pub odometry_m: f64,
    /// The manifest's skills bound to ROS 2 actions, services, topics.
    pub declared: Option<crate::ros_skills::Declared>,
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
        let result = Rc::new(RefCell::new(None));
        let r = result.clone();
        let task = tokio::task::spawn_local(async move {
            let status = fut.await;
            *r.borrow_mut() = Some(status);
        });
        Ok(Running::Remote { result, task, handle, skill: call.skill.to_string() })
    }

    fn step(&mut self, id: CallId) -> SkillStatus {
        let now = self.now;
        let pose = self.pose;
        let tol = self.nav.goal_tolerance_m;
        let htol = self.nav.heading_tolerance;
        let turn = self.nav.turn_speed;
        let Some(r) = self.running.get_mut(&id) else {
            return SkillStatus::Failure(format!("call {id} is not running"));
        };
        let status = match r {
            Running::Nav { goal, label, deadline, yaw, sent } => match pose {
                _ if !*sent && self.out.navigator_listens() => {
                    self.out.goal(goal.x, goal.y, *yaw);
                    *sent = true;
                    SkillStatus::Running
                }
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
            Running::Remote { result, .. } => result.borrow_mut().take().unwrap_or(SkillStatus::Running),
            Running::Declared => match self.declared.as_mut() {
                Some(d) => d.poll(id),
                None => SkillStatus::Failure("no declared skills".into()),
            },
        };
        if !status.is_running() {
            self.running.remove(&id);
        }
        status
    }
}

impl Robot for RosRobot {
    fn start(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        let now = self.now;
        if let Some(d) = self.declared.as_mut()
            && d.has(call.skill)
        {
            let s = d.start(call);
            if s.is_running() {
                self.running.insert(call.id, Running::Declared);
            }
            return s;
        }
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
                // Sent now if a navigator listens, else as soon as one does (step).
                let sent = self.out.navigator_listens();
                if sent {
                    self.out.goal(gx, gy, yaw);
                }
                Running::Nav {
                    yaw,
                    sent,
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
        self.step(call.id)
    }

    fn poll(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemory) -> SkillStatus {
        self.step(call.id)
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
            Some(Running::Remote { handle, skill, task, .. }) => {
                if let Some(goal) = handle.borrow().as_ref() {
                    // The request goes out now; its answer is not waited for.
                    if let Err(e) = goal.cancel() {
                        eprintln!("arbor: cancelling {skill} failed: {e}");
                    }
                }
                task.abort();
            }
            Some(Running::Declared) => {
                if let Some(d) = self.declared.as_mut() {
                    d.halt(call.id);
                }
            }
            Some(Running::Wait { .. }) | None => {}
        }
    }

    /// Topic-bound conditions of the manifest from their latest message; otherwise the
    /// memory-backed conditions (`photographed` is the runtime's).
    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        match self.declared.as_ref().and_then(|d| d.check(call)) {
            Some(answer) => answer,
            None => arbor_behaviors::conditions::evaluate(call, memory),
        }
    }

    fn outputs(&mut self, call: &SkillCall<'_>) -> arbor_behaviors::Params {
        self.declared.as_mut().map(|d| d.take_outputs(call.id)).unwrap_or_default()
    }
}

impl arbor_runtime::Backend for RosRobot {
    /// A robot's places are points: the nearest one names where something is.
    fn place_at(&self, p: Point2) -> Option<String> {
        arbor_runtime::skills::nearest_place(&self.places, p).map(str::to_string)
    }
    fn robot_pose(&self) -> Option<Pose2> {
        self.pose
    }
}

impl RosRobot {
    #[allow(clippy::too_many_arguments, reason = "the robot's parts, named at its one construction")]
    pub fn new(
        out: Rc<Outputs>,
        client: r2r::ActionClient<ExecuteSkill>,
        action_name: String,
        server_up: Rc<RefCell<bool>>,
        places: BTreeMap<String, [f64; 2]>,
        nav: crate::ros_config::NavigationSection,
    ) -> Self {
        Self {
            out,
            client,
            action_name,
            server_up,
            places,
            nav,
            pose: None,
            now: SimTime::ZERO,
            running: BTreeMap::new(),
            odometry_m: 0.0,
            declared: None,
        }
    }

    /// A new odometry pose: the robot's pose and distance driven.
    pub fn set_pose(&mut self, p: Pose2) {
        if let Some(old) = self.pose {
            self.odometry_m += old.position().distance(p.position());
        }
        self.pose = Some(p);
    }
}
