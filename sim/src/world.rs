//! The simulated world: robot, people and objects on a 2D map, stepped at a fixed rate.
//! It is the simulator's camera (ground truth plus seeded noise) and its robot (the skills).
//!
//! Over 600 lines: the world's state, its step and its skills share private state.

use crate::nav::{Grid, Wall};
use crate::scenario::{Criterion, Motion, Scenario};
use arbor_behaviors::robot::{CallId, Robot, SkillCall, SkillStatus};
use arbor_core::geometry::{normalize_angle, segments_intersect};
use arbor_core::{EntityId, EntityKind, Observation, PerceptionSource, Point2, Pose2, Rng, SimTime};
use arbor_memory::WorkingMemory;
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// How close the robot stops to a person it drives to, metres.
pub const PERSON_STANDOFF: f64 = 1.5;
/// How close the robot stops to an object it drives to, metres.
pub const OBJECT_STANDOFF: f64 = 0.8;
/// A photo of an entity needs it within this angle of the optical axis (radians) ...
pub const PHOTO_MAX_OFF_AXIS: f64 = 0.35;
/// ... and within this range, metres.
pub const PHOTO_MAX_RANGE: f64 = 5.0;
/// Time the shutter takes, seconds.
pub const PHOTO_DURATION: f64 = 0.5;
/// A person counts as looking at the robot (ground truth) with the head within this angle.
pub const LOOKING_ANGLE: f64 = 30.0 * PI / 180.0;
/// How fast people turn their heads, radians per second.
pub const HEAD_TURN_RATE: f64 = PI;

#[derive(Debug, Clone)]
struct PersonState {
    name: String,
    pos: Point2,
    heading: f64,
    head: f64,
    attends_robot: bool,
    attention_range: f64,
    motion: Motion,
    appearance: Option<crate::scenario::AppearanceSpec>,
    home: Point2,
    waypoint: usize,
    wander_target: Option<Point2>,
    rng: Rng,
}

#[derive(Debug, Clone)]
struct ObjectState {
    name: String,
    label: String,
    pos: Point2,
}

#[derive(Debug, Clone)]
enum MotionCmd {
    Follow { path: Vec<Point2>, next: usize, speed: f64 },
    Turn { yaw: f64 },
    Spin { remaining: f64 },
}

#[derive(Debug, Clone)]
struct RobotState {
    pose: Pose2,
    max_speed: f64,
    max_turn: f64,
    fov: f64,
    range: f64,
    /// The motion command in progress and the call that owns it.
    motion: Option<(CallId, MotionCmd)>,
    /// Calls whose motion was taken over by a later call.
    preempted: Vec<CallId>,
    odometry: f64,
}

#[derive(Debug, Clone)]
enum Active {
    Navigate { target: String, entity: bool, goal: Point2, last_plan: SimTime },
    LookAt { entity: String },
    Scan,
    Photo { entity: Option<String>, done_at: SimTime },
    Say { text: String, done_at: SimTime },
    Wait { done_at: SimTime },
}

pub use arbor_runtime::{CriterionResult, Photo};

#[derive(Debug, Clone)]
pub struct World {
    now: SimTime,
    grid: Grid,
    map_size: [f64; 2],
    camera: crate::scenario::CameraSpec,
    places: Vec<(String, Point2)>,
    rooms: Vec<crate::scenario::RoomSpec>,
    robot: RobotState,
    people: Vec<PersonState>,
    objects: Vec<ObjectState>,
    perception: crate::scenario::PerceptionSpec,
    camera_rng: Rng,
    active: BTreeMap<CallId, Active>,
    photos: Vec<Photo>,
    said: Vec<(SimTime, String)>,
    criteria: Vec<Criterion>,
    /// Declared skills' generic models over the symbolic world state.
    symbolic: crate::symbolic::Symbolic,
}

impl World {
    pub fn new(s: &Scenario, seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let walls: Vec<Wall> = s
            .map
            .walls
            .iter()
            .map(|w| Wall { a: Point2::new(w[0][0], w[0][1]), b: Point2::new(w[1][0], w[1][1]) })
            .collect();
        let grid = Grid::new(s.map.size, s.map.resolution, &walls, s.robot.radius + 0.05);
        let people = s
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| PersonState {
                name: p.name.clone(),
                pos: Point2::new(p.pose[0], p.pose[1]),
                heading: p.pose[2].to_radians(),
                head: p.pose[2].to_radians(),
                attends_robot: p.attends_robot,
                attention_range: p.attention_range,
                motion: p.motion.clone(),
                appearance: p.appearance.clone(),
                home: Point2::new(p.pose[0], p.pose[1]),
                waypoint: 0,
                wander_target: None,
                rng: rng.fork(i as u64 + 1),
            })
            .collect();
        let objects = s
            .objects
            .iter()
            .map(|o| ObjectState { name: o.name.clone(), label: o.label.clone(), pos: Point2::new(o.at[0], o.at[1]) })
            .collect();
        Self {
            now: SimTime::ZERO,
            grid,
            map_size: s.map.size,
            camera: s.robot.camera.clone(),
            places: s.places(),
            rooms: s.map.rooms.clone(),
            robot: RobotState {
                pose: s.robot_pose(),
                max_speed: s.robot.max_speed,
                max_turn: s.robot.max_turn_rate_deg.to_radians(),
                fov: s.robot.camera.fov_deg.to_radians(),
                range: s.robot.camera.range,
                motion: None,
                preempted: Vec::new(),
                odometry: 0.0,
            },
            people,
            objects,
            perception: s.perception.clone(),
            camera_rng: rng.fork(0),
            active: BTreeMap::new(),
            photos: Vec::new(),
            said: Vec::new(),
            criteria: s.success.clone(),
            symbolic: crate::symbolic::Symbolic::new(s.manifest.as_deref(), &s.atoms(), seed),
        }
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Puts the robot somewhere (tests, camera calibration); cancels its motion.
    pub fn set_robot_pose(&mut self, pose: Pose2) {
        self.robot.pose = pose;
        self.robot.motion = None;
    }

    /// Turns a person's head to `yaw` (radians, world frame) (tests, camera calibration).
    pub fn set_head(&mut self, name: &str, yaw: f64) -> bool {
        self.people.iter_mut().find(|p| p.name == name).map(|p| p.head = yaw).is_some()
    }

    pub fn robot_pose(&self) -> Pose2 {
        self.robot.pose
    }

    pub fn photos(&self) -> &[Photo] {
        &self.photos
    }

    /// Whether the robot could drive from `from` to `to` (the planner navigate_to uses).
    pub fn can_reach(&self, from: Point2, to: Point2) -> bool {
        self.grid.plan(from, to).is_some()
    }

    /// Distance the robot drove so far, metres.
    /// What the robot said, when.
    pub fn said(&self) -> &[(SimTime, String)] {
        &self.said
    }

    pub fn odometry(&self) -> f64 {
        self.robot.odometry
    }

    /// The room a point lies in.
    pub fn room_at(&self, p: Point2) -> Option<&str> {
        self.rooms.iter().find(|r| r.contains(p)).map(|r| r.name.as_str())
    }

    fn line_of_sight(&self, a: Point2, b: Point2) -> bool {
        !self.grid.walls().iter().any(|w| segments_intersect(a, b, w.a, w.b))
    }

    /// Advances the world by `dt` seconds: people move and turn their heads, the robot
    /// executes its motion command.
    pub fn step(&mut self, dt: f64) {
        self.now = self.now.plus(SimTime::from_secs_f64(dt));
        let robot_pos = self.robot.pose.position();
        for i in 0..self.people.len() {
            self.move_person(i, dt);
            let p = &self.people[i];
            let wants_robot = p.attends_robot
                && p.pos.distance(robot_pos) <= p.attention_range
                && self.line_of_sight(p.pos, robot_pos);
            let target = if wants_robot { p.pos.bearing_to(robot_pos) } else { p.heading };
            let p = &mut self.people[i];
            let err = normalize_angle(target - p.head);
            p.head = normalize_angle(p.head + err.clamp(-HEAD_TURN_RATE * dt, HEAD_TURN_RATE * dt));
        }
        self.move_robot(dt);
    }

    fn move_person(&mut self, i: usize, dt: f64) {
        let (target, speed) = {
            let p = &mut self.people[i];
            match &p.motion {
                Motion::Still => return,
                Motion::Patrol { waypoints, speed } => {
                    let w = waypoints[p.waypoint % waypoints.len()];
                    let w = Point2::new(w[0], w[1]);
                    if p.pos.distance(w) < 1e-6 {
                        p.waypoint = (p.waypoint + 1) % waypoints.len();
                        return;
                    }
                    (w, *speed)
                }
                Motion::Wander { radius, speed } => {
                    let (radius, speed) = (*radius, *speed);
                    match p.wander_target {
                        Some(t) if p.pos.distance(t) > 1e-6 => (t, speed),
                        _ => {
                            let angle = p.rng.range(-PI, PI);
                            let r = radius * p.rng.uniform().sqrt();
                            let cand = Point2::new(p.home.x + r * angle.cos(), p.home.y + r * angle.sin());
                            let pos = p.pos;
                            p.wander_target = None;
                            if self.grid.is_free(cand) && self.grid.segment_free(pos, cand) {
                                self.people[i].wander_target = Some(cand);
                            }
                            return;
                        }
                    }
                }
            }
        };
        let p = &mut self.people[i];
        let next = p.pos.step_towards(target, speed * dt);
        if next.distance(p.pos) > 1e-9 {
            p.heading = p.pos.bearing_to(next);
        }
        p.pos = next;
    }

    fn move_robot(&mut self, dt: f64) {
        let max_turn = self.robot.max_turn * dt;
        let Some((_, cmd)) = self.robot.motion.as_mut() else {
            return;
        };
        let pose = &mut self.robot.pose;
        let done = match cmd {
            MotionCmd::Turn { yaw } => {
                let err = normalize_angle(*yaw - pose.yaw);
                pose.yaw = normalize_angle(pose.yaw + err.clamp(-max_turn, max_turn));
                normalize_angle(*yaw - pose.yaw).abs() < 0.02
            }
            MotionCmd::Spin { remaining } => {
                let step = remaining.min(max_turn);
                pose.yaw = normalize_angle(pose.yaw + step);
                *remaining -= step;
                *remaining <= 1e-9
            }
            MotionCmd::Follow { path, next, speed } => {
                let mut budget = *speed * dt;
                let mut turn_budget = max_turn;
                loop {
                    let Some(&target) = path.get(*next) else {
                        break true;
                    };
                    let here = pose.position();
                    let dist = here.distance(target);
                    if dist < 1e-6 {
                        *next += 1;
                        continue;
                    }
                    let err = normalize_angle(here.bearing_to(target) - pose.yaw);
                    let turn = err.clamp(-turn_budget, turn_budget);
                    pose.yaw = normalize_angle(pose.yaw + turn);
                    turn_budget -= turn.abs();
                    // Drive only when roughly facing the next waypoint (turn on the spot first).
                    if normalize_angle(here.bearing_to(target) - pose.yaw).abs() > 0.5 || budget <= 0.0 {
                        break false;
                    }
                    let moved = budget.min(dist);
                    let p = here.step_towards(target, moved);
                    pose.x = p.x;
                    pose.y = p.y;
                    self.robot.odometry += moved;
                    budget -= moved;
                    if moved < dist {
                        break false;
                    }
                    *next += 1;
                }
            }
        };
        if done {
            self.robot.motion = None;
        }
    }

    // ---- perception (ground truth plus seeded noise) ----

    /// Whether the robot's camera sees a point now (field of view, range, walls).
    fn camera_sees(&self, p: Point2) -> bool {
        let pose = self.robot.pose;
        let range = pose.position().distance(p);
        range <= self.robot.range
            && pose.relative_bearing(p).abs() <= self.robot.fov / 2.0
            && self.line_of_sight(pose.position(), p)
    }

    /// Ground truth: the person looks at the robot now.
    fn looking_at_robot(&self, p: &PersonState) -> bool {
        let rp = self.robot.pose.position();
        normalize_angle(p.pos.bearing_to(rp) - p.head).abs() <= LOOKING_ANGLE && self.line_of_sight(p.pos, rp)
    }

    fn entity_position(&self, name: &str) -> Option<(Point2, EntityKind)> {
        self.people
            .iter()
            .find(|p| p.name == name)
            .map(|p| (p.pos, EntityKind::Person))
            .or_else(|| self.objects.iter().find(|o| o.name == name).map(|o| (o.pos, EntityKind::Object)))
    }

    /// Entities in view now (ground truth), people first, in scenario order.
    fn visible(&self) -> Vec<String> {
        self.people
            .iter()
            .map(|p| (&p.name, p.pos))
            .chain(self.objects.iter().map(|o| (&o.name, o.pos)))
            .filter(|(_, pos)| self.camera_sees(*pos))
            .map(|(n, _)| n.clone())
            .collect()
    }

    // ---- skills ----

    fn place(&self, name: &str) -> Option<Point2> {
        self.places.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }

    /// Where to drive for a target: a place, or a stand-off point before an entity as
    /// memory last saw it.
    fn resolve_goal(&self, target: &str, memory: &WorkingMemory) -> Result<(Point2, bool), String> {
        if let Some(p) = self.place(target) {
            return Ok((p, false));
        }
        let Some(e) = memory.entity(target) else {
            return Err(format!("'{target}' has not been seen yet: go to a place or scan first"));
        };
        let standoff = if e.kind == EntityKind::Person { PERSON_STANDOFF } else { OBJECT_STANDOFF };
        let here = self.robot.pose.position();
        let d = here.distance(e.position);
        let goal = if d <= standoff { here } else { e.position.step_towards(here, standoff) };
        Ok((goal, true))
    }

    fn take_motion(&mut self, id: CallId, cmd: MotionCmd) {
        if let Some((prev, _)) = self.robot.motion.replace((id, cmd))
            && prev != id
        {
            self.robot.preempted.push(prev);
        }
    }

    /// Where a call's motion stands: Some(true) running, Some(false) done, None preempted.
    fn motion_state(&mut self, id: CallId) -> Option<bool> {
        if let Some(i) = self.robot.preempted.iter().position(|c| *c == id) {
            self.robot.preempted.swap_remove(i);
            return None;
        }
        Some(matches!(self.robot.motion, Some((owner, _)) if owner == id))
    }

    fn start_navigation(&mut self, id: CallId, goal: Point2, speed: f64) -> Result<(), String> {
        let path = self.grid.plan(self.robot.pose.position(), goal).ok_or_else(|| {
            format!(
                "no path from ({:.1}, {:.1}) to ({:.1}, {:.1})",
                self.robot.pose.x, self.robot.pose.y, goal.x, goal.y
            )
        })?;
        self.take_motion(id, MotionCmd::Follow { path, next: 1, speed: speed.min(self.robot.max_speed) });
        Ok(())
    }

    fn take_photo(&mut self, entity: Option<&str>) -> SkillStatus {
        let in_frame = self.visible();
        let t = self.now;
        let (status, subject_looking) = match entity {
            None => (
                SkillStatus::Success(format!(
                    "photo of {}",
                    if in_frame.is_empty() { "nothing".into() } else { in_frame.join(", ") }
                )),
                false,
            ),
            Some(name) => match self.entity_position(name) {
                None => (SkillStatus::Failure(format!("no entity '{name}' in this world")), false),
                Some((pos, _)) => {
                    let pose = self.robot.pose;
                    let off = pose.relative_bearing(pos).abs();
                    let range = pose.position().distance(pos);
                    if !in_frame.iter().any(|n| n == name) {
                        (SkillStatus::Failure(format!("{name} is not in view")), false)
                    } else if off > PHOTO_MAX_OFF_AXIS {
                        (
                            SkillStatus::Failure(format!(
                                "{name} is not centred ({:.0} deg off axis)",
                                off.to_degrees()
                            )),
                            false,
                        )
                    } else if range > PHOTO_MAX_RANGE {
                        (SkillStatus::Failure(format!("{name} is too far ({range:.1} m)")), false)
                    } else {
                        let looking =
                            self.people.iter().find(|p| p.name == name).is_some_and(|p| self.looking_at_robot(p));
                        (SkillStatus::Success(format!("photo of {name}")), looking)
                    }
                }
            },
        };
        if status_is_success(&status) {
            self.photos.push(Photo {
                t_us: t.micros(),
                subject: entity.map(str::to_string),
                in_frame: in_frame.clone(),
                subject_looking,
            });
        }
        status
    }

    fn poll_active(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        let Some(active) = self.active.get(&call.id).cloned() else {
            return SkillStatus::Failure(format!("call {} is not active (halted or never started)", call.id));
        };
        let status = match active {
            Active::Navigate { target, entity, goal, last_plan } => {
                // Follow a moving entity: re-plan (at most once a second) when memory saw it move.
                if entity
                    && self.now.saturating_sub(last_plan) >= SimTime::from_secs_f64(1.0)
                    && let Ok((g, _)) = self.resolve_goal(&target, memory)
                    && g.distance(goal) > 0.5
                {
                    let speed = call.number("speed").unwrap_or(0.8);
                    if let Err(e) = self.start_navigation(call.id, g, speed) {
                        return self.finish(call.id, SkillStatus::Failure(e));
                    }
                    self.active.insert(
                        call.id,
                        Active::Navigate { target: target.clone(), entity, goal: g, last_plan: self.now },
                    );
                }
                match self.motion_state(call.id) {
                    None => SkillStatus::Failure("preempted by another motion".into()),
                    Some(true) => SkillStatus::Running,
                    Some(false) => SkillStatus::Success(format!("arrived at {target}")),
                }
            }
            Active::LookAt { entity } => {
                if let Some(e) = memory.entity(&entity).filter(|e| e.in_view) {
                    let yaw = self.robot.pose.position().bearing_to(e.position);
                    if let Some((owner, MotionCmd::Turn { yaw: y })) = self.robot.motion.as_mut()
                        && *owner == call.id
                    {
                        *y = yaw;
                    }
                }
                match self.motion_state(call.id) {
                    None => SkillStatus::Failure("preempted by another motion".into()),
                    Some(true) => SkillStatus::Running,
                    Some(false) => SkillStatus::Success(format!("looking at {entity}")),
                }
            }
            Active::Scan => match self.motion_state(call.id) {
                None => SkillStatus::Failure("preempted by another motion".into()),
                Some(true) => SkillStatus::Running,
                Some(false) => SkillStatus::Success("scanned around".into()),
            },
            Active::Photo { entity, done_at } => {
                if self.now < done_at {
                    SkillStatus::Running
                } else {
                    self.take_photo(entity.as_deref())
                }
            }
            Active::Say { text, done_at } => {
                if self.now < done_at {
                    SkillStatus::Running
                } else {
                    self.said.push((self.now, text.clone()));
                    SkillStatus::Success(format!("said \"{text}\""))
                }
            }
            Active::Wait { done_at } => {
                if self.now < done_at {
                    SkillStatus::Running
                } else {
                    SkillStatus::Success("waited".into())
                }
            }
        };
        if status.is_running() { status } else { self.finish(call.id, status) }
    }

    fn finish(&mut self, id: CallId, status: SkillStatus) -> SkillStatus {
        self.active.remove(&id);
        if matches!(self.robot.motion, Some((owner, _)) if owner == id) {
            self.robot.motion = None;
        }
        status
    }

    // ---- evaluation ----

    /// Evaluates the scenario's success criteria against the ground truth.
    pub fn evaluate(&self) -> Vec<CriterionResult> {
        self.criteria
            .iter()
            .map(|c| {
                let (criterion, passed, detail) = match c {
                    Criterion::PhotographedAllAttending => {
                        let missing: Vec<&str> = self
                            .people
                            .iter()
                            .filter(|p| p.attends_robot)
                            .filter(|p| {
                                !self
                                    .photos
                                    .iter()
                                    .any(|ph| ph.subject.as_deref() == Some(&p.name) && ph.subject_looking)
                            })
                            .map(|p| p.name.as_str())
                            .collect();
                        let n = self.people.iter().filter(|p| p.attends_robot).count();
                        let detail = if missing.is_empty() {
                            format!("all {n} attending people photographed while looking")
                        } else {
                            format!("not photographed while looking: {}", missing.join(", "))
                        };
                        ("photographed_all_attending".to_string(), missing.is_empty(), detail)
                    }
                    Criterion::PhotographedNoneInattentive => {
                        let wrong: Vec<&str> = self
                            .photos
                            .iter()
                            .filter_map(|ph| ph.subject.as_deref())
                            .filter(|s| self.people.iter().any(|p| p.name == *s && !p.attends_robot))
                            .collect();
                        let detail = if wrong.is_empty() {
                            "no photo of anyone who was not attending".into()
                        } else {
                            format!("photographed: {}", wrong.join(", "))
                        };
                        ("photographed_none_inattentive".to_string(), wrong.is_empty(), detail)
                    }
                    Criterion::EndsAt(place) => {
                        let d =
                            self.place(place).map(|p| p.distance(self.robot.pose.position())).unwrap_or(f64::INFINITY);
                        (format!("ends_at {place}"), d <= 0.5, format!("{d:.2} m from {place}"))
                    }
                    Criterion::Said(text) => {
                        let hit = self.said.iter().any(|(_, s)| s.contains(text.as_str()));
                        (format!("said \"{text}\""), hit, if hit { "said".into() } else { "never said".into() })
                    }
                    Criterion::Holds(text) => {
                        let hit = arbor_behaviors::manifest::Literal::parse(text)
                            .is_ok_and(|l| self.symbolic.holds(&l, &arbor_behaviors::Params::new()));
                        (format!("holds {text}"), hit, if hit { "holds".into() } else { "does not hold".into() })
                    }
                    Criterion::Photographed(name) => {
                        let hit = self.photos.iter().any(|ph| ph.subject.as_deref() == Some(name));
                        (format!("photographed {name}"), hit, format!("{} photos", self.photos.len()))
                    }
                };
                CriterionResult { criterion, passed, detail }
            })
            .collect()
    }
}

impl PerceptionSource for World {
    fn observe(&mut self, now: SimTime) -> Vec<Observation> {
        let pose = self.robot.pose;
        let here = pose.position();
        let mut out = Vec::new();
        let people: Vec<(String, Point2, Option<f64>)> = self
            .people
            .iter()
            .map(|p| {
                let delta = normalize_angle(p.pos.bearing_to(here) - p.head);
                let base = if self.line_of_sight(p.pos, here) { delta.cos().max(0.0).powi(2) } else { 0.0 };
                (p.name.clone(), p.pos, Some(base))
            })
            .collect();
        let objects = self.objects.iter().map(|o| (o.name.clone(), o.pos, None));
        let labels: BTreeMap<&str, &str> = self.objects.iter().map(|o| (o.name.as_str(), o.label.as_str())).collect();
        for (name, pos, attention) in people.into_iter().chain(objects.collect::<Vec<_>>()) {
            if !self.camera_sees(pos) || self.camera_rng.chance(self.perception.miss_rate) {
                continue;
            }
            let range = here.distance(pos);
            let sigma = self.perception.position_noise * range.max(1.0);
            let noisy = Point2::new(pos.x + sigma * self.camera_rng.normal(), pos.y + sigma * self.camera_rng.normal());
            let attention = attention
                .map(|a| (a + self.perception.attention_noise * self.camera_rng.normal()).clamp(0.0, 1.0) as f32);
            let kind = if attention.is_some() { EntityKind::Person } else { EntityKind::Object };
            out.push(Observation {
                stamp: now,
                entity: EntityId::new(name.as_str()),
                kind,
                label: labels.get(name.as_str()).map_or_else(|| "person".to_string(), |l| (*l).to_string()),
                position: noisy,
                range: here.distance(noisy),
                bearing: pose.relative_bearing(noisy),
                confidence: (0.95 - 0.03 * range).clamp(0.3, 0.99) as f32,
                attention,
                sigma: None,
            });
        }
        out
    }
}

impl Robot for World {
    fn start(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        let now = self.now;
        if self.symbolic.models(call.skill) {
            return self.symbolic.start(call, now);
        }
        let active = match call.skill {
            "navigate_to" => {
                let target = call.text("target").unwrap_or_default().to_string();
                let (goal, entity) = match self.resolve_goal(&target, memory) {
                    Ok(g) => g,
                    Err(e) => return SkillStatus::Failure(e),
                };
                if let Err(e) = self.start_navigation(call.id, goal, call.number("speed").unwrap_or(0.8)) {
                    return SkillStatus::Failure(e);
                }
                Active::Navigate { target, entity, goal, last_plan: now }
            }
            "look_at" => {
                let entity = call.text("entity").unwrap_or_default().to_string();
                let Some(e) = memory.entity(&entity) else {
                    return SkillStatus::Failure(format!("'{entity}' has not been seen yet"));
                };
                let yaw = self.robot.pose.position().bearing_to(e.position);
                self.take_motion(call.id, MotionCmd::Turn { yaw });
                Active::LookAt { entity }
            }
            "scan" => {
                self.take_motion(call.id, MotionCmd::Spin { remaining: 2.0 * PI });
                Active::Scan
            }
            "capture_photo" => Active::Photo {
                entity: call.text("entity").map(str::to_string),
                done_at: now.plus(SimTime::from_secs_f64(PHOTO_DURATION)),
            },
            "say" => {
                let text = call.text("text").unwrap_or_default().to_string();
                let secs = 0.4 + 0.06 * text.chars().count() as f64;
                Active::Say { text, done_at: now.plus(SimTime::from_secs_f64(secs)) }
            }
            "wait" => Active::Wait { done_at: now.plus(SimTime::from_secs_f64(call.number("seconds").unwrap_or(0.0))) },
            other => return SkillStatus::Failure(format!("the simulator has no skill '{other}'")),
        };
        self.active.insert(call.id, active);
        self.poll_active(call, memory)
    }

    fn poll(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        if self.symbolic.models(call.skill) {
            return self.symbolic.poll(call, self.now);
        }
        let status = self.poll_active(call, memory);
        // Where the robot arrived is also a symbolic fact (declared skills may require it).
        if call.skill == "navigate_to"
            && matches!(status, SkillStatus::Success(_))
            && let Some(target) = call.text("target").filter(|t| self.place(t).is_some())
        {
            self.symbolic.set(("at".into(), vec!["robot".into(), target.to_string()]), true);
        }
        status
    }

    fn halt(&mut self, call: &SkillCall<'_>) {
        if self.symbolic.models(call.skill) {
            return self.symbolic.halt(call.id);
        }
        self.finish(call.id, SkillStatus::Failure("halted".into()));
        self.robot.preempted.retain(|c| *c != call.id);
    }

    /// Declared conditions from the symbolic state; otherwise the memory-backed conditions
    /// (`photographed` is the runtime's, which knows every photo on every backend).
    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        match self.symbolic.check(call) {
            Some(answer) => answer,
            None => arbor_behaviors::conditions::evaluate(call, memory),
        }
    }

    fn outputs(&mut self, call: &SkillCall<'_>) -> arbor_behaviors::Params {
        self.symbolic.take_outputs(call.id)
    }
}

fn status_is_success(s: &SkillStatus) -> bool {
    matches!(s, SkillStatus::Success(_))
}

impl arbor_runtime::Backend for World {
    fn place_at(&self, p: Point2) -> Option<String> {
        self.room_at(p).map(str::to_string)
    }
    fn robot_pose(&self) -> Option<Pose2> {
        Some(self.robot.pose)
    }
}

#[path = "render.rs"]
pub mod render;

#[cfg(test)]
#[path = "world_tests.rs"]
mod tests;
