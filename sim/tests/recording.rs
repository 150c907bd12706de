//! Recording and replay of simulator runs: identical replay, divergence reports, truncated
//! recordings, determinism of the file, and the Groot2 log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_behaviors::{Tree, load_tree};
use arbor_records::groot;
use arbor_records::recording::Recording;
use arbor_sim::replay::replay_run;
use arbor_sim::{RunConfig, Scenario};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn run_with(tree: Tree, seed: u64, out: &Path) {
    let path = root().join("sim/scenarios/photographer.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = Scenario::parse(&text, "photographer.yaml").unwrap();
    let cfg = RunConfig {
        scenario,
        scenario_text: text,
        tree,
        tree_source: "photographer tree".into(),
        tree_author: "hand".into(),
        seed,
        out_dir: out.to_path_buf(),
        plan: None,
        live: arbor_sim::runner::LiveOptions::default(),
        perception: Default::default(),
    };
    arbor_sim::run(&cfg).unwrap();
}

fn photographer_tree() -> Tree {
    load_tree(&root().join("sim/trees/photographer.yaml")).unwrap()
}

#[test]
fn a_recorded_run_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    run_with(photographer_tree(), 4, dir.path());
    let (rec, report) = replay_run(dir.path(), None).unwrap();
    assert!(report.identical(), "{report:#?}");
    assert!(report.same_tree);
    assert_eq!(report.ticks_replayed, rec.frames.len() as u64);
    assert!(report.events_compared > 200, "{report:#?}");
    assert_eq!(report.recorded_status, Some(arbor_behaviors::NodeStatus::Success));
    assert_eq!(report.replayed_status, arbor_behaviors::NodeStatus::Success);
    assert!(rec.truncated.is_none());
    assert_eq!(rec.header.seed, 4);
    assert!(rec.outcome.is_some());
}

#[test]
fn another_tree_reports_where_it_departs_and_why_replay_stopped() {
    let dir = tempfile::tempdir().unwrap();
    run_with(photographer_tree(), 4, dir.path());
    // Fewer attention checks: dave's block gives up earlier than in the recording.
    let text = std::fs::read_to_string(root().join("sim/trees/photographer.yaml")).unwrap();
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, text.replacen("seconds: 0.5", "seconds: 0.7", 1)).unwrap();
    let (_, report) = replay_run(dir.path(), Some(&other)).unwrap();
    assert!(!report.identical());
    let d = report.divergence.as_ref().expect("a divergence");
    assert!(d.node.contains("wait"), "{d}");
    let why = report.stopped.as_deref().expect("replay stops");
    assert!(why.contains("wait{\"seconds\":0.7}") && why.contains("recorded: wait{\"seconds\":0.5}"), "{why}");
    assert!(report.ticks_replayed < report.ticks_recorded);
}

#[test]
fn a_changed_tree_with_the_same_calls_diverges_at_the_first_different_transition() {
    let dir = tempfile::tempdir().unwrap();
    run_with(photographer_tree(), 2, dir.path());
    // Same leaves and parameters, but force_failure instead of force_success around dave:
    // every call is answerable, the root fails instead of going on.
    let text = std::fs::read_to_string(root().join("sim/trees/photographer.yaml")).unwrap();
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, text.replacen("force_success:", "force_failure:", 1)).unwrap();
    let (_, report) = replay_run(dir.path(), Some(&other)).unwrap();
    let d = report.divergence.expect("a divergence");
    assert!(d.node.starts_with("sequence/force_"), "{d:?}");
    assert!(d.expected.contains("success") || d.got.contains("failure"), "{d:?}");
    assert_eq!(report.replayed_status, arbor_behaviors::NodeStatus::Failure);
}

#[test]
fn same_seed_writes_the_same_recording_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    run_with(photographer_tree(), 9, a.path());
    run_with(photographer_tree(), 9, b.path());
    let x = std::fs::read(a.path().join("run.mcap")).unwrap();
    let y = std::fs::read(b.path().join("run.mcap")).unwrap();
    assert!(x == y, "run.mcap differs between two runs with seed 9");
}

#[test]
fn a_truncated_recording_replays_up_to_its_last_complete_chunk() {
    let dir = tempfile::tempdir().unwrap();
    run_with(photographer_tree(), 1, dir.path());
    let full = std::fs::read(dir.path().join("run.mcap")).unwrap();
    let complete = Recording::open(&dir.path().join("run.mcap")).unwrap();
    for cut in [full.len() / 3, full.len() / 2, full.len() - 100] {
        let path = dir.path().join(format!("cut{cut}.mcap"));
        std::fs::write(&path, &full[..cut]).unwrap();
        let (rec, report) = replay_run(&path, None).unwrap();
        assert!(rec.truncated.is_some(), "cut at {cut}");
        assert!(!rec.frames.is_empty() && rec.frames.len() <= complete.frames.len());
        // The frames that survived are exactly the original ones.
        assert_eq!(rec.frames[..], complete.frames[..rec.frames.len()]);
        assert!(report.identical(), "cut at {cut}: {report:#?}");
        assert_eq!(report.ticks_replayed, rec.frames.len() as u64);
    }
}

#[test]
fn garbage_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.mcap");
    std::fs::write(&path, b"this is not a recording").unwrap();
    let err = replay_run(&path, None).unwrap_err().to_string();
    assert!(err.contains("bad.mcap") && err.contains("not an MCAP file"), "{err}");
    // An MCAP header and nothing else: readable, but not an arbor recording.
    std::fs::write(&path, mcap::MAGIC).unwrap();
    let err = replay_run(&path, None).unwrap_err().to_string();
    assert!(err.contains("bad.mcap") && err.contains("/arbor/run"), "{err}");
}

/// 16 flipped bytes inside the chunks of a complete recording: an error naming the file and
/// what failed (the chunk's CRC), never a replay of damaged data (nor a Groot2 log made of it).
#[test]
fn damaged_chunks_are_errors_not_data() {
    let dir = tempfile::tempdir().unwrap();
    run_with(photographer_tree(), 2, dir.path());
    let good = std::fs::read(dir.path().join("run.mcap")).unwrap();
    for frac in [0.25, 0.5, 0.75] {
        let mut bytes = good.clone();
        let at = (bytes.len() as f64 * frac) as usize;
        for b in &mut bytes[at..at + 16] {
            *b ^= 0xff;
        }
        let path = dir.path().join("flipped.mcap");
        std::fs::write(&path, &bytes).unwrap();
        let err = replay_run(&path, None).unwrap_err().to_string();
        assert!(err.contains("flipped.mcap") && err.contains("damaged"), "{frac}: {err}");
        assert!(Recording::open(&path).is_err());
    }
}

#[test]
fn the_groot2_log_holds_the_tree_and_every_transition() {
    let dir = tempfile::tempdir().unwrap();
    run_with(photographer_tree(), 1, dir.path());
    let rec = Recording::open(&dir.path().join("run.mcap")).unwrap();
    let bytes = groot::btlog(&rec).unwrap();
    let log = groot::parse_btlog(&bytes, "run.btlog").unwrap();
    // Laid out as BT.CPP's FileLogger2 writes it (WriteTreeToXML with metadata and models).
    assert!(log.xml.starts_with("<root BTCPP_format=\"4\">\n"), "{}", &log.xml[..200]);
    assert!(log.xml.contains("<BehaviorTree ID=\"photographer_hand\" _fullpath=\"\">"), "{}", &log.xml[..200]);
    assert!(log.xml.contains("<TreeNodesModel>") && log.xml.contains("<Action ID=\"navigate_to\""), "{}", log.xml);
    assert_eq!(log.xml.matches("_uid=\"").count(), rec.tree.nodes.len());
    let transitions: Vec<_> = rec.transitions().collect();
    assert_eq!(log.transitions.len(), transitions.len());
    for ((us, uid, status), r) in log.transitions.iter().zip(&transitions) {
        assert_eq!(*us, r.t_us);
        let arbor_behaviors::record::TickEvent::Transition { node, to, .. } = &r.event else { unreachable!() };
        assert_eq!(&rec.tree.nodes[*uid as usize - 1].path, node);
        assert_eq!(status, to);
    }
    // Uid i is the i-th node depth-first: the root is a Sequence, uid 2 its first child.
    assert!(log.xml.contains("<Sequence name=\"Sequence\" _uid=\"1\">"));
    assert!(log.xml.contains("<ForceSuccess name=\"photograph_dave\" _uid=\"2\">"));
    // Cut short, the log is refused with the reason.
    let err = groot::parse_btlog(&bytes[..bytes.len() - 4], "cut.btlog").unwrap_err().to_string();
    assert!(err.contains("cut.btlog") && err.contains("multiple of 9"), "{err}");
}
