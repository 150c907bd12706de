//! A scenario whose skills come only from a manifest (sim/skills/courier.yaml): the simulator
//! runs them on their generic models, output ports reach later nodes, preconditions fail their
//! node with the reason, the run is recorded and replays identically, and bad manifests are
//! refused at load naming file, line, skill and field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_behaviors::record::{TickEvent, TickRecord};
use arbor_behaviors::{Tree, Value, yaml};
use arbor_sim::replay::replay_run;
use arbor_sim::{RunConfig, Scenario};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn courier() -> (Scenario, String) {
    let path = root().join("sim/scenarios/courier.yaml");
    (Scenario::load(&path).unwrap(), std::fs::read_to_string(&path).unwrap())
}

fn run(tree: Tree, seed: u64, out: &Path) -> arbor_sim::RunSummary {
    let (scenario, text) = courier();
    let cfg = RunConfig {
        scenario,
        scenario_text: text,
        tree,
        tree_source: "courier tree".into(),
        tree_author: "hand".into(),
        seed,
        out_dir: out.to_path_buf(),
        plan: None,
        live: arbor_sim::runner::LiveOptions::default(),
        perception: Default::default(),
    };
    arbor_sim::run(&cfg).unwrap()
}

fn ticks(dir: &Path) -> Vec<TickRecord> {
    std::fs::read_to_string(dir.join("ticks.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_scenario_of_declared_skills_runs_records_and_replays() {
    let (scenario, _) = courier();
    let m = scenario.manifest.clone().expect("the scenario names its manifest");
    assert_eq!(m.skills.len(), 11);
    assert!(m.skills.iter().all(|s| s.builtin.is_none()), "no physical built-in in this domain");
    let dir = tempfile::tempdir().unwrap();
    let tree = arbor_behaviors::load_tree(&root().join("sim/trees/courier.yaml")).unwrap();
    let summary = run(tree.clone(), 3, dir.path());
    assert_eq!(summary.outcome, arbor_sim::runner::Outcome::Success, "{summary:?}");
    assert!(summary.criteria.iter().all(|c| c.passed), "{:?}", summary.criteria);
    // pick's output port reaches report through the blackboard.
    let recs = ticks(dir.path());
    let outputs = recs.iter().find_map(|r| match &r.event {
        TickEvent::SkillOutputs { skill, outputs, .. } if skill == "pick" => Some(outputs.clone()),
        _ => None,
    });
    assert_eq!(outputs.unwrap().get("weight_kg"), Some(&Value::Number(0.35)));
    let report = recs.iter().find_map(|r| match &r.event {
        TickEvent::SkillStarted { skill, params, .. } if skill == "report" => Some(params.clone()),
        _ => None,
    });
    assert_eq!(report.unwrap().get("weight_kg"), Some(&Value::Number(0.35)));
    // The recording carries the manifest; replay checks the tree against it and is identical.
    let (rec, rep) = replay_run(dir.path(), None).unwrap();
    assert!(rec.header.skills.as_ref().is_some_and(|s| s.yaml.contains("name: pick")));
    assert!(rep.identical(), "{rep:#?}");
    // Same seed, same bytes.
    let again = tempfile::tempdir().unwrap();
    run(tree, 3, again.path());
    assert_eq!(
        std::fs::read(dir.path().join("run.mcap")).unwrap(),
        std::fs::read(again.path().join("run.mcap")).unwrap()
    );
}

#[test]
fn an_unmet_precondition_fails_its_node_with_the_reason() {
    // Placing the cup before picking it: the node fails, saying what did not hold.
    let tree = yaml::parse(
        "name: wrong_order\nroot:\n  sequence:\n    - go_to: {place: office}\n    - place_object: {object: cup, place: office}\n",
        "wrong_order.yaml",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = run(tree, 1, dir.path());
    assert_eq!(summary.outcome, arbor_sim::runner::Outcome::Failure);
    let detail = ticks(dir.path()).iter().find_map(|r| match &r.event {
        TickEvent::SkillFinished { skill, success: false, detail, .. } if skill == "place_object" => {
            Some(detail.clone())
        }
        _ => None,
    });
    assert_eq!(detail.as_deref(), Some("precondition not met: holding(cup)"));
}

#[test]
fn bad_manifests_are_refused_at_load_with_file_line_skill_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(root().join("sim/skills/courier.yaml")).unwrap();
    let scenario = std::fs::read_to_string(root().join("sim/scenarios/courier.yaml"))
        .unwrap()
        .replace("skills: ../skills/courier.yaml", "skills: skills.yaml");
    std::fs::write(dir.path().join("s.yaml"), &scenario).unwrap();
    let load = |m: &str| {
        std::fs::write(dir.path().join("skills.yaml"), m).unwrap();
        Scenario::load(&dir.path().join("s.yaml")).unwrap_err().to_string()
    };
    let e = load(&manifest.replace(
        "{name: door, type: entity, description: which door}\n    sim:\n      holds",
        "{name: door, type: entty, description: which door}\n    sim:\n      holds",
    ));
    assert!(e.contains("skills.yaml:115: skill 'door_open': field 'inputs.door.type': unknown type 'entty'"), "{e}");
    // A condition the simulator cannot answer is refused before the run, not failed at tick time.
    let e = load(&manifest.replace("    sim:\n      holds: [\"open({door})\"]\n", ""));
    assert!(e.contains("skill 'door_open'") && e.contains("the simulator cannot answer it"), "{e}");
    let e = load(&manifest.replace("effects: [\"docked(robot)\"]", "effects: [\"docked({robot})\"]"));
    assert!(e.contains("skill 'dock'") && e.contains("field 'sim.effects'") && e.contains("{robot}"), "{e}");
    let e = Scenario::parse(&scenario.replace("  - closed(office_door)", "  - closed(_)"), "s.yaml").unwrap_err();
    assert!(e.to_string().contains("facts[2]"), "{e}");
}
