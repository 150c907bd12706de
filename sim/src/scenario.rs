//! Scenario files: a map of rooms, walls and places; a robot; people and objects; success
//! criteria. Parsed raw with serde (errors keep line and column), then validated into the
//! typed form with errors that name the field.

use arbor_behaviors::Vocabulary;
use arbor_core::{Point2, Pose2};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax { file: String, line: usize, column: usize, message: String },
    #[error("{file}: field '{field}': {message}")]
    Invalid { file: String, field: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// The goal in plain language.
    pub goal: String,
    #[serde(default = "default_time_limit")]
    pub time_limit_s: f64,
    #[serde(default = "default_tick_hz")]
    pub tick_hz: f64,
    pub map: MapSpec,
    pub robot: RobotSpec,
    #[serde(default)]
    pub perception: PerceptionSpec,
    #[serde(default)]
    pub people: Vec<PersonSpec>,
    #[serde(default)]
    pub objects: Vec<ObjectSpec>,
    pub success: Vec<Criterion>,
    /// Working memory bounds (defaults: 64 entities, 32 events, forget after 600 s).
    #[serde(default, skip_serializing_if = "is_default_memory")]
    pub memory: arbor_memory::WorkingConfig,
    /// The robot's skill manifest, relative to the scenario file (default: the photographer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<String>,
    /// What holds in the symbolic world state at the start (`open(door1)`, `at(cup, kitchen)`),
    /// read and changed by declared skills' simulator models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
    /// The manifest `skills` names, loaded by [`Scenario::load`] (or given with `--skills`).
    #[serde(skip)]
    pub manifest: Option<std::sync::Arc<arbor_behaviors::SkillManifest>>,
}

fn is_default_memory(m: &arbor_memory::WorkingConfig) -> bool {
    *m == arbor_memory::WorkingConfig::default()
}

fn default_time_limit() -> f64 {
    300.0
}
fn default_tick_hz() -> f64 {
    10.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSpec {
    /// Width and height in metres; the map spans [0, w] x [0, h] with outer walls.
    pub size: [f64; 2],
    #[serde(default = "default_resolution")]
    pub resolution: f64,
    #[serde(default)]
    pub rooms: Vec<RoomSpec>,
    /// Wall segments [[x1, y1], [x2, y2]].
    #[serde(default)]
    pub walls: Vec<[[f64; 2]; 2]>,
    #[serde(default)]
    pub places: Vec<PlaceSpec>,
}

fn default_resolution() -> f64 {
    0.1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSpec {
    pub name: String,
    pub min: [f64; 2],
    pub max: [f64; 2],
}

impl RoomSpec {
    pub fn contains(&self, p: Point2) -> bool {
        p.x >= self.min[0] && p.x <= self.max[0] && p.y >= self.min[1] && p.y <= self.max[1]
    }
    pub fn center(&self) -> Point2 {
        Point2::new((self.min[0] + self.max[0]) / 2.0, (self.min[1] + self.max[1]) / 2.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceSpec {
    pub name: String,
    pub at: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotSpec {
    /// [x, y, yaw in degrees].
    pub pose: [f64; 3],
    #[serde(default = "default_radius")]
    pub radius: f64,
    #[serde(default = "default_speed")]
    pub max_speed: f64,
    #[serde(default = "default_turn")]
    pub max_turn_rate_deg: f64,
    #[serde(default)]
    pub camera: CameraSpec,
}

fn default_radius() -> f64 {
    0.3
}
fn default_speed() -> f64 {
    0.8
}
fn default_turn() -> f64 {
    90.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSpec {
    #[serde(default = "default_fov")]
    pub fov_deg: f64,
    #[serde(default = "default_range")]
    pub range: f64,
    /// Rendered image size (`--perception camera`), pixels.
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    /// Height of the camera above the floor, metres.
    #[serde(default = "default_mount")]
    pub mount_height: f64,
}

fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_mount() -> f64 {
    // A social robot's head camera: faces of standing adults stay in view down to ~0.5 m.
    1.45
}

fn default_fov() -> f64 {
    90.0
}
fn default_range() -> f64 {
    6.0
}

impl Default for CameraSpec {
    fn default() -> Self {
        Self {
            fov_deg: default_fov(),
            range: default_range(),
            width: default_width(),
            height: default_height(),
            mount_height: default_mount(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerceptionSpec {
    /// Standard deviation of position noise at 1 m, metres (grows with range).
    #[serde(default = "default_pos_noise")]
    pub position_noise: f64,
    /// Probability that a visible entity is missed in a frame.
    #[serde(default = "default_miss")]
    pub miss_rate: f64,
    /// Standard deviation of the attention score noise.
    #[serde(default = "default_att_noise")]
    pub attention_noise: f64,
}

fn default_pos_noise() -> f64 {
    0.05
}
fn default_miss() -> f64 {
    0.05
}
fn default_att_noise() -> f64 {
    0.1
}

impl Default for PerceptionSpec {
    fn default() -> Self {
        Self { position_noise: default_pos_noise(), miss_rate: default_miss(), attention_noise: default_att_noise() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSpec {
    pub name: String,
    /// [x, y, heading in degrees].
    pub pose: [f64; 3],
    /// Turns to look at the robot when it is near and in sight.
    #[serde(default)]
    pub attends_robot: bool,
    /// Within this distance an attending person looks at the robot.
    #[serde(default = "default_attention_range")]
    pub attention_range: f64,
    #[serde(default)]
    pub motion: Motion,
    /// How the rendered camera draws this person (default: a face and clothes by index).
    #[serde(default)]
    pub appearance: Option<AppearanceSpec>,
}

/// A person's look in the rendered camera: a face photograph and clothing colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppearanceSpec {
    /// `astronaut`, `camera` (scikit-image photographs) or `lfw:N` (N in 0..100, the faces of
    /// scikit-image's lfw_subset).
    pub face: String,
    /// Shirt colour, RGB.
    pub shirt: [u8; 3],
    /// Standing height, metres.
    #[serde(default = "default_person_height")]
    pub height_m: f64,
}

fn default_person_height() -> f64 {
    1.72
}

/// Faces the renderer can draw.
pub fn valid_face(face: &str) -> bool {
    matches!(face, "astronaut" | "camera")
        || face.strip_prefix("lfw:").and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n < 100)
}

fn default_attention_range() -> f64 {
    5.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Motion {
    #[default]
    Still,
    /// Walks the waypoints in a loop.
    Patrol { waypoints: Vec<[f64; 2]>, speed: f64 },
    /// Wanders inside a radius around the start, seeded.
    Wander { radius: f64, speed: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    pub name: String,
    pub at: [f64; 2],
    #[serde(default = "default_object_label")]
    pub label: String,
}

fn default_object_label() -> String {
    "object".into()
}

/// What must hold at the end of a run for it to count as a success.
/// Written as a bare word (`- photographed_all_attending`) or a one-key map (`- ends_at: lobby`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "serde_yaml::Value")]
pub enum Criterion {
    /// Every person with `attends_robot` has a photo of them taken while they looked at the robot.
    PhotographedAllAttending,
    /// No photo has as its subject a person who does not attend the robot.
    PhotographedNoneInattentive,
    /// The robot ends the run within 0.5 m of this place.
    EndsAt(String),
    /// The robot said something containing this text.
    Said(String),
    /// A photo of this entity was taken.
    Photographed(String),
    /// A literal holds in the symbolic world state at the end (`holding(cup)`, `not open(door1)`).
    Holds(String),
}

/// Written back the way it is read: a bare word or a one-key map (not a YAML tag).
impl Serialize for Criterion {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (key, arg) = match self {
            Criterion::PhotographedAllAttending => return ser.serialize_str("photographed_all_attending"),
            Criterion::PhotographedNoneInattentive => return ser.serialize_str("photographed_none_inattentive"),
            Criterion::EndsAt(a) => ("ends_at", a),
            Criterion::Said(a) => ("said", a),
            Criterion::Photographed(a) => ("photographed", a),
            Criterion::Holds(a) => ("holds", a),
        };
        let mut m = ser.serialize_map(Some(1))?;
        m.serialize_entry(key, arg)?;
        m.end()
    }
}

impl TryFrom<serde_yaml::Value> for Criterion {
    type Error = String;

    fn try_from(v: serde_yaml::Value) -> Result<Self, String> {
        use serde_yaml::Value as Y;
        const KNOWN: &str = "photographed_all_attending, photographed_none_inattentive, ends_at: <place>, said: <text>, photographed: <entity>, holds: <pred(args)>";
        let (key, arg) = match &v {
            Y::String(s) => (s.as_str(), None),
            Y::Mapping(m) if m.len() == 1 => match m.iter().next() {
                Some((Y::String(k), Y::String(a))) => (k.as_str(), Some(a.clone())),
                _ => {
                    return Err(format!("a criterion map is `name: text`; known criteria: {KNOWN}"));
                }
            },
            _ => {
                return Err(format!("a criterion is a word or a one-key map; known criteria: {KNOWN}"));
            }
        };
        match (key, arg) {
            ("photographed_all_attending", None) => Ok(Criterion::PhotographedAllAttending),
            ("photographed_none_inattentive", None) => Ok(Criterion::PhotographedNoneInattentive),
            ("ends_at", Some(a)) => Ok(Criterion::EndsAt(a)),
            ("said", Some(a)) => Ok(Criterion::Said(a)),
            ("photographed", Some(a)) => Ok(Criterion::Photographed(a)),
            ("holds", Some(a)) => Ok(Criterion::Holds(a)),
            (k, _) => Err(format!("unknown criterion '{k}' or wrong argument; known criteria: {KNOWN}")),
        }
    }
}

/// Distance from point `p` to the segment a-b.
fn segment_distance(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (x, y) = (a[0] + t * dx, a[1] + t * dy);
    ((p[0] - x).powi(2) + (p[1] - y).powi(2)).sqrt()
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::Read { file: file.clone(), message: e.to_string() })?;
        let mut s = Self::parse(&text, &file)?;
        s.resolve_skills(path)?;
        Ok(s)
    }

    /// Loads the manifest `skills:` names, relative to the scenario file at `path`.
    pub fn resolve_skills(&mut self, path: &Path) -> Result<(), ScenarioError> {
        if let Some(rel) = &self.skills {
            let at = path.parent().unwrap_or(Path::new(".")).join(rel);
            self.set_manifest(arbor_behaviors::SkillManifest::load(&at), &path.display().to_string())?;
        }
        Ok(())
    }

    /// Uses a loaded manifest (the scenario's `skills:` or `--skills`): it must be one the
    /// simulator can run, and the scenario's `holds` criteria and facts must use its predicates'
    /// shapes. The error names the manifest's file, line, skill and field.
    pub fn set_manifest(
        &mut self,
        manifest: Result<arbor_behaviors::SkillManifest, arbor_behaviors::ManifestError>,
        file: &str,
    ) -> Result<(), ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid { file: file.into(), field: "skills".into(), message };
        let m = manifest.map_err(|e| invalid(e.to_string()))?;
        m.check_backend(arbor_behaviors::manifest::Backend::Sim).map_err(|e| invalid(e.to_string()))?;
        self.manifest = Some(std::sync::Arc::new(m));
        Ok(())
    }

    /// The initial symbolic facts, parsed (checked by `validate`).
    pub fn atoms(&self) -> Vec<crate::symbolic::Atom> {
        self.facts.iter().filter_map(|f| crate::symbolic::parse_atom(f).ok()).collect()
    }

    /// Parses and validates scenario YAML; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = serde_yaml::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            ScenarioError::Syntax { file: file.into(), line, column, message: e.to_string() }
        })?;
        s.validate(file)?;
        Ok(s)
    }

    fn validate(&self, file: &str) -> Result<(), ScenarioError> {
        let bad = |field: String, message: String| Err(ScenarioError::Invalid { file: file.into(), field, message });
        for (i, f) in self.facts.iter().enumerate() {
            if let Err(e) = crate::symbolic::parse_atom(f) {
                return bad(format!("facts[{i}]"), e);
            }
        }
        for (i, c) in self.success.iter().enumerate() {
            if let Criterion::Holds(l) = c
                && let Err(e) = arbor_behaviors::manifest::Literal::parse(l)
            {
                return bad(format!("success[{i}].holds"), e);
            }
        }
        let [w, h] = self.map.size;
        if !(w.is_finite() && h.is_finite() && w > 0.5 && h > 0.5 && w <= 500.0 && h <= 500.0) {
            return bad("map.size".into(), format!("must be two sizes in (0.5, 500] metres, got [{w}, {h}]"));
        }
        if !(self.map.resolution >= 0.02 && self.map.resolution <= 1.0) {
            return bad("map.resolution".into(), format!("must be in [0.02, 1.0] metres, got {}", self.map.resolution));
        }
        if !(self.tick_hz >= 1.0 && self.tick_hz <= 1000.0) {
            return bad("tick_hz".into(), format!("must be in [1, 1000], got {}", self.tick_hz));
        }
        if !(self.time_limit_s > 0.0 && self.time_limit_s <= 86_400.0) {
            return bad("time_limit_s".into(), format!("must be in (0, 86400], got {}", self.time_limit_s));
        }
        if let Err(m) = self.memory.validate() {
            let (field, message) =
                m.split_once(' ').map_or(("memory".to_string(), m.clone()), |(f, r)| (f.to_string(), r.to_string()));
            return bad(field, message);
        }
        let inside = |p: [f64; 2]| {
            p[0].is_finite() && p[1].is_finite() && (0.0..=w).contains(&p[0]) && (0.0..=h).contains(&p[1])
        };
        let mut names = BTreeSet::new();
        for (i, r) in self.map.rooms.iter().enumerate() {
            if !inside(r.min) || !inside(r.max) || r.min[0] >= r.max[0] || r.min[1] >= r.max[1] {
                return bad(
                    format!("map.rooms[{i}] ({})", r.name),
                    "min/max must lie in the map with min < max".into(),
                );
            }
            if !names.insert(r.name.clone()) {
                return bad(format!("map.rooms[{i}].name"), format!("duplicate name '{}'", r.name));
            }
        }
        for (i, wall) in self.map.walls.iter().enumerate() {
            if !inside(wall[0]) || !inside(wall[1]) {
                return bad(format!("map.walls[{i}]"), "wall end points must lie inside the map".into());
            }
        }
        let mut place_names = BTreeSet::new();
        for (i, p) in self.map.places.iter().enumerate() {
            if !inside(p.at) {
                return bad(
                    format!("map.places[{i}] ({})", p.name),
                    format!("[{}, {}] is outside the map", p.at[0], p.at[1]),
                );
            }
            if !place_names.insert(p.name.clone()) {
                return bad(format!("map.places[{i}].name"), format!("duplicate name '{}'", p.name));
            }
        }
        let r = &self.robot;
        if !inside([r.pose[0], r.pose[1]]) || !r.pose[2].is_finite() {
            return bad("robot.pose".into(), "must be [x, y, yaw_deg] inside the map".into());
        }
        // A robot that starts in a wall cannot move: say so now, not as a failed run.
        for (i, w) in self.map.walls.iter().enumerate() {
            let d = segment_distance([r.pose[0], r.pose[1]], w[0], w[1]);
            if d < r.radius {
                return bad(
                    "robot.pose".into(),
                    format!(
                        "[{}, {}] is {d:.2} m from wall map.walls[{i}], less than the robot's radius {} m",
                        r.pose[0], r.pose[1], r.radius
                    ),
                );
            }
        }
        for (field, v, lo, hi) in [
            ("robot.radius", r.radius, 0.05, 2.0),
            ("robot.max_speed", r.max_speed, 0.01, 10.0),
            ("robot.max_turn_rate_deg", r.max_turn_rate_deg, 1.0, 1080.0),
            ("robot.camera.fov_deg", r.camera.fov_deg, 1.0, 360.0),
            ("robot.camera.range", r.camera.range, 0.1, 100.0),
            ("robot.camera.mount_height", r.camera.mount_height, 0.05, 3.0),
            ("robot.camera.width", f64::from(r.camera.width), 32.0, 4096.0),
            ("robot.camera.height", f64::from(r.camera.height), 32.0, 4096.0),
            ("perception.position_noise", self.perception.position_noise, 0.0, 5.0),
            ("perception.miss_rate", self.perception.miss_rate, 0.0, 1.0),
            ("perception.attention_noise", self.perception.attention_noise, 0.0, 1.0),
        ] {
            if !(v.is_finite() && v >= lo && v <= hi) {
                return bad(field.into(), format!("must be in [{lo}, {hi}], got {v}"));
            }
        }
        let mut entity_names = BTreeSet::new();
        for (i, p) in self.people.iter().enumerate() {
            let f = |s: &str| format!("people[{i}] ({}).{s}", p.name);
            if p.name.is_empty() || !entity_names.insert(p.name.clone()) {
                return bad(
                    format!("people[{i}].name"),
                    format!("names must be unique and non-empty, got '{}'", p.name),
                );
            }
            if !inside([p.pose[0], p.pose[1]]) || !p.pose[2].is_finite() {
                return bad(f("pose"), "must be [x, y, heading_deg] inside the map".into());
            }
            if let Some(a) = &p.appearance {
                if !valid_face(&a.face) {
                    return bad(f("appearance.face"), format!("'{}': use astronaut, camera or lfw:0..lfw:99", a.face));
                }
                if !(a.height_m.is_finite() && (1.0..=2.3).contains(&a.height_m)) {
                    return bad(f("appearance.height_m"), format!("must be in [1.0, 2.3] metres, got {}", a.height_m));
                }
            }
            if !(p.attention_range.is_finite() && p.attention_range > 0.0) {
                return bad(f("attention_range"), "must be positive".into());
            }
            match &p.motion {
                Motion::Still => {}
                Motion::Patrol { waypoints, speed } => {
                    if waypoints.is_empty() || waypoints.iter().any(|w| !inside(*w)) {
                        return bad(f("motion.waypoints"), "need at least one waypoint, all inside the map".into());
                    }
                    if !(speed.is_finite() && *speed > 0.0 && *speed <= 5.0) {
                        return bad(f("motion.speed"), format!("must be in (0, 5] m/s, got {speed}"));
                    }
                }
                Motion::Wander { radius, speed } => {
                    if !(radius.is_finite() && *radius > 0.0 && speed.is_finite() && *speed > 0.0 && *speed <= 5.0) {
                        return bad(f("motion"), "wander needs radius > 0 and speed in (0, 5]".into());
                    }
                }
            }
        }
        for (i, o) in self.objects.iter().enumerate() {
            if o.name.is_empty() || !entity_names.insert(o.name.clone()) {
                return bad(
                    format!("objects[{i}].name"),
                    format!("names must be unique among people and objects, got '{}'", o.name),
                );
            }
            if !inside(o.at) {
                return bad(format!("objects[{i}] ({}).at", o.name), "must lie inside the map".into());
            }
        }
        if self.success.is_empty() {
            return bad("success".into(), "at least one criterion is needed".into());
        }
        let all_places = self.place_names();
        for (i, c) in self.success.iter().enumerate() {
            match c {
                Criterion::EndsAt(p) if !all_places.contains(p) => {
                    return bad(format!("success[{i}].ends_at"), format!("unknown place '{p}'"));
                }
                Criterion::Photographed(e) if !entity_names.contains(e) => {
                    return bad(format!("success[{i}].photographed"), format!("unknown entity '{e}'"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Named places: every `map.places` entry, plus every room (its centre) not shadowed by one.
    pub fn places(&self) -> Vec<(String, Point2)> {
        let mut out: Vec<(String, Point2)> =
            self.map.places.iter().map(|p| (p.name.clone(), Point2::new(p.at[0], p.at[1]))).collect();
        for r in &self.map.rooms {
            if !out.iter().any(|(n, _)| n == &r.name) {
                out.push((r.name.clone(), r.center()));
            }
        }
        out
    }

    pub fn place_names(&self) -> Vec<String> {
        self.places().into_iter().map(|(n, _)| n).collect()
    }

    pub fn robot_pose(&self) -> Pose2 {
        Pose2::new(self.robot.pose[0], self.robot.pose[1], self.robot.pose[2].to_radians())
    }

    /// The names a tree may use against this scenario.
    pub fn vocabulary(&self) -> Vocabulary {
        Vocabulary {
            places: self.place_names(),
            entities: self
                .people
                .iter()
                .map(|p| p.name.clone())
                .chain(self.objects.iter().map(|o| o.name.clone()))
                .collect(),
        }
    }

    /// The room containing a point, if any.
    pub fn room_at(&self, p: Point2) -> Option<&str> {
        self.map.rooms.iter().find(|r| r.contains(p)).map(|r| r.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHOTOGRAPHER: &str = include_str!("../scenarios/photographer.yaml");

    fn err(text: &str) -> String {
        Scenario::parse(text, "s.yaml").unwrap_err().to_string()
    }

    #[test]
    fn shipped_scenario_loads() {
        let s = Scenario::parse(PHOTOGRAPHER, "photographer.yaml").unwrap();
        assert_eq!(s.people.len(), 5);
        let v = s.vocabulary();
        assert!(v.places.contains(&"kitchen".to_string()) && v.entities.contains(&"mug".to_string()));
        assert_eq!(s.room_at(Point2::new(12.0, 2.0)), Some("kitchen"));
    }

    #[test]
    fn a_robot_that_starts_in_a_wall_is_refused() {
        // The wall lobby | kitchen runs along x = 6 from y = 0 to 2.
        let e = err(&PHOTOGRAPHER.replace("pose: [2, 3, 0]", "pose: [6.1, 1, 0]"));
        assert!(
            e.contains("robot.pose") && e.contains("from wall map.walls[0], less than the robot's radius 0.3 m"),
            "{e}"
        );
        assert!(Scenario::parse(&PHOTOGRAPHER.replace("pose: [2, 3, 0]", "pose: [6.5, 1, 0]"), "s.yaml").is_ok());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = err("name: x\ngoal: [unclosed\n");
        assert!(e.starts_with("s.yaml: line 2"), "{e}");
        let e = err(&PHOTOGRAPHER.replace("time_limit_s: 300", "time_limit: 300"));
        assert!(e.contains("unknown field `time_limit`") && e.contains("line"), "{e}");
        let e = err(&PHOTOGRAPHER.replace("pose: [2, 3, 0]", "pose: [2, 3]"));
        assert!(e.contains("robot.pose") || e.contains("line"), "{e}");
        let e = err(&PHOTOGRAPHER.replace("pose: [12.5, 3, 180]", "pose: [42, 3, 180]"));
        assert!(e.contains("field 'people[0] (alice).pose'"), "{e}");
        let e = err(&PHOTOGRAPHER.replace("- name: bob", "- name: alice"));
        assert!(e.contains("people[1].name") && e.contains("unique"), "{e}");
        let e = err(&PHOTOGRAPHER.replace("miss_rate: 0.05", "miss_rate: 2"));
        assert!(e.contains("perception.miss_rate"), "{e}");
        let e = err(&PHOTOGRAPHER.replace("  - photographed_none_inattentive", "  - ends_at: garage"));
        assert!(e.contains("success[1].ends_at") && e.contains("garage"), "{e}");
        let e = err(&PHOTOGRAPHER.replace("goal: photograph each person who looks at the robot\n", ""));
        assert!(e.contains("missing field `goal`"), "{e}");
    }
}
