//! Recordings end to end: `arbor replay` on a finished run and on a run killed with SIGKILL,
//! and Foxglove's Python `mcap` package reading every channel.

use crate::{SCENARIO, TREE, arbor, root, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sim(out: &Path) {
    let o = arbor(&["sim", "--scenario", SCENARIO, "--tree", TREE, "--seed", "5", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn replay_of_a_run_is_identical_and_a_changed_tree_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sim(&run);
    let o = arbor(&["replay", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("IDENTICAL"), "{}", stdout(&o));

    let changed = dir.path().join("changed.yaml");
    let text = std::fs::read_to_string(root().join(TREE)).unwrap();
    std::fs::write(&changed, text.replacen("target: lobby", "target: kitchen", 1)).unwrap();
    let o = arbor(&["replay", run.to_str().unwrap(), "--tree", changed.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["divergence"]["tick"], 1, "{report:#}");
    let why = report["stopped"].as_str().unwrap();
    assert!(why.contains("navigate_to") && why.contains("kitchen") && why.contains("lobby"), "{why}");

    let o = arbor(&["replay", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
}

#[test]
fn a_run_killed_mid_way_replays_up_to_its_last_flushed_chunk() {
    let dir = tempfile::tempdir().unwrap();
    // A day of sim time and a tree that never ends: the run is still going when killed.
    let scenario = dir.path().join("long.yaml");
    let text = std::fs::read_to_string(root().join(SCENARIO)).unwrap();
    std::fs::write(&scenario, text.replace("time_limit_s: 300", "time_limit_s: 86400")).unwrap();
    let tree = dir.path().join("forever.yaml");
    std::fs::write(
        &tree,
        "name: forever\nroot:\n  repeat:\n    num_cycles: -1\n    child:\n      sequence:\n        - scan:\n        - wait: {seconds: 0.3}\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["sim", "--scenario", scenario.to_str().unwrap(), "--tree", tree.to_str().unwrap()])
        .args(["--out", run.to_str().unwrap()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a few chunks are on disk, then SIGKILL (no chance to write the footer).
    let mcap = run.join("run.mcap");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&mcap).map(|m| m.len()).unwrap_or(0) < 2_000_000 {
        assert!(Instant::now() < deadline, "the run wrote less than 2 MB in 60 s");
        assert!(child.try_wait().unwrap().is_none(), "the run ended by itself");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let o = arbor(&["replay", run.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["truncated"].is_string(), "{report:#}");
    let ticks = report["ticks_replayed"].as_u64().unwrap();
    assert!(ticks >= 100, "{report:#}");
    assert_eq!(report["ticks_recorded"].as_u64(), Some(ticks));
    assert!(report["divergence"].is_null() && report["stopped"].is_null(), "{report:#}");
}

/// The Python of the venv `.ci/pyenv` makes (`$ARBOR_PYTHON` overrides).
pub fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ARBOR_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = arbor_perception::onnx::cache_dir().join("venv/bin/python");
    p.is_file().then_some(p)
}

#[test]
fn foxglove_mcap_for_python_reads_every_channel() {
    let Some(py) = python() else {
        // CI always has it (.ci/test runs .ci/pyenv); elsewhere say how to get it.
        assert!(std::env::var_os("CI").is_none(), "no Python venv with mcap: run `bash .ci/pyenv`");
        eprintln!("skipped: no Python venv with mcap (run `bash .ci/pyenv`)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sim(&run);
    let o = Command::new(&py).arg(root().join("tests/python/read_mcap.py")).arg(run.join("run.mcap")).output().unwrap();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let counts: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = arbor_records::recording::Recording::open(&run.join("run.mcap")).unwrap();
    for topic in [
        "/arbor/run",
        "/arbor/tree",
        "/arbor/observations",
        "/arbor/entities",
        "/arbor/memory/events",
        "/arbor/tree/transitions",
        "/arbor/skills",
        "/arbor/outcome",
    ] {
        let n = counts[topic].as_u64().unwrap_or(0);
        assert!(n > 0, "python read no {topic}: {counts}");
        assert_eq!(Some(&n), rec.counts.get(topic), "{topic}");
    }
    assert_eq!(counts["/arbor/observations"].as_u64(), Some(rec.frames.len() as u64));
}
