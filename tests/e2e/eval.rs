//! `arbor eval`: suites, the A/B table and its JSON (the expert here; the LLM in planner_llm).

use crate::{arbor, root, stderr, stdout};

#[test]
fn eval_writes_a_table_and_json_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.yaml");
    let scenario = root().join("sim/scenarios/photographer.yaml");
    std::fs::write(
        &suite,
        format!("name: tiny\nscenario: {}\nsplit: heldout\nepisodes: 4\nruns_per_episode: 2\n", scenario.display()),
    )
    .unwrap();
    let out = dir.path().join("eval");
    let o = arbor(&[
        "eval",
        "--suite",
        suite.to_str().unwrap(),
        "--model-under-test",
        "expert",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("| expert |"), "{}", stdout(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    let r = &json["results"][0];
    assert_eq!(r["episodes"], 4);
    assert_eq!(r["runs"], 8);
    assert_eq!(r["valid_trees"], 4);
    // Every run is a run directory (recorded, replayable).
    let runs = std::fs::read_dir(out.join("expert")).unwrap().count();
    assert_eq!(runs, 8);
    // The shipped suites parse.
    for s in ["sim/suites/train.yaml", "sim/suites/heldout.yaml"] {
        let text = std::fs::read_to_string(root().join(s)).unwrap();
        assert!(serde_yaml::from_str::<serde_yaml::Value>(&text).is_ok(), "{s}");
    }
    // A bad suite names the file and the line.
    std::fs::write(&suite, "name: x\nscenario: a.yaml\nsplit: sideways\nepisodes: 1\n").unwrap();
    let o = arbor(&["eval", "--suite", suite.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("suite.yaml") && stderr(&o).contains("line 3"), "{}", stderr(&o));
}
