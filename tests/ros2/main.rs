//! The ROS 2 node against real ROS 2 (feature `ros2`): `arbor run` with rcl through r2r, and a
//! real rclpy node (tests/ros2/peer.py) as the robot around it: base (odometry, goal_pose,
//! cmd_vel), camera (a real photograph as sensor_msgs/Image), skill server (the
//! arbor_msgs/action/ExecuteSkill action) and mission (goals, status).
//!
//! Needs the environment of `.ci/rosenv` (`source ~/.cache/arbor/ros-env.sh`). DDS stays on
//! this machine: each test picks its own ROS_DOMAIN_ID and sets
//! ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; every process is bounded in time and stopped by PID.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

// mod launch;
mod declared;
#[path = "../common/mosquitto.rs"]
mod mosquitto;
#[path = "../common/prom.rs"]
mod prom;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A DDS domain of our own per test (0..=101 are valid with default ports; avoid 0).
fn domain(test: u32) -> String {
    (1 + (std::process::id() % 15) * 6 + test).to_string()
}

fn ros_env(cmd: &mut Command, domain: &str) {
    cmd.env("ROS_DOMAIN_ID", domain)
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("RCUTILS_COLORIZED_OUTPUT", "0");
}

/// A child process that is stopped (by its PID) when the test ends, however it ends.
struct Proc(Option<Child>);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Proc {
    /// SIGINT, then wait up to `t` for the exit; returns (exit code, stdout, stderr).
    fn interrupt(&mut self, t: Duration) -> (Option<i32>, String, String) {
        let mut c = self.0.take().unwrap();
        if c.try_wait().unwrap().is_none() {
            let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
        }
        let start = Instant::now();
        let code = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break s.code();
            }
            if start.elapsed() > t {
                let _ = c.kill();
                let _ = c.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(mut o) = c.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = c.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (code, out, err)
    }
}

fn arbor_node(dir: &Path, domain: &str, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arbor"));
    cmd.arg("run").args(extra).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped());
    ros_env(&mut cmd, domain);
    Proc(Some(cmd.spawn().expect("arbor run starts")))
}

/// Runs the rclpy peer to its end (bounded) and returns its JSON report.
fn peer(dir: &Path, domain: &str, args: &[&str], timeout_s: u64) -> serde_json::Value {
    let python = std::env::var("ARBOR_ROS_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/ros2/peer.py"))
        .args(args)
        .args(["--timeout", &timeout_s.to_string()])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ros_env(&mut cmd, domain);
    let mut child = Proc(Some(cmd.spawn().expect("python3 with rclpy (source ros-env.sh)")));
    let c = child.0.as_mut().unwrap();
    let deadline = Instant::now() + Duration::from_secs(timeout_s + 20);
    while c.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the rclpy peer did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut c = child.0.take().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    c.wait().unwrap();
    let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("peer said nothing: {err}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{err}"))
}

/// The astronaut photograph as raw rgb8 (what a camera driver publishes).
fn photo(dir: &Path) -> (PathBuf, String) {
    photo_of(dir, "astronaut")
}

/// One of the test photographs (`astronaut`: one face; `coffee`, `chelsea`: none) as raw rgb8.
fn photo_of(dir: &Path, name: &str) -> (PathBuf, String) {
    let src = arbor_perception::onnx::models_dir().join(format!("images/{name}.png"));
    let img = image::open(&src).unwrap_or_else(|e| panic!("{}: {e} (run bash .ci/models)", src.display())).to_rgb8();
    let p = dir.join(format!("{name}.rgb"));
    std::fs::write(&p, img.as_raw()).unwrap();
    (p, format!("{}x{}", img.width(), img.height()))
}

const NODE_YAML: &str = "places:\n  kitchen: [2.0, 0.0]\n  hall: [0.0, 0.0]\npeople: [alice]\nout_dir: runs\n";

/// The same node without a camera pipeline (tests that send no images).
const NODE_YAML_BLIND: &str = "places:\n  kitchen: [2.0, 0.0]\n  hall: [0.0, 0.0]\npeople: [alice]\nperception: {enabled: false}\nout_dir: runs\n";

fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// A tree sent as the goal runs against rclpy's base and skill server; arbor perceives the
/// photo rclpy publishes and publishes what it tracked; remapping and a params file apply.
#[test]
fn node_runs_a_goal_against_rclpy_with_remapping_and_params_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("node.yaml"), NODE_YAML).unwrap();
    std::fs::write(
        dir.join("params.yaml"),
        "arbor:\n  ros__parameters:\n    status_topic: mission/status\n    tick_hz: 20.0\n    map_frame: map\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("goal.yaml"),
        "name: ros_errand\ngoal: go to the kitchen, look around, greet and take a photo\nroot:\n  sequence:\n    \
         - navigate_to: {target: kitchen}\n    - scan:\n    - say: {text: hello from arbor}\n    - capture_photo:\n",
    )
    .unwrap();
    let (raw, size) = photo(dir);
    let d = domain(1);
    let metrics_port = mosquitto::free_port();
    let addr = format!("metrics_addr:=127.0.0.1:{metrics_port}");
    let mut node = arbor_node(
        dir,
        &d,
        &[
            "--config",
            "node.yaml",
            "--ros-args",
            "-r",
            "arbor/goal:=/mission/goal",
            "--params-file",
            "params.yaml",
            "-p",
            &addr,
        ],
    );
    let report = peer(
        dir,
        &d,
        &[
            "--goal-file",
            "goal.yaml",
            "--goal-topic",
            "/mission/goal",
            "--status-topic",
            "mission/status",
            "--image",
            raw.to_str().unwrap(),
            "--image-size",
            &size,
        ],
        60,
    );
    // The robot's camera path moved its metrics: frames decoded, detected, tracked, observed.
    let m = scrape(metrics_port);
    for name in [
        "arbor_stage_latency_seconds_count{stage=\"frame_decode\"}",
        "arbor_stage_latency_seconds_count{stage=\"detection\"}",
        "arbor_stage_latency_seconds_count{stage=\"tracking\"}",
        "arbor_stage_latency_seconds_count{stage=\"perceive\"}",
        "arbor_observations_total",
    ] {
        assert!(m.get(name).copied().unwrap_or(0.0) > 0.0, "{name}:\n{m:#?}");
    }
    let say =
        m.iter().any(|(k, v)| k.starts_with("arbor_skill_duration_seconds_count") && k.contains("say") && *v > 0.0);
    assert!(say, "skill durations (robot time):\n{m:#?}");
    let (code, out, err) = node.interrupt(Duration::from_secs(15));
    assert_eq!(code, Some(0), "arbor run exits 0 on SIGINT\n{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(report["finished"], true, "status reached an end: {report}\n{out}\n{err}");
    assert_eq!(report["final"]["outcome"], "success", "{report}\n{out}\n{err}");
    // navigate_to went out as goal_pose in the map frame; the base drove there.
    let poses = report["goal_poses"].as_array().unwrap();
    assert_eq!(poses[0], serde_json::json!([2.0, 0.0, "map"]), "{report}");
    let pose = report["pose"].as_array().unwrap();
    assert!((pose[0].as_f64().unwrap() - 2.0).abs() < 0.4, "{report}");
    // scan turned the robot through cmd_vel.
    assert!(report["cmd_vel_turns"].as_u64().unwrap() > 5, "{report}");
    // say and capture_photo reached the skill server with their parameters, in order.
    let calls = report["skill_calls"].as_array().unwrap();
    let skills: Vec<&str> = calls.iter().map(|c| c["skill"].as_str().unwrap()).collect();
    assert_eq!(skills, vec!["say", "capture_photo"], "{report}");
    assert_eq!(calls[0]["params"]["text"], "hello from arbor");
    assert!(calls[0]["node"].as_str().unwrap().contains("say"), "{report}");
    // The face in the photo became a tracked entity, published as markers in the map frame.
    let markers = &report["markers"];
    assert_eq!(markers["frame"], "map", "{report}");
    assert!(markers["texts"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().contains("person")), "{report}");
    // The run's records.
    let runs = run_dirs(dir);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("outcome.json")).unwrap()).unwrap();
    assert_eq!(outcome["outcome"], "success");
    let calls: u64 = outcome["skill_calls"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(calls, 4, "{outcome}");
    assert_eq!(outcome["scenario"].as_str().unwrap(), "ros2:/arbor", "{outcome}");
    let ticks = std::fs::read_to_string(runs[0].join("ticks.jsonl")).unwrap();
    assert!(ticks.contains("\"skill_finished\"") && ticks.contains("capture_photo"), "{ticks}");
    let events = std::fs::read_to_string(runs[0].join("events.jsonl")).unwrap();
    for kind in ["goal_set", "entity_appeared", "arrived", "photo_taken", "run_finished"] {
        assert!(events.contains(kind), "{kind} missing in events:\n{events}");
    }
    let db = rusqlite::Connection::open(runs[0].join("memory.sqlite")).unwrap();
    let n: i64 = db.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert!(n >= 8, "{n} events in the episodic store");
    // The same events as the simulator's for the same situation: a photo names no subject here
    // (capture_photo without one), perception events carry the place they happened in.
    let evs: Vec<serde_json::Value> = events.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seen = evs.iter().find(|e| e["kind"] == "entity_appeared").unwrap();
    assert!(["kitchen", "hall"].contains(&seen["place"].as_str().unwrap_or("")), "{seen}");
    assert!(evs.iter().any(|e| e["kind"] == "said" && e["text"] == "hello from arbor"), "{events}");
    assert!(evs.iter().any(|e| e["kind"] == "arrived" && e["text"] == "arrived at kitchen"), "{events}");
    assert!(evs.iter().any(|e| e["kind"] == "skill_started" && e["text"] == "navigate_to"), "{events}");
    whole_run_directory(dir, &runs[0]);
    same_events_as_the_simulator(dir, &evs);
}

/// The same tree in the built-in simulator, on a map with the same places: the events the
/// runtime makes of the skills are the same on both backends (kinds, texts, places). A skill's
/// own result text is the backend's (its verdict is compared), and so is what it sees.
fn same_events_as_the_simulator(dir: &Path, robot: &[serde_json::Value]) {
    std::fs::write(
        dir.join("scenario.yaml"),
        "name: same_places\ngoal: go to the kitchen, look around, greet and take a photo\ntime_limit_s: 60\n\
         tick_hz: 10\nmap:\n  size: [6, 3]\n  resolution: 0.1\n  rooms:\n    - {name: hall, min: [0, 0], max: [2, 3]}\n\
         \x20   - {name: kitchen, min: [2, 0], max: [6, 3]}\n  places:\n    - {name: hall, at: [1, 1.5]}\n\
         \x20   - {name: kitchen, at: [3, 1.5]}\nrobot:\n  pose: [1, 1.5, 0]\npeople: []\nsuccess: [{said: hello}]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["sim", "--scenario", "scenario.yaml", "--tree", "goal.yaml", "--out", "simrun"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sim: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("simrun/events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // What the runtime makes of the skills: kind, text (a skill's verdict without its detail),
    // place. Perception differs (the robot sees a photo, the simulated kitchen is empty).
    let skill_side = |evs: &[serde_json::Value]| -> Vec<(String, String, String)> {
        evs.iter()
            .filter(|e| {
                !["entity_appeared", "entity_left", "attention_started", "attention_stopped"]
                    .contains(&e["kind"].as_str().unwrap())
            })
            .map(|e| {
                let kind = e["kind"].as_str().unwrap().to_string();
                let text = e["text"].as_str().unwrap();
                let text = match kind.as_str() {
                    "skill_finished" => text.split(':').next().unwrap().to_string(),
                    "photo_taken" => "photo".into(),
                    _ => text.to_string(),
                };
                (kind, text, e["place"].as_str().unwrap_or("").to_string())
            })
            .collect()
    };
    assert_eq!(skill_side(robot), skill_side(&sim), "robot run vs simulator run");
}

/// The ROS messages the node consumed are in its run.mcap as ROS 2 channels (cdr, ros2msg):
/// the Foxglove libraries decode them as they decode a rosbag2 recording.
fn ros_channels_decode_in_python(run: &Path) {
    let venv = arbor_perception::onnx::cache_dir().join("venv/bin/python");
    let py = std::env::var("ARBOR_PYTHON").map(PathBuf::from).unwrap_or(venv);
    if !py.is_file() {
        assert!(std::env::var_os("CI").is_none(), "no Python venv with mcap-ros2-support: run `bash .ci/pyenv`");
        eprintln!("skipped: no Python venv with mcap-ros2-support (bash .ci/pyenv)");
        return;
    }
    let out = Command::new(&py)
        .arg(root().join("tests/python/ros2_channels.py"))
        .arg(run.join("run.mcap"))
        // The ROS environment's PYTHONPATH is not this venv's.
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    // The goal that started the run (the channel is named by the parameter; rcl remapped it).
    assert!(v["arbor/goal"]["data"].as_str().unwrap_or("").contains("name: ros_errand"), "{v}");
    assert!(v["odom"]["count"].as_u64().unwrap() > 5, "{v}");
    assert_eq!(v["odom"]["type"], "nav_msgs/msg/Odometry", "{v}");
    assert_eq!(v["odom"]["encoding"], "ros2msg", "{v}");
    assert_eq!(v["odom"]["frame_id"], "map", "{v}");
    assert!(v["camera/image_raw"]["count"].as_u64().unwrap() >= 1, "decimated, not none: {v}");
    assert_eq!(v["camera/image_raw"]["encoding_px"], "rgb8", "{v}");
    assert!(v["camera/camera_info"]["k0"].as_f64().unwrap() > 0.0, "{v}");
}

/// A robot run is a whole run directory: replay reproduces it, Groot2's log, a dataset line and
/// the report come from it, as from a simulator run.
fn whole_run_directory(dir: &Path, run: &Path) {
    let arbor = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arbor")).args(args).current_dir(dir).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), text)
    };
    let run_s = run.to_str().unwrap();
    let (code, text) = arbor(&["replay", run_s]);
    assert_eq!(code, Some(0), "arbor replay of the robot run:\n{text}");
    assert!(text.contains("IDENTICAL"), "{text}");
    let (code, text) = arbor(&["btlog", run_s, "-o", "run.btlog"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(std::fs::metadata(dir.join("run.btlog")).unwrap().len() > 100, "{text}");
    let (code, text) = arbor(&["dataset", "build", run_s, "-o", "ds"]);
    assert_eq!(code, Some(0), "{text}");
    let train = std::fs::read_to_string(dir.join("ds/train.jsonl")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("ds/val.jsonl")).unwrap_or_default();
    assert_eq!(train.lines().count(), 1, "one line from the robot run: {text}");
    assert!(train.contains("go to the kitchen"), "{train}");
    // Semantic memory forms on a robot run: where people were seen, where the robot went.
    let db = run.join("memory.sqlite");
    let (code, text) = arbor(&["memory", "facts", db.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(" was seen in the "), "a seen_in fact: {text}");
    assert!(text.contains("the robot went to the kitchen"), "{text}");
    ros_channels_decode_in_python(run);
    let (code, text) = arbor(&["report", run_s, "-o", "report.html"]);
    assert_eq!(code, Some(0), "{text}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("ros2:/arbor"), "the report shows the robot run");
}

/// SIGINT while a remote skill runs: the tree halts, the skill server sees the cancel, the
/// records are finished, the exit is clean.
#[test]
fn sigint_halts_the_tree_cancels_the_skill_and_finishes_the_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("node.yaml"), NODE_YAML_BLIND).unwrap();
    // The peer holds `say: hold` until it is cancelled.
    std::fs::write(
        dir.join("goal.yaml"),
        "name: long\nroot:\n  sequence:\n    - say: {text: hold}\n    - wait: {seconds: 600}\n",
    )
    .unwrap();
    let d = domain(2);
    let mut node = arbor_node(dir, &d, &["--config", "node.yaml"]);
    let pid = node.0.as_ref().unwrap().id().to_string();
    let report = peer(dir, &d, &["--goal-file", "goal.yaml", "--interrupt-pid", &pid, "--interrupt-after", "3"], 30);
    let (code, out, err) = node.interrupt(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("halted"), "{out}");
    assert_eq!(report["finished"], true, "{report}");
    assert_eq!(report["final"]["state"], "halted", "{report}");
    assert_eq!(report["cancelled"], serde_json::json!(["say"]), "the skill server saw the cancel: {report}");
    let runs = run_dirs(dir);
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("outcome.json")).unwrap()).unwrap();
    assert_eq!(outcome["outcome"], "halted", "{outcome}");
    let ticks = std::fs::read_to_string(runs[0].join("ticks.jsonl")).unwrap();
    assert!(ticks.contains("\"skill_halted\""), "{ticks}");
    let events = std::fs::read_to_string(runs[0].join("events.jsonl")).unwrap();
    assert!(events.lines().last().unwrap().contains("run finished: halted"), "{events}");
}

/// A malformed params file, a bad parameter value and a bad node YAML: clear errors naming
/// the file and field, exit 2, no panic.
#[test]
fn bad_params_and_config_are_clear_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("node.yaml"), NODE_YAML).unwrap();
    std::fs::write(dir.join("broken.yaml"), "arbor:\n  ros__parameters:\n    tick_hz: [1, 2\n").unwrap();
    std::fs::write(dir.join("typo.yaml"), "arbor:\n  ros__parameters:\n    statsu_topic: x\n").unwrap();
    std::fs::write(dir.join("bad_node.yaml"), "places:\n  kitchen: [1.0]\n").unwrap();
    let d = domain(3);
    let cases: [(&[&str], &str); 4] = [
        (&["--config", "node.yaml", "--ros-args", "--params-file", "broken.yaml"], "broken.yaml:"),
        (&["--config", "node.yaml", "--ros-args", "--params-file", "typo.yaml"], "unknown parameter 'statsu_topic'"),
        (&["--config", "node.yaml", "--ros-args", "-p", "tick_hz:=-3.0"], "tick_hz"),
        (&["--config", "bad_node.yaml"], "bad_node.yaml"),
    ];
    for (args, want) in cases {
        let mut node = arbor_node(dir, &d, args);
        let c = node.0.as_mut().unwrap();
        let start = Instant::now();
        while c.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(20), "{args:?}: arbor run did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (code, out, err) = node.interrupt(Duration::from_secs(1));
        assert_eq!(code, Some(2), "{args:?}\n{out}\n{err}");
        assert!(err.contains(want) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A goal in words goes to the LLM planner (real SmolLM2 through llama.cpp) on a worker thread;
/// the plan it writes runs against the rclpy robot to an end. The base model's plans are
/// often wrong (see the learning loop); what is checked is the path: planning -> running ->
/// an outcome, with the plan recorded.
///
/// The same node is the robot side of "every registered metric moves": its camera runs at
/// 5 Hz against 2 ticks a second (frames superseded before a tick takes them are dropped), the
/// goal arrives twice 0.3 s apart once the camera's first sighting is in memory (the second,
/// identical request joins the first in flight: one generation, one model load), and a tree
/// whose script reads a key nobody set ends the session (a node's runtime error). Scraped all
/// along, every metric family the node registers must have moved but one:
/// `plan_cache_hits_total`, because a robot's second identical goal after a run is not an
/// identical request (the run changed its memory, so the prompt differs, and the cache rightly
/// misses); the same request twice in one process counts its hit in `agent/src/plan.rs`'s test.
#[cfg(feature = "llm")]
#[test]
fn a_goal_in_words_is_planned_by_the_llm_and_run_and_every_metric_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("node.yaml"), NODE_YAML).unwrap();
    std::fs::write(dir.join("goal.txt"), "go to the kitchen and say hello").unwrap();
    std::fs::write(
        dir.join("bad_key.yaml"),
        "name: bad_key\nroot:\n  sequence:\n    - script: {code: \"n := missing_key + 1\"}\n    - say: {text: hi}\n",
    )
    .unwrap();
    // No face in view while planning: what the camera adds to memory cannot change the prompt
    // between the two identical requests (the detector, tracker and memory still run on every
    // frame); a face once the planned run ended (entities tracked and remembered).
    let (raw, size) = photo_of(dir, "coffee");
    let (face, face_size) = photo(dir);
    let d = domain(4);
    let metrics_port = mosquitto::free_port();
    let addr = format!("metrics_addr:=127.0.0.1:{metrics_port}");
    let mut node = arbor_node(
        dir,
        &d,
        &["--config", "node.yaml", "--max-tokens", "320", "--ros-args", "-p", &addr, "-p", "tick_hz:=2.0"],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut moved = std::collections::BTreeSet::new();
            let mut last = String::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(text) = prom::try_scrape(metrics_port) {
                    moved.extend(prom::moved(&text));
                    last = text;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            (moved, last)
        })
    };
    let args = [
        "--goal-file",
        "goal.txt",
        "--goal-file",
        "bad_key.yaml",
        "--repeat-first",
        "1",
        "--settle",
        "2",
        "--linger",
        "4",
    ];
    let images = ["--image", raw.to_str().unwrap(), "--image-size", &size, "--image-later", face.to_str().unwrap()];
    let images = [&images[..], &["--image-later-size", &face_size]].concat();
    let report = peer(dir, &d, &[&args[..], &images[..]].concat(), 240);
    std::thread::sleep(Duration::from_millis(600));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (moved, last) = scraper.join().unwrap();
    let (code, out, err) = node.interrupt(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{out}\n{err}");
    let states: Vec<&str> = report["states"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(states.contains(&"planning"), "{report}\n{out}\n{err}");
    assert_eq!(report["finished"], true, "{report}\n{out}\n{err}");
    let runs = run_dirs(dir);
    assert_eq!(runs.len(), 2, "{runs:?}\n{report}\n{out}\n{err}");
    assert!(runs[0].join("plan.json").exists() && runs[0].join("outcome.json").exists(), "{runs:?}");
    let families = prom::families(&last);
    assert!(families.len() >= 15, "{last}");
    let still: Vec<&String> =
        families.iter().filter(|f| !moved.contains(*f) && f.as_str() != "arbor_plan_cache_hits_total").collect();
    assert!(still.is_empty(), "registered on the node and never moved: {still:?}\n{last}");
    for (name, at_least) in [
        ("arbor_duplicate_requests_avoided_total", 1.0),
        ("arbor_frames_dropped_total", 1.0),
        ("arbor_errors_total{kind=\"node_runtime\"}", 1.0),
        ("arbor_plans_total{result=\"ok\"}", 1.0),
    ] {
        let v = prom::sample(&last, name).unwrap_or(0.0);
        assert!(v >= at_least, "{name} = {v} (want >= {at_least}):\n{last}");
    }
}

/// GET /metrics: the Prometheus text, as (name with labels -> value).
fn scrape(port: u16) -> std::collections::BTreeMap<String, f64> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.starts_with("HTTP") && l.contains(' '))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
        .collect()
}

/// The node joins the fleet: a goal sent on `arbor/robot1/goals` (MQTT, a Mosquitto of the
/// test's own) runs on the robot, the finished run's episode reaches a collector; the node serves
/// Prometheus `/metrics` and the run moved its counters.
#[test]
fn node_joins_the_fleet_takes_a_remote_goal_and_serves_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Some(broker) = mosquitto::Broker::start(dir, "") else { return };
    std::fs::write(dir.join("node.yaml"), NODE_YAML_BLIND).unwrap();
    std::fs::write(
        dir.join("robot1.yaml"),
        format!(
            "robot_id: robot1\nbroker: {{url: \"{}\"}}\nstate_dir: {}\n",
            broker.url(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    let collected = dir.join("collected");
    let mut collector = Proc(Some(
        Command::new(env!("CARGO_BIN_EXE_arbor"))
            .args(["collect", "--broker", &broker.url(), "-o", collected.to_str().unwrap(), "--exit-after", "1"])
            .args(["--idle-exit", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let metrics_port = mosquitto::free_port();
    let d = domain(5);
    let addr = format!("metrics_addr:=127.0.0.1:{metrics_port}");
    let mut node = arbor_node(dir, &d, &["--config", "node.yaml", "--fleet", "robot1.yaml", "--ros-args", "-p", &addr]);
    // The robot is online on the broker (retained status): then the goal goes out.
    let mut opts = rumqttc::MqttOptions::new("arbor-ros-test", "127.0.0.1", broker.port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = rumqttc::Client::new(opts, 16);
    client.subscribe("arbor/robot1/status", rumqttc::QoS::AtLeastOnce).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut online = false;
    while !online && Instant::now() < deadline {
        if let Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) =
            conn.recv_timeout(Duration::from_millis(200))
        {
            online = p.payload.starts_with(b"online");
        }
    }
    assert!(online, "the node did not come online on the broker");
    // The robot's base and skill server up first, then the goal from the fleet.
    let (peer_dir, peer_domain) = (dir.to_path_buf(), d.clone());
    let peer_thread = std::thread::spawn(move || peer(&peer_dir, &peer_domain, &[], 40));
    std::thread::sleep(Duration::from_secs(3));
    let goal = serde_json::json!({
        "goal": "greet from the fleet",
        "tree": "name: fleet_errand\nroot:\n  sequence:\n    - navigate_to: {target: kitchen}\n    - say: {text: hi fleet}\n",
    });
    client.publish("arbor/robot1/goals", rumqttc::QoS::AtLeastOnce, false, goal.to_string()).unwrap();
    let pump = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let _ = conn.recv_timeout(Duration::from_millis(100));
        }
    });
    let report = peer_thread.join().unwrap();
    pump.join().unwrap();
    assert_eq!(report["final"]["outcome"], "success", "{report}");
    let m = scrape(metrics_port);
    let (code, out, err) = node.interrupt(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("queued for the fleet"), "{out}\n{err}");
    for (name, at_least) in [
        ("arbor_ticks_total", 2.0),
        ("arbor_skill_calls_total{skill=\"say\"}", 1.0),
        ("arbor_runs_total{outcome=\"success\"}", 1.0),
        ("arbor_memory_events_total", 4.0),
        ("arbor_stage_latency_seconds_count{stage=\"tree_tick\"}", 1.0),
        ("arbor_stage_latency_seconds_count{stage=\"memory_update\"}", 1.0),
        ("arbor_stage_latency_seconds_count{stage=\"record\"}", 1.0),
    ] {
        let v = m.get(name).copied().unwrap_or(0.0);
        assert!(v >= at_least, "{name} = {v} (want >= {at_least}):\n{m:#?}");
    }
    // The collector wrote the robot's episode as a run directory.
    let code = {
        let c = collector.0.as_mut().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                break s.code();
            }
            assert!(Instant::now() < until, "the collector got no episode");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(code, Some(0));
    let robot_dir = collected.join("robot1");
    let episodes: Vec<PathBuf> = std::fs::read_dir(&robot_dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    let outcome = std::fs::read_to_string(episodes[0].join("outcome.json")).unwrap();
    assert!(outcome.contains("ros2:/arbor") && outcome.contains("\"success\""), "{outcome}");
    drop(broker);
}

/// use_sim_time: an rclpy /clock running 10x real time drives the node's time. A 20 s wait and
/// a 30 s navigation timeout pass in a few seconds of wall time, and the records are stamped in
/// simulated time.
#[test]
fn use_sim_time_makes_timeouts_and_records_follow_the_ros_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("node.yaml"),
        "places:\n  far: [500.0, 0.0]\nperception: {enabled: false}\nnavigation: {timeout_s: 30}\nout_dir: runs\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("goal.yaml"),
        "name: sim_time\nroot:\n  sequence:\n    - wait: {seconds: 20}\n    - navigate_to: {target: far}\n",
    )
    .unwrap();
    let d = domain(6);
    let mut node = arbor_node(dir, &d, &["--config", "node.yaml", "--ros-args", "-p", "use_sim_time:=true"]);
    let started = Instant::now();
    let report = peer(dir, &d, &["--goal-file", "goal.yaml", "--clock-rate", "10"], 40);
    let wall = started.elapsed().as_secs_f64();
    let (code, out, err) = node.interrupt(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(report["final"]["outcome"], "failure", "the navigation timed out: {report}\n{out}\n{err}");
    let runs = run_dirs(dir);
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("outcome.json")).unwrap()).unwrap();
    let sim_s = outcome["sim_time_s"].as_f64().unwrap();
    // 20 s of waiting and 30 s of driving in simulated time (since the node's first reading).
    assert!(sim_s >= 50.0, "records in simulated time: {sim_s} s\n{outcome}");
    assert!(wall < sim_s / 2.0, "{wall:.1} s of wall time for {sim_s:.1} s of ROS time");
    let events = std::fs::read_to_string(runs[0].join("events.jsonl")).unwrap();
    assert!(events.contains("did not reach far within 30 s"), "{events}");
}

/// A params file in a namespace, as the node's client library (r2r) applies it, and arbor's own
/// check agrees: a bare `arbor:` section reaches `/robot1/arbor` (its status topic is used; its
/// out-of-range tick_hz is named before rcl sees it), `/arbor:` does not (its bad value is
/// neither applied nor judged: the node runs), `/**:` does.
#[test]
fn params_file_sections_apply_as_r2r_applies_them_in_a_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("node.yaml"), NODE_YAML_BLIND).unwrap();
    let files = [
        ("bare_topic.yaml", "arbor:\n  ros__parameters:\n    status_topic: ns_status\n"),
        ("bare_bad.yaml", "arbor:\n  ros__parameters:\n    tick_hz: -1.0\n"),
        ("root_bad.yaml", "/arbor:\n  ros__parameters:\n    tick_hz: -1.0\n"),
        ("wild_bad.yaml", "/**:\n  ros__parameters:\n    tick_hz: -1.0\n"),
    ];
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    let d = domain(0);
    let start = |file: &str| {
        arbor_node(dir, &d, &["--config", "node.yaml", "--ros-args", "-r", "__ns:=/robot1", "--params-file", file])
    };
    // Runs until stopped: (exit, stdout, stderr) after SIGINT, or the exit it came to itself.
    let outcome = |mut node: Proc| {
        let until = Instant::now() + Duration::from_secs(4);
        while node.0.as_mut().unwrap().try_wait().unwrap().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        node.interrupt(Duration::from_secs(15))
    };
    let (code, out, err) = outcome(start("bare_topic.yaml"));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("node /robot1/arbor up") && out.contains("status on 'ns_status'"), "{out}\n{err}");
    let (code, out, err) = outcome(start("root_bad.yaml"));
    assert_eq!(code, Some(0), "`/arbor:` is not /robot1/arbor's: {out}\n{err}");
    for file in ["bare_bad.yaml", "wild_bad.yaml"] {
        let (code, out, err) = outcome(start(file));
        assert_eq!(code, Some(2), "{file}: {out}\n{err}");
        assert!(err.contains(file) && err.contains("tick_hz"), "{err}");
    }
}
