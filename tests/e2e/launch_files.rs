//! The ROS 2 launch files, parameter files, the ros_gz_bridge YAML and the Gazebo world,
//! checked as far as this machine allows (no `launch`, no Gazebo): the launch files compile
//! and set only parameters and remap only topics the node has; the node accepts the shipped
//! parameter and config files; the bridge's topic names and types match the node's; the world
//! passes `ign sdf -k` without a warning (Debian's ignition-tools + libsdformat, .ci/setup).

use crate::{arbor, root, stderr, stdout};
use std::collections::BTreeMap;
use std::process::Command;

fn launch_info() -> serde_json::Value {
    let out = Command::new("python3")
        .arg(root().join("tests/e2e/check_launch.py"))
        .args(["launch/arbor.launch.py", "launch/sim.launch.py"])
        .current_dir(root())
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The node's parameters (name -> default) as it prints them.
fn node_params() -> BTreeMap<String, serde_yaml::Value> {
    let o = arbor(&["run", "--print-params"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_yaml::Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    doc["/**"]["ros__parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

/// The node's topics: default name -> (type, direction).
fn node_topics() -> BTreeMap<String, (String, String)> {
    let o = arbor(&["run", "--print-topics"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    rows.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("topic"), (s("type"), s("direction")))
        })
        .collect()
}

#[test]
fn launch_files_set_only_what_the_node_has() {
    let info = launch_info();
    let params = node_params();
    let topics = node_topics();
    let mut arbor_nodes = 0;
    for (file, v) in info.as_object().unwrap() {
        for node in v["nodes"].as_array().unwrap() {
            if node["package"] != "arbor" {
                continue;
            }
            arbor_nodes += 1;
            assert_eq!(node["executable"], "arbor", "{file}");
            assert_eq!(node["name"], "arbor", "{file}: the params files are keyed by this name");
            assert_eq!(node["arguments"][0], "run", "{file}: {node}");
            assert_eq!(node["arguments"][1], "--config", "{file}: {node}");
            for p in node["parameters"].as_array().unwrap() {
                let p = p.as_str().unwrap();
                assert!(params.contains_key(p), "{file}: parameter '{p}' is not one of the node's: {params:?}");
            }
            for r in node["remappings"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                assert!(topics.contains_key(r), "{file}: remaps '{r}', which the node does not use: {topics:?}");
            }
            // Every params file it passes is one the node accepts, with the config it passes.
            for f in node["param_files"].as_array().unwrap() {
                let f = format!("launch/params/{}", f.as_str().unwrap());
                let config = match file.as_str() {
                    "launch/sim.launch.py" => "launch/params/gazebo_node.yaml",
                    _ => "launch/params/node.yaml",
                };
                accepted(&["run", "--config", config, "--ros-args", "--params-file", &f]);
            }
        }
    }
    assert_eq!(arbor_nodes, 2, "one arbor node in each launch file");
    // Config defaults of the launch arguments exist.
    for (file, v) in info.as_object().unwrap() {
        let args = v["arguments"].as_object().unwrap();
        if let Some(path) = args.get("config").and_then(|c| c["path"].as_array()) {
            let name = path.last().unwrap().as_str().unwrap();
            assert!(root().join("launch/params").join(name).exists(), "{file}: {name}");
        }
    }
}

/// The node's checks passed: a build without the `ros2` feature then says only that it has no
/// ROS (a bad file would have been named first).
fn accepted(args: &[&str]) {
    let o = arbor(args);
    let err = stderr(&o);
    assert!(o.status.success() || err.contains("built without the ROS 2 node"), "{args:?} was rejected: {err}");
}

#[test]
fn shipped_node_configs_are_valid_and_bad_ones_are_named() {
    for c in ["launch/params/node.yaml", "launch/params/gazebo_node.yaml"] {
        accepted(&["run", "--config", c]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "navigation:\n  timeout_s: 0\n").unwrap();
    let o = arbor(&["run", "--config", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.yaml") && stderr(&o).contains("navigation.timeout_s"), "{}", stderr(&o));
    let broken = tmp.path().join("broken_params.yaml");
    std::fs::write(&broken, "arbor:\n  ros__parameters: {tick_hz: \n").unwrap();
    let o = arbor(&["run", "--ros-args", "--params-file", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("broken_params.yaml") && !stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn bridge_topics_and_types_match_the_node() {
    let topics = node_topics();
    let text = std::fs::read_to_string(root().join("launch/params/bridge.yaml")).unwrap();
    let entries: Vec<serde_yaml::Value> = serde_yaml::from_str(&text).unwrap();
    let world = std::fs::read_to_string(root().join("sim/gazebo/worlds/arbor_home.sdf")).unwrap();
    let mut matched = BTreeMap::new();
    for e in &entries {
        let s = |k: &str| e[k].as_str().unwrap_or_else(|| panic!("bridge entry without {k}: {e:?}")).to_string();
        let (ros, gz, ros_ty, dir) = (s("ros_topic_name"), s("gz_topic_name"), s("ros_type_name"), s("direction"));
        // Every Gazebo topic is one the world publishes or subscribes (or the world clock).
        assert!(gz == "/clock" || world.contains(&gz), "{gz} is not in the world");
        if let Some((ty, node_dir)) = topics.get(&ros) {
            assert_eq!(&ros_ty, ty, "{ros}: the bridge's type differs from the node's");
            let want = if node_dir == "in" { "GZ_TO_ROS" } else { "ROS_TO_GZ" };
            assert_eq!(dir, want, "{ros}: direction");
            matched.insert(ros, gz);
        } else {
            // Only what Nav2 and the clock need may be bridged besides the node's topics.
            assert!(["clock", "scan", "tf"].contains(&ros.as_str()), "{ros}: not a topic of the node");
        }
    }
    for t in ["camera/image_raw", "camera/camera_info", "odom", "cmd_vel"] {
        assert!(matched.contains_key(t), "the node's {t} is not bridged: {matched:?}");
    }
}

#[test]
fn the_gazebo_world_is_valid_sdf_without_warnings() {
    let world = root().join("sim/gazebo/worlds/arbor_home.sdf");
    let out = Command::new("ign")
        .args(["sdf", "-k"])
        .arg(&world)
        .output()
        .expect("`ign` (Debian's ignition-tools + libsdformat-dev; installed by .ci/setup)");
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && so.contains("Valid"), "{so}\n{se}");
    // `ign` says it lacks a backtrace library on Debian: that line is about the tool.
    let warnings: Vec<&str> = se.lines().filter(|l| !l.contains("libignition-tools-backward")).collect();
    assert!(warnings.iter().all(|l| l.trim().is_empty()), "sdf warnings: {warnings:?}");
    let text = std::fs::read_to_string(&world).unwrap();
    assert!(text.contains("<sdf version=\"1.9\">"));
    // The people and places of the node's Gazebo config are in the world.
    let cfg: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("launch/params/gazebo_node.yaml")).unwrap()).unwrap();
    for p in cfg["people"].as_sequence().unwrap() {
        let name = p.as_str().unwrap();
        assert!(text.contains(&format!("<model name=\"{name}\">")), "{name} is not in the world");
    }
    for (name, xy) in cfg["places"].as_mapping().unwrap() {
        let x = xy[0].as_f64().unwrap();
        let y = xy[1].as_f64().unwrap();
        assert!((0.0..=12.0).contains(&x) && (0.0..=5.0).contains(&y), "{name:?} is outside the rooms");
    }
}
