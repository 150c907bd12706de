//! Bad input gives a clear error naming the file and the line or node, a non-zero exit and
//! never a panic.

use crate::{SCENARIO, TREE, arbor, root, stderr};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn sim_err(scenario: &str, tree: &str, out: &Path) -> String {
    let o = arbor(&["sim", "--scenario", scenario, "--tree", tree, "--out", out.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn tree_text() -> String {
    std::fs::read_to_string(root().join(TREE)).unwrap()
}

fn scenario_text() -> String {
    std::fs::read_to_string(root().join(SCENARIO)).unwrap()
}

#[test]
fn bad_trees_name_the_file_and_the_line_or_node() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let cases: [(&str, String, &[&str]); 5] = [
        (
            "syntax.yaml",
            tree_text().replace("- navigate_to: {target: lobby}", "- navigate_to: {target: lobby"),
            &["syntax.yaml: line"],
        ),
        (
            "unknown.yaml",
            tree_text().replace("- scan:", "- teleport: {to: kitchen}"),
            &[
                "unknown.yaml: at node 'sequence/force_success[0]/sequence[0]/fallback[1]/teleport[1]'",
                "unknown node type 'teleport'",
            ],
        ),
        (
            "missing.yaml",
            tree_text().replacen("- look_at: {entity: dave}", "- look_at: {}", 1),
            &[
                "missing.yaml: at node 'sequence/force_success[0]/sequence[0]/look_at[3]'",
                "missing required port 'entity' (entity name) of 'look_at'",
            ],
        ),
        (
            "type.yaml",
            tree_text().replacen("- wait: {seconds: 0.5}", "- wait: {seconds: soon}", 1),
            &["type.yaml: at node", "wait[0]", "port 'seconds' must be number in [0, 600], got \"soon\""],
        ),
        (
            "place.yaml",
            tree_text().replacen("{target: kitchen}", "{target: garage}", 1),
            &["place.yaml: at node", "unknown place or entity 'garage'"],
        ),
    ];
    for (name, text, want) in cases {
        let path = write(dir.path(), name, &text);
        let err = sim_err(SCENARIO, &path, &out);
        for w in want {
            assert!(err.contains(w), "{name}: expected {w:?} in:\n{err}");
        }
    }
    assert!(!out.join("ticks.jsonl").exists(), "a tree that fails its check never starts a run");
}

#[test]
fn bad_scenarios_name_the_file_and_the_line_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let cases: [(&str, String, &[&str]); 4] = [
        ("yaml.yaml", scenario_text().replace("size: [16, 10]", "size: [16, 10"), &["yaml.yaml: line"]),
        (
            "field.yaml",
            scenario_text().replace("tick_hz: 10", "tick_rate: 10"),
            &["field.yaml: line", "unknown field `tick_rate`"],
        ),
        (
            "value.yaml",
            scenario_text().replace("max_speed: 0.8", "max_speed: -1"),
            &["value.yaml: field 'robot.max_speed'"],
        ),
        (
            "crit.yaml",
            scenario_text().replace("- photographed_none_inattentive", "- photograph_everyone"),
            &["crit.yaml: line", "unknown criterion 'photograph_everyone'"],
        ),
    ];
    for (name, text, want) in cases {
        let path = write(dir.path(), name, &text);
        let err = sim_err(&path, TREE, &out);
        for w in want {
            assert!(err.contains(w), "{name}: expected {w:?} in:\n{err}");
        }
    }
    let err = sim_err("no/such/scenario.yaml", TREE, &out);
    assert!(err.contains("no/such/scenario.yaml"), "{err}");
}

#[test]
fn validate_reports_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", "root:\n  sequence: []\n");
    let o = arbor(&["tree", "validate", TREE, &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(crate::stdout(&o).contains("ok    sim/trees/photographer.yaml"));
    assert!(
        stderr(&o).contains("bad.yaml: at node 'sequence': 'Sequence' takes at least 1 child, got 0"),
        "{}",
        stderr(&o)
    );
    let skills = arbor(&["skills"]);
    assert!(crate::stdout(&skills).contains("navigate_to (action)"));
}

/// `arbor ... | head`: a closed standard output ends the process quietly with SIGPIPE's code
/// (141), not a "failed printing to stdout" panic (101).
#[test]
fn a_closed_pipe_ends_quietly() {
    for args in [&["skills"][..], &["tree", "dot", crate::TREE][..]] {
        // A pipe whose reading end is closed before the process starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_arbor"))
            .args(args)
            .current_dir(crate::root())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
    }
}

/// Numbers outside their range, and negative ones, are refused naming the flag (exit 2).
#[test]
fn out_of_range_and_negative_numbers_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let o = arbor(&["dataset", "build", "--val-percent", "150", "-o", out.to_str().unwrap(), "runs"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--val-percent") && stderr(&o).contains("150"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written");
    let o = arbor(&["sim", "--scenario", SCENARIO, "--tree", TREE, "--seed", "-1", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid value '-1'") && stderr(&o).contains("--seed"), "{}", stderr(&o));
}

/// A bad fleet file is reported before the run: nothing is written to the run directory.
#[test]
fn a_bad_fleet_file_is_reported_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("robot.yaml");
    std::fs::write(&fleet, "robot_id: r1\nbroker: {url: 'mqtt://127.0.0.1:1883'}\nmax_queue: lots\n").unwrap();
    let out = dir.path().join("run");
    let o = arbor(&[
        "sim",
        "--scenario",
        SCENARIO,
        "--tree",
        TREE,
        "--out",
        out.to_str().unwrap(),
        "--fleet",
        fleet.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("robot.yaml"), "{}", stderr(&o));
    assert!(!out.exists(), "no run was made");
}

/// Accepted silently before: a planner asked of a build without one, a model that is not
/// there, a dataset line without its assistant message, a robot in a wall, a face of -1 m.
#[test]
fn what_cannot_be_done_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // eval with a model file that does not exist: refused before the first episode.
    let ev = d.join("eval");
    let o = arbor(&[
        "eval",
        "--suite",
        "sim/suites/heldout.yaml",
        "--model-under-test",
        "x.gguf",
        "-o",
        ev.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--model-under-test x.gguf"), "{}", stderr(&o));
    assert!(!ev.exists(), "no eval output");
    if !cfg!(feature = "llm") {
        let dg = d.join("dg");
        let o = arbor(&[
            "dataset",
            "generate",
            "--scenario",
            SCENARIO,
            "--episodes",
            "1",
            "--llm",
            "-o",
            dg.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("built without the LLM planner"), "{}", stderr(&o));
        assert!(!dg.exists());
    }
    // A run whose dataset line lacks the assistant message is left out, named, exit 1.
    let runs = d.join("runs");
    for name in ["good", "bad"] {
        let o = arbor(&["sim", "--scenario", SCENARIO, "--tree", TREE, "--out", runs.join(name).to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let bad = runs.join("bad/dataset.jsonl");
    let mut line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&bad).unwrap().lines().next().unwrap()).unwrap();
    line["messages"].as_array_mut().unwrap().pop();
    std::fs::write(&bad, format!("{line}\n")).unwrap();
    let ds = d.join("ds");
    let o = arbor(&["dataset", "build", runs.to_str().unwrap(), "-o", ds.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bad/dataset.jsonl: line 1: messages must be system, user, assistant; got [system, user]"),
        "{}",
        stderr(&o)
    );
    let train = std::fs::read_to_string(ds.join("train.jsonl")).unwrap()
        + &std::fs::read_to_string(ds.join("val.jsonl")).unwrap();
    assert_eq!(train.lines().count(), 1, "only the good run's line");
    // A corrupt outcome.json: the report covers the other runs, names the bad one, exit 1.
    std::fs::write(runs.join("bad/outcome.json"), "{bad").unwrap();
    let html = d.join("report.html");
    let o = arbor(&["report", runs.to_str().unwrap(), "-o", html.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped") && stderr(&o).contains("bad/outcome.json: not JSON"), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&html).unwrap().contains("1 run(s)"));
    // Scenario and perception values checked before the run directory is made.
    let scenario = write(d, "wall.yaml", &scenario_text().replace("pose: [2, 3, 0]", "pose: [6.1, 1, 0]"));
    let out = d.join("wall");
    let e = sim_err(&scenario, TREE, &out);
    assert!(e.contains("robot.pose") && e.contains("map.walls[0]"), "{e}");
    let pc = write(d, "pc.yaml", "face_height_m: -1\n");
    let out = d.join("face");
    let o = arbor(&[
        "sim",
        "--scenario",
        SCENARIO,
        "--tree",
        TREE,
        "--perception",
        "camera",
        "--perception-config",
        &pc,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("pc.yaml: face_height_m: must be in (0.05, 0.5]"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written");
}
