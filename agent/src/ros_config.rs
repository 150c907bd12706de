//! `arbor run`: the ROS 2 node's configuration, built with or without the `ros2` feature so
//! that its checks (the node's YAML, its ROS parameters, `--params-file` files) are tested on
//! every machine, and launch files can be checked against the parameter table.
//!
//! Two layers, as on ROS robots: the arbor YAML (`--config`: the robot's prior map, the
//! people and objects it knows, perception, navigation tolerances, where to record) and ROS
//! parameters (topic names, QoS, frame ids, rates), which launch files and `--params-file`
//! set and `-r` remaps.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The node's configuration file (`arbor run --config node.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(feature = "ros2"), allow(dead_code, reason = "read by the ROS 2 node; checked without it"))]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The robot's prior map: named places in the map frame, metres.
    #[serde(default)]
    pub places: BTreeMap<String, [f64; 2]>,
    /// People the robot is told about (names the planner may use).
    #[serde(default)]
    pub people: Vec<String>,
    /// Objects the robot is told about.
    #[serde(default)]
    pub objects: Vec<String>,
    /// A tree (YAML or BT.CPP XML) to run as soon as the node starts; goals replace it.
    #[serde(default)]
    pub tree: Option<PathBuf>,
    /// The robot's skill manifest (default: the photographer's); relative to this file.
    #[serde(default)]
    pub skills: Option<PathBuf>,
    #[serde(default)]
    pub perception: PerceptionSection,
    #[serde(default)]
    pub navigation: NavigationSection,
    #[serde(default)]
    pub memory: arbor_memory::WorkingConfig,
    /// Where each goal's run directory (ticks, events, memory database, outcome) goes.
    #[serde(default = "default_out_dir")]
    pub out_dir: PathBuf,
}

fn default_out_dir() -> PathBuf {
    PathBuf::from("runs/ros")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "ros2"), allow(dead_code, reason = "read by the ROS 2 node; checked without it"))]
pub struct PerceptionSection {
    /// Run the camera pipeline on the image topic.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A perception pipeline file (detector, tracker, attention), as for `arbor sim --perception-config`.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Horizontal field of view used until a CameraInfo arrives, degrees.
    #[serde(default = "default_hfov")]
    pub hfov_deg: f64,
    /// Height of the camera above the floor, metres.
    #[serde(default = "default_mount")]
    pub mount_height_m: f64,
    /// Detector threads.
    #[serde(default = "default_threads")]
    pub threads: usize,
}

fn yes() -> bool {
    true
}
fn default_hfov() -> f64 {
    90.0
}
fn default_mount() -> f64 {
    1.45
}
fn default_threads() -> usize {
    2
}

impl Default for PerceptionSection {
    fn default() -> Self {
        Self {
            enabled: true,
            config: None,
            hfov_deg: default_hfov(),
            mount_height_m: default_mount(),
            threads: default_threads(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NavigationSection {
    /// `navigate_to` succeeds within this distance of the goal, metres.
    #[serde(default = "default_tolerance")]
    pub goal_tolerance_m: f64,
    /// `navigate_to` stops this far short of a person or object (not on top of them).
    #[serde(default = "default_standoff")]
    pub standoff_m: f64,
    /// `navigate_to` gives up after this long without arriving, seconds.
    #[serde(default = "default_nav_timeout")]
    pub timeout_s: f64,
    /// `look_at` / `scan` turn rate, rad/s.
    #[serde(default = "default_turn")]
    pub turn_speed: f64,
    /// `look_at` succeeds within this heading error, radians.
    #[serde(default = "default_heading_tol")]
    pub heading_tolerance: f64,
}

fn default_tolerance() -> f64 {
    0.35
}
fn default_standoff() -> f64 {
    1.0
}
fn default_nav_timeout() -> f64 {
    120.0
}
fn default_turn() -> f64 {
    0.8
}
fn default_heading_tol() -> f64 {
    0.1
}

impl Default for NavigationSection {
    fn default() -> Self {
        Self {
            goal_tolerance_m: default_tolerance(),
            standoff_m: default_standoff(),
            timeout_s: default_nav_timeout(),
            turn_speed: default_turn(),
            heading_tolerance: default_heading_tol(),
        }
    }
}

impl NodeConfig {
    /// Reads and checks a node configuration; errors name the file, line and field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading node config {}", path.display()))?;
        Self::parse(&text, &path.display().to_string(), path.parent())
    }

    pub fn parse(text: &str, file: &str, base: Option<&Path>) -> Result<Self> {
        let mut cfg: NodeConfig = serde_yaml::from_str(text).map_err(|e| {
            let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            anyhow::anyhow!("{file}{at}: {e}")
        })?;
        let bad = |field: &str, why: String| anyhow::anyhow!("{file}: field '{field}': {why}");
        for (name, p) in &cfg.places {
            if !(p[0].is_finite() && p[1].is_finite()) {
                return Err(bad(&format!("places.{name}"), "coordinates must be finite numbers".into()));
            }
        }
        let n = &cfg.navigation;
        for (field, v) in [
            ("navigation.goal_tolerance_m", n.goal_tolerance_m),
            ("navigation.timeout_s", n.timeout_s),
            ("navigation.turn_speed", n.turn_speed),
            ("navigation.heading_tolerance", n.heading_tolerance),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(bad(field, format!("must be a positive number, got {v}")));
            }
        }
        if !(n.standoff_m >= 0.0 && n.standoff_m.is_finite()) {
            return Err(bad("navigation.standoff_m", format!("must be >= 0, got {}", n.standoff_m)));
        }
        let p = &cfg.perception;
        if !(p.hfov_deg > 1.0 && p.hfov_deg < 179.0) {
            return Err(bad("perception.hfov_deg", format!("must be in (1, 179), got {}", p.hfov_deg)));
        }
        if !(p.mount_height_m > 0.0 && p.mount_height_m.is_finite()) {
            return Err(bad("perception.mount_height_m", format!("must be positive, got {}", p.mount_height_m)));
        }
        if p.threads == 0 {
            return Err(bad("perception.threads", "must be at least 1".into()));
        }
        // Relative paths in the file are relative to the file.
        if let Some(base) = base {
            for p in [&mut cfg.tree, &mut cfg.skills, &mut cfg.perception.config].into_iter().flatten() {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        Ok(cfg)
    }
}

/// The type of one ROS parameter of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Text,
    Double,
    Integer,
    Bool,
}

impl ParamKind {
    fn name(self) -> &'static str {
        match self {
            ParamKind::Text => "a string",
            ParamKind::Double => "a number",
            ParamKind::Integer => "an integer",
            ParamKind::Bool => "true or false",
        }
    }
}

/// One ROS parameter the node reads: name, type, default, meaning.
#[derive(Debug, Clone, Copy)]
pub struct RosParam {
    pub name: &'static str,
    pub kind: ParamKind,
    pub default: &'static str,
    pub description: &'static str,
}

const fn param(name: &'static str, kind: ParamKind, default: &'static str, description: &'static str) -> RosParam {
    RosParam { name, kind, default, description }
}

/// Every ROS parameter of the node. Topic names are relative: the node's namespace applies,
/// and `--ros-args -r from:=to` remaps them.
pub const ROS_PARAMS: &[RosParam] = &[
    param("config", ParamKind::Text, "", "the arbor node YAML, when --config is not given"),
    param("out_dir", ParamKind::Text, "", "where run directories go (overrides the YAML's out_dir)"),
    param("tick_hz", ParamKind::Double, "10.0", "behavior-tree ticks per second"),
    param(
        "skills",
        ParamKind::Text,
        "",
        "the robot's skill manifest (YAML), when --skills is not given (default: the node YAML's skills:, else the photographer's)",
    ),
    param(
        "fleet",
        ParamKind::Text,
        "",
        "a fleet YAML (robot_id, broker, state_dir): status and metrics over MQTT, goals from arbor/<robot>/goals, each run's episode queued in the outbox; when --fleet is not given",
    ),
    param("metrics_addr", ParamKind::Text, "", "host:port to serve Prometheus /metrics on (empty: none)"),
    param("image_topic", ParamKind::Text, "camera/image_raw", "sensor_msgs/Image in"),
    param("camera_info_topic", ParamKind::Text, "camera/camera_info", "sensor_msgs/CameraInfo in"),
    param("odom_topic", ParamKind::Text, "odom", "nav_msgs/Odometry in: the robot's pose"),
    param("goal_topic", ParamKind::Text, "arbor/goal", "std_msgs/String in: a goal in words, or a tree"),
    param("status_topic", ParamKind::Text, "arbor/status", "std_msgs/String out: JSON status"),
    param("entities_topic", ParamKind::Text, "arbor/entities", "visualization_msgs/MarkerArray out"),
    param("cmd_vel_topic", ParamKind::Text, "cmd_vel", "geometry_msgs/Twist out (look_at, scan, stop)"),
    param(
        "goal_pose_topic",
        ParamKind::Text,
        "goal_pose",
        "geometry_msgs/PoseStamped out (navigate_to; Nav2's bt_navigator listens here)",
    ),
    param(
        "skill_action",
        ParamKind::Text,
        "arbor/execute_skill",
        "arbor_msgs/action/ExecuteSkill client: the robot's skill server",
    ),
    param("map_frame", ParamKind::Text, "map", "frame of places, goals and entity markers"),
    param("image_qos", ParamKind::Text, "sensor_data", "sensor_data (best effort) or reliable"),
    param("qos_depth", ParamKind::Integer, "10", "history depth of every topic"),
    param(
        "record_image_every",
        ParamKind::Integer,
        "10",
        "every Nth camera image goes into the run's run.mcap as a ROS message (0: none); odometry, camera_info and goals go in whole",
    ),
    param(
        "use_sim_time",
        ParamKind::Bool,
        "false",
        "follow /clock: skill deadlines, waits, records and memory use the ROS clock (simulated time under Gazebo or a bag)",
    ),
];

/// The parameter table as a ROS 2 params file with every default (`arbor run --print-params`).
/// The section is `/**`: every node the file is given to, in any namespace, under every client
/// library (a bare `arbor:` reaches `/robot1/arbor` under r2r but not under rclcpp's resolution).
pub fn params_file_text() -> String {
    let mut out = "# arbor's ROS parameters, with their defaults.\n/**:\n  ros__parameters:\n".to_string();
    for p in ROS_PARAMS {
        let value = match p.kind {
            ParamKind::Text => format!("\"{}\"", p.default),
            _ => p.default.to_string(),
        };
        out.push_str(&format!("    # {}\n    {}: {value}\n", p.description, p.name));
    }
    out
}

/// The node's topics: the parameter that names each, its message type, and the direction
/// (`in`: the node subscribes; `out`: it publishes). The skill action is a client.
pub const TOPICS: &[(&str, &str, &str)] = &[
    ("image_topic", "sensor_msgs/msg/Image", "in"),
    ("camera_info_topic", "sensor_msgs/msg/CameraInfo", "in"),
    ("odom_topic", "nav_msgs/msg/Odometry", "in"),
    ("goal_topic", "std_msgs/msg/String", "in"),
    ("status_topic", "std_msgs/msg/String", "out"),
    ("entities_topic", "visualization_msgs/msg/MarkerArray", "out"),
    ("cmd_vel_topic", "geometry_msgs/msg/Twist", "out"),
    ("goal_pose_topic", "geometry_msgs/msg/PoseStamped", "out"),
    ("skill_action", "arbor_msgs/action/ExecuteSkill", "client"),
];

/// The topic table as JSON (`arbor run --print-topics`), with default names.
pub fn topics_json() -> serde_json::Value {
    let rows: Vec<serde_json::Value> = TOPICS
        .iter()
        .map(|(param, ty, dir)| {
            let name = ros_param(param).map(|p| p.default).unwrap_or_default();
            serde_json::json!({"param": param, "topic": name, "type": ty, "direction": dir})
        })
        .collect();
    serde_json::Value::Array(rows)
}

pub fn ros_param(name: &str) -> Option<&'static RosParam> {
    ROS_PARAMS.iter().find(|p| p.name == name)
}

/// The arguments after `--ros-args` (up to a `--` that ends them), as rcl reads them.
pub fn ros_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for a in args {
        match a.as_str() {
            "--ros-args" => inside = true,
            "--" if inside => inside = false,
            _ if inside => out.push(a.clone()),
            _ => {}
        }
    }
    out
}

/// Checks what rcl would otherwise turn into a failed init (a panic inside r2r): every
/// `--params-file` must read and parse as a ROS parameter file, and parameters meant for this
/// node (a section that applies to its fully qualified name as r2r applies it: `/**`, `**`,
/// `/ns/arbor`, `arbor`; see [`section_applies`]) must be ones it has, with the right types; `-p
/// name:=value` overrides likewise. Errors name the file, line, node and parameter.
pub fn check_ros_args(args: &[String], node_fqn: &str) -> Result<()> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let value = |i: usize| -> Result<&str> {
            args.get(i + 1).map(String::as_str).with_context(|| format!("--ros-args: {a} needs a value"))
        };
        match a {
            "--params-file" => {
                check_params_file(Path::new(value(i)?), node_fqn)?;
                i += 2;
            }
            "-p" | "--param" => {
                let v = value(i)?;
                let Some((name, val)) = v.split_once(":=") else {
                    bail!("--ros-args -p {v}: expected name:=value");
                };
                // `node:name:=value` addresses one node.
                let (target, name) = match name.rsplit_once(':') {
                    Some((n, p)) => (Some(n), p),
                    None => (None, name),
                };
                if target.is_none_or(|t| param_target_applies(t, node_fqn)) {
                    let parsed: serde_yaml::Value = serde_yaml::from_str(val)
                        .map_err(|e| anyhow::anyhow!("--ros-args -p {v}: value is not valid YAML: {e}"))?;
                    check_one(name, &parsed).map_err(|e| anyhow::anyhow!("--ros-args -p {v}: {e}"))?;
                }
                i += 2;
            }
            "-r" | "--remap" | "--log-level" | "--enclave" | "-e" => {
                value(i)?;
                i += 2;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Whether a params file's node key applies to the node `fqn` (`/robot1/arbor`), by the rules
/// of the node's client library, r2r 0.9.7 (`Node::load_params`, after rclcpp): `/**` and `**`
/// apply to every node, the fully qualified name to that node, and the bare node name (`arbor`)
/// to the node of that name in any namespace. Nothing else: `/arbor` does not reach
/// `/robot1/arbor`, and `/**/arbor` or `/*/arbor` reach no node (r2r has no other wildcards).
/// Measured under r2r and rcl (Jazzy) with `-r __ns:=/robot1`; tests/ros2 keeps it measured.
pub fn section_applies(key: &str, fqn: &str) -> bool {
    let name = fqn.rsplit('/').next().unwrap_or(fqn);
    key == "/**" || key == "**" || key == fqn || (!key.is_empty() && key == name)
}

/// `-p node:name:=value` addresses nodes by name (any namespace) or by a wildcard.
fn param_target_applies(target: &str, fqn: &str) -> bool {
    let target = target.trim_start_matches('/');
    target == "*" || section_applies(target, fqn)
}

/// The node's fully qualified name after rcl's remaps `-r __ns:=/ns` and `-r __node:=name`.
pub fn fq_name(ros: &[String], default_node: &str) -> String {
    let remap = |what: &str| {
        ros.windows(2)
            .filter(|w| w[0] == "-r" || w[0] == "--remap")
            .filter_map(|w| {
                let r = w[1].as_str();
                r.strip_prefix(&format!("{what}:=")).or_else(|| r.split_once(&format!(":{what}:=")).map(|(_, n)| n))
            })
            .next_back()
            .map(str::to_string)
    };
    let node = remap("__node").unwrap_or_else(|| default_node.to_string());
    let ns = remap("__ns").unwrap_or_default();
    let ns = ns.trim_matches('/');
    if ns.is_empty() { format!("/{node}") } else { format!("/{ns}/{node}") }
}

fn check_one(name: &str, v: &serde_yaml::Value) -> std::result::Result<(), String> {
    let Some(p) = ros_param(name) else {
        let known: Vec<&str> = ROS_PARAMS.iter().map(|p| p.name).collect();
        return Err(format!("unknown parameter '{name}' (the node has: {})", known.join(", ")));
    };
    let ok = match p.kind {
        ParamKind::Text => v.is_string(),
        ParamKind::Double => v.is_f64() || v.is_i64() || v.is_u64(),
        ParamKind::Integer => v.is_i64() || v.is_u64(),
        ParamKind::Bool => v.is_bool(),
    };
    if !ok {
        return Err(format!("parameter '{name}' must be {}, got {}", p.kind.name(), yaml_brief(v)));
    }
    if name == "tick_hz" && !v.as_f64().is_some_and(|f| f > 0.0 && f <= 1000.0) {
        return Err(format!("parameter 'tick_hz' must be in (0, 1000], got {}", yaml_brief(v)));
    }
    if name == "image_qos" && !matches!(v.as_str(), Some("sensor_data" | "reliable")) {
        return Err(format!("parameter 'image_qos' must be sensor_data or reliable, got {}", yaml_brief(v)));
    }
    if name == "qos_depth" && !v.as_i64().is_some_and(|d| (1..=1000).contains(&d)) {
        return Err(format!("parameter 'qos_depth' must be in [1, 1000], got {}", yaml_brief(v)));
    }
    Ok(())
}

fn yaml_brief(v: &serde_yaml::Value) -> String {
    serde_yaml::to_string(v).unwrap_or_default().trim().chars().take(60).collect()
}

/// Checks one ROS 2 parameter file (`node: {ros__parameters: {...}}`).
pub fn check_params_file(path: &Path, node_fqn: &str) -> Result<()> {
    let file = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("--params-file {file}: cannot read it"))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        anyhow::anyhow!("--params-file {file}{at}: not valid YAML: {e}")
    })?;
    let Some(top) = doc.as_mapping() else {
        bail!("--params-file {file}: expected a mapping of node names to {{ros__parameters: ...}}");
    };
    for (key, body) in top {
        let Some(node) = key.as_str() else {
            bail!("--params-file {file}: node names must be strings, got {}", yaml_brief(key));
        };
        let Some(body) = body.as_mapping() else {
            bail!("--params-file {file}: node '{node}': expected a mapping with ros__parameters");
        };
        let Some(params) = body.get("ros__parameters") else {
            bail!("--params-file {file}: node '{node}': no 'ros__parameters' key");
        };
        if let Some(other) = body.keys().find(|k| k.as_str() != Some("ros__parameters")) {
            bail!("--params-file {file}: node '{node}': unexpected key {} (only ros__parameters)", yaml_brief(other));
        }
        let Some(params) = params.as_mapping() else {
            bail!("--params-file {file}: node '{node}': ros__parameters must be a mapping");
        };
        let mine = section_applies(node, node_fqn);
        let mut flat = Vec::new();
        flatten("", params, &mut flat).map_err(|e| anyhow::anyhow!("--params-file {file}: node '{node}': {e}"))?;
        if mine {
            for (name, v) in flat {
                check_one(&name, &v).map_err(|e| anyhow::anyhow!("--params-file {file}: node '{node}': {e}"))?;
            }
        }
    }
    Ok(())
}

/// Nested mappings name parameters with dots (`qos.depth`); values are scalars or lists of one
/// scalar type, as rcl accepts.
fn flatten(
    prefix: &str,
    m: &serde_yaml::Mapping,
    out: &mut Vec<(String, serde_yaml::Value)>,
) -> std::result::Result<(), String> {
    for (k, v) in m {
        let Some(k) = k.as_str() else { return Err(format!("parameter names must be strings, got {}", yaml_brief(k))) };
        let name = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        match v {
            serde_yaml::Value::Mapping(inner) => flatten(&name, inner, out)?,
            serde_yaml::Value::Sequence(items) => {
                let kinds: std::collections::BTreeSet<&str> = items
                    .iter()
                    .map(|i| match i {
                        serde_yaml::Value::Bool(_) => "bool",
                        serde_yaml::Value::Number(n) if n.is_f64() => "double",
                        serde_yaml::Value::Number(_) => "integer",
                        serde_yaml::Value::String(_) => "string",
                        _ => "other",
                    })
                    .collect();
                if kinds.contains("other") || kinds.len() > 1 {
                    return Err(format!("parameter '{name}': a list must hold scalars of one type"));
                }
                out.push((name, v.clone()));
            }
            serde_yaml::Value::Null => return Err(format!("parameter '{name}' has no value")),
            serde_yaml::Value::Tagged(_) => return Err(format!("parameter '{name}': tagged values are not supported")),
            _ => out.push((name, v.clone())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn node_config_checks_fields() {
        let c = NodeConfig::parse("places: {kitchen: [1, 2]}\npeople: [alice]\n", "n.yaml", None).unwrap();
        assert_eq!(c.places["kitchen"], [1.0, 2.0]);
        assert_eq!(c.navigation.goal_tolerance_m, 0.35);
        let e = NodeConfig::parse("navigation: {timeout_s: -1}\n", "n.yaml", None).unwrap_err().to_string();
        assert!(e.contains("n.yaml") && e.contains("navigation.timeout_s"), "{e}");
        let e = NodeConfig::parse("placs: {}\n", "n.yaml", None).unwrap_err().to_string();
        assert!(e.contains("n.yaml:1") && e.contains("placs"), "{e}");
        let e = NodeConfig::parse("perception: {hfov_deg: 200}\n", "n.yaml", None).unwrap_err().to_string();
        assert!(e.contains("perception.hfov_deg"), "{e}");
    }

    #[test]
    fn params_files_are_checked_before_rcl_sees_them() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(
            dir.path(),
            "good.yaml",
            "arbor:\n  ros__parameters:\n    tick_hz: 5.0\n    goal_topic: mission\n/**:\n  ros__parameters:\n    use_sim_time: false\n",
        );
        check_params_file(&good, "/arbor").unwrap();
        // A wildcard section applies to arbor too: its names are checked.
        let wild = write(dir.path(), "wild.yaml", "/**:\n  ros__parameters:\n    use_sim_time: 1.5\n");
        let e = check_params_file(&wild, "/arbor").unwrap_err().to_string();
        assert!(e.contains("use_sim_time") && e.contains("true or false"), "{e}");
        let good = write(dir.path(), "good2.yaml", "arbor:\n  ros__parameters:\n    tick_hz: 5\n    qos_depth: 5\n");
        check_params_file(&good, "/arbor").unwrap();
        // Sections for other nodes are not ours to judge.
        let other = write(dir.path(), "other.yaml", "camera_driver:\n  ros__parameters:\n    fps: 30\n");
        check_params_file(&other, "/arbor").unwrap();

        let cases = [
            ("bad_yaml.yaml", "arbor:\n  ros__parameters:\n    tick_hz: [1, 2\n", "bad_yaml.yaml:"),
            ("no_section.yaml", "arbor:\n  tick_hz: 5\n", "no 'ros__parameters'"),
            ("wrong_type.yaml", "arbor:\n  ros__parameters:\n    tick_hz: fast\n", "'tick_hz' must be a number"),
            ("unknown.yaml", "arbor:\n  ros__parameters:\n    tik_hz: 5\n", "unknown parameter 'tik_hz'"),
            ("list.yaml", "/arbor:\n  ros__parameters:\n    x: [1, a]\n", "one type"),
            ("not_map.yaml", "- a\n- b\n", "expected a mapping"),
        ];
        for (name, text, want) in cases {
            let p = write(dir.path(), name, text);
            let e = check_params_file(&p, "/arbor").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(name), "{name}: {e}");
        }
        let e = check_params_file(&dir.path().join("missing.yaml"), "/arbor").unwrap_err().to_string();
        assert!(e.contains("missing.yaml") && e.contains("cannot read"), "{e}");
    }

    #[test]
    fn the_printed_parameter_table_is_a_valid_params_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "all.yaml", &params_file_text());
        check_params_file(&p, "/arbor").unwrap();
        check_params_file(&p, "/robot1/arbor").unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&params_file_text()).unwrap();
        assert_eq!(doc["/**"]["ros__parameters"]["goal_topic"], "arbor/goal");
        assert_eq!(doc["/**"]["ros__parameters"]["tick_hz"].as_f64(), Some(10.0));
    }

    /// r2r's rules for a params file's node keys, as measured under r2r + rcl (tests/ros2).
    #[test]
    fn sections_apply_as_r2r_applies_them() {
        for (key, fqn, applies) in [
            ("arbor", "/arbor", true),
            ("arbor", "/robot1/arbor", true),
            ("/arbor", "/robot1/arbor", false),
            ("/arbor", "/arbor", true),
            ("/robot1/arbor", "/robot1/arbor", true),
            ("/robot2/arbor", "/robot1/arbor", false),
            ("/**", "/robot1/arbor", true),
            ("**", "/a/b/arbor", true),
            ("/**/arbor", "/robot1/arbor", false),
            ("/*/arbor", "/robot1/arbor", false),
            ("/*", "/arbor", false),
            ("camera_driver", "/arbor", false),
            ("", "/arbor", false),
        ] {
            assert_eq!(section_applies(key, fqn), applies, "{key} for {fqn}");
        }
        // In a namespace: a bare section is the node's, a root-namespace one is not.
        let dir = tempfile::tempdir().unwrap();
        let bare = write(dir.path(), "bare.yaml", "arbor:\n  ros__parameters:\n    tick_hz: -1.0\n");
        assert!(check_params_file(&bare, "/robot1/arbor").is_err());
        let root = write(dir.path(), "root.yaml", "/arbor:\n  ros__parameters:\n    tick_hz: -1.0\n");
        check_params_file(&root, "/robot1/arbor").unwrap();
        assert!(check_params_file(&root, "/arbor").is_err());
        let wild = write(dir.path(), "wild.yaml", "/**:\n  ros__parameters:\n    tick_hz: -1.0\n");
        assert!(check_params_file(&wild, "/robot1/arbor").is_err());
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(fq_name(&v(&[]), "arbor"), "/arbor");
        assert_eq!(fq_name(&v(&["-r", "__ns:=/robot1"]), "arbor"), "/robot1/arbor");
        assert_eq!(fq_name(&v(&["-r", "__ns:=/robot1", "-r", "__node:=cam_arbor"]), "arbor"), "/robot1/cam_arbor");
        assert_eq!(fq_name(&v(&["-r", "arbor:__node:=x"]), "arbor"), "/x");
    }

    #[test]
    fn every_topic_has_a_parameter() {
        for (param, ty, _) in TOPICS {
            let p = ros_param(param).unwrap_or_else(|| panic!("{param}"));
            assert!(!p.default.is_empty() && ty.contains('/'), "{param}");
        }
    }

    #[test]
    fn ros_args_are_split_and_checked() {
        let args: Vec<String> =
            ["arbor", "run", "--config", "x", "--ros-args", "-r", "a:=b", "-p", "tick_hz:=20", "--", "y"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(ros_args(&args), vec!["-r", "a:=b", "-p", "tick_hz:=20"]);
        check_ros_args(&ros_args(&args), "/arbor").unwrap();
        let bad = vec!["-p".to_string(), "tick_hz:=zero".to_string()];
        assert!(check_ros_args(&bad, "/arbor").unwrap_err().to_string().contains("tick_hz"));
        let other = vec!["-p".to_string(), "driver:fps:=30".to_string()];
        check_ros_args(&other, "/arbor").unwrap();
        let dangling = vec!["--params-file".to_string()];
        assert!(check_ros_args(&dangling, "/arbor").unwrap_err().to_string().contains("needs a value"));
    }
}
