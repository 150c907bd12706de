//! Skills declared in a manifest, on a robot: `arbor run --skills` against real typed rclpy
//! servers (tests/ros2/servers.py): a NavigateToPose-shaped action (the tests' nav2_msgs), test_msgs'
//! Fibonacci feeding an output port, a publish, std_srvs' SetBool and Trigger, a topic-backed
//! condition; and manifests that do not fit their interfaces refused at load.

use super::{Proc, arbor_node, domain, root, ros_env, run_dirs};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SKILLS: &str = r#"skills:
  - name: wait
    description: do nothing for a while
    builtin: wait
    inputs:
      - {name: seconds, type: number, min: 0, max: 600}
  - name: go
    description: drive to a place through the navigator
    inputs:
      - {name: target, type: place}
      - {name: tree, type: text, default: ""}
    outputs:
      - {name: code, type: integer}
    ros2:
      action:
        type: nav2_msgs/action/NavigateToPose
        server: navigate_to_pose
        goal: {pose: "{target}", behavior_tree: "{tree}"}
        result: {code: error_code}
        success: "error_code == 0"
  - name: fibonacci
    description: count
    inputs:
      - {name: order, type: integer, min: 0, max: 100}
    outputs:
      - {name: sequence, type: json}
    ros2:
      action: {type: test_msgs/action/Fibonacci, server: fibonacci, goal: {order: "{order}"}, result: {sequence: sequence}}
  - name: announce
    description: say something on a topic
    inputs:
      - {name: text, type: text, max_length: 200}
    ros2:
      publish: {type: std_msgs/msg/String, topic: announce, message: {data: "{text}"}}
  - name: enable_gripper
    description: switch the gripper on or off
    inputs:
      - {name: enabled, type: bool}
    ros2:
      service: {type: std_srvs/srv/SetBool, name: gripper/enable, request: {data: "{enabled}"}, success: "success == true"}
  - name: dock
    description: drive onto the dock
    ros2:
      service: {type: std_srvs/srv/Trigger, name: dock, success: "success == true"}
  - name: is_holding
    kind: condition
    description: the gripper holds the object
    inputs:
      - {name: object, type: entity}
    ros2:
      topic: {type: std_msgs/msg/String, topic: gripper/held, rule: "data == '{object}'"}
"#;

const TREE: &str = r#"name: declared
root:
  sequence:
    - wait: {seconds: 2.5}
    - go: {target: kitchen, code: "{code}"}
    - fibonacci: {order: 5, sequence: "{seq}"}
    - announce: {text: "{seq}"}
    - fallback:
        - is_holding: {object: mug}
        - is_holding: {object: cup}
    - inverter:
        child:
          enable_gripper: {enabled: false}
    - inverter:
        child:
          fibonacci: {order: 50, sequence: "{big}"}
    - inverter:
        child:
          timeout:
            msec: 1500
            child:
              go: {target: far, tree: slow}
    - dock:
"#;

const NODE: &str = "places:\n  kitchen: [2.0, 1.5]\n  far: [50.0, 50.0]\nobjects: [cup, mug]\nperception: {enabled: false}\ntree: tree.yaml\nskills: skills.yaml\nout_dir: runs\n";

fn servers(dir: &Path, d: &str) -> Proc {
    let python = std::env::var("ARBOR_ROS_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/ros2/servers.py"))
        .args(["--timeout", "60"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ros_env(&mut cmd, d);
    let mut p = Proc(Some(cmd.spawn().expect("python3 with rclpy (source ros-env.sh)")));
    // Up before the node: its tree's first skills find their servers.
    let out = p.0.as_mut().unwrap().stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
    p.0.as_mut().unwrap().stdout = None;
    std::thread::spawn(move || {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let _ = std::fs::write(
            std::env::temp_dir().join(format!("arbor-servers-{}.json", std::process::id())),
            rest.join("\n"),
        );
    });
    p
}

fn ticks(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("ticks.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn detail(ticks: &[serde_json::Value], skill: &str, success: bool) -> String {
    ticks
        .iter()
        .find(|t| t["event"] == "skill_finished" && t["skill"] == skill && t["success"] == success)
        .map(|t| t["detail"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {skill} finishing with {success}"))
}

#[test]
fn declared_skills_drive_typed_ros_interfaces_through_untyped_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("skills.yaml"), SKILLS).unwrap();
    std::fs::write(dir.join("tree.yaml"), TREE).unwrap();
    std::fs::write(dir.join("node.yaml"), NODE).unwrap();
    let d = domain(7);
    let report_file = std::env::temp_dir().join(format!("arbor-servers-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&report_file);
    let mut srv = servers(dir, &d);
    let mut node = arbor_node(dir, &d, &["--config", "node.yaml"]);
    let start = Instant::now();
    let c = srv.0.as_mut().unwrap();
    while c.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(90), "the servers did not end");
        if node.0.as_mut().unwrap().try_wait().unwrap().is_some() {
            break; // the node ended early: its error is below
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(800));
    let (code, out, err) = node.interrupt(Duration::from_secs(15));
    let mut srv_err = String::new();
    if let Some(mut e) = srv.0.take().and_then(|mut c| c.stderr.take()) {
        let _ = e.read_to_string(&mut srv_err);
    }
    assert_eq!(code, Some(0), "{out}\n{err}");
    let text = std::fs::read_to_string(&report_file).unwrap_or_default();
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("servers said nothing: {srv_err}\n{err}"));
    let report: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(report["finished"], true, "{report}\n{out}\n{err}");
    // The goal's fields: the place's coordinates in the map frame, the text port.
    let nav = &report["navigate"][0];
    assert_eq!(
        (nav["x"].as_f64(), nav["y"].as_f64(), nav["frame"].as_str()),
        (Some(2.0), Some(1.5), Some("map")),
        "{report}"
    );
    assert_eq!(nav["qw"], 1.0);
    assert_eq!(report["navigate"][1]["behavior_tree"], "slow", "{report}");
    // Halting the slow goal (the timeout) cancelled it on the server.
    assert_eq!(report["cancelled"], serde_json::json!(["slow"]), "{report}");
    // Fibonacci's result reached a later node through its output port.
    assert_eq!(report["fibonacci"], serde_json::json!([5]), "{report}");
    assert_eq!(report["announced"], serde_json::json!(["[0,1,1,2,3]"]), "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(report["set_bool"], serde_json::json!([false]), "{report}");
    assert_eq!(report["docked"], true, "{report}");

    let runs = run_dirs(dir);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("outcome.json")).unwrap()).unwrap();
    assert_eq!(outcome["outcome"], "success", "{outcome}\n{out}\n{err}");
    let t = ticks(&runs[0]);
    let outs = t.iter().find(|r| r["event"] == "skill_outputs" && r["skill"] == "fibonacci").unwrap();
    assert_eq!(outs["outputs"]["sequence"], "[0,1,1,2,3]");
    let code_out = t.iter().find(|r| r["event"] == "skill_outputs" && r["skill"] == "go").unwrap();
    assert_eq!(code_out["outputs"]["code"], 0.0);
    // A failing response fails its node with the server's message; a rejected goal says so.
    let e = detail(&t, "enable_gripper", false);
    assert!(e.contains("success == true does not hold") && e.contains("the gripper refuses to be disabled"), "{e}");
    let e = detail(&t, "fibonacci", false);
    assert!(e.contains("fibonacci rejected the goal"), "{e}");
    // The condition: false for the mug, true for the cup, from the latest message.
    let checks: Vec<(String, bool)> = t
        .iter()
        .filter(|r| r["event"] == "check" && r["skill"] == "is_holding")
        .map(|r| (r["params"]["object"].as_str().unwrap().to_string(), r["success"].as_bool().unwrap()))
        .collect();
    assert_eq!(checks, [("mug".to_string(), false), ("cup".to_string(), true)]);
    // The recording carries the manifest: replay checks the tree against it and is identical.
    let replay = Command::new(env!("CARGO_BIN_EXE_arbor")).arg("replay").arg(&runs[0]).output().unwrap();
    let rout = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success() && rout.contains("IDENTICAL"),
        "{rout}\n{}",
        String::from_utf8_lossy(&replay.stderr)
    );
}

#[test]
fn manifests_that_do_not_fit_their_interfaces_are_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("node.yaml"),
        "places:\n  kitchen: [2.0, 1.5]\nperception: {enabled: false}\nout_dir: runs\n",
    )
    .unwrap();
    let d = domain(8);
    let cases = [
        (
            SKILLS.replace("request: {data: \"{enabled}\"}", "request: {data: 3}"),
            "skill 'enable_gripper': field 'ros2.service.request'",
            "data: a bool field, got 3",
        ),
        (
            SKILLS.replace("test_msgs/action/Fibonacci", "test_msgs/action/Fibonaci"),
            "skill 'fibonacci': field 'ros2.action.type'",
            "no definition of test_msgs/action/Fibonaci",
        ),
        (
            SKILLS.replace("behavior_tree: \"{tree}\"", "behaviour: \"{tree}\""),
            "skill 'go': field 'ros2.action.goal'",
            "no field 'behaviour'",
        ),
        (
            SKILLS.replace("result: {sequence: sequence}", "result: {sequence: seq}"),
            "skill 'fibonacci': field 'ros2.action.result.sequence'",
            "no field 'seq'",
        ),
    ];
    for (i, (manifest, field, why)) in cases.iter().enumerate() {
        let file = format!("bad{i}.yaml");
        std::fs::write(dir.join(&file), manifest).unwrap();
        let mut node = arbor_node(dir, &d, &["--config", "node.yaml", "--skills", &file]);
        let c = node.0.as_mut().unwrap();
        let start = Instant::now();
        while c.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(20), "{file}: arbor run did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (code, out, err) = node.interrupt(Duration::from_secs(1));
        assert_eq!(code, Some(2), "{file}\n{out}\n{err}");
        assert!(
            err.contains(&file) && err.contains(field) && err.contains(why) && !err.contains("panicked"),
            "{file}: {err}"
        );
    }
}
