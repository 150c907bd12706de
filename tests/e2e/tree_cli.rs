//! `arbor tree validate | convert | dot` on real files.

use crate::{TREE, arbor, root, stderr, stdout};

/// The project's own XML fixtures (the third-party corpus in ../shared is checked by
/// `behaviors/tests/corpus.rs`, when it is there).
fn fixture(name: &str) -> String {
    root().join("tests/fixtures/bt_xml").join(name).to_str().unwrap().to_string()
}

#[test]
fn validate_lenient_accepts_nav2_and_strict_names_the_node() {
    let nav2 = fixture("nav_replan_recover.xml");
    let o = arbor(&["tree", "validate", "--lenient", &nav2]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("note:")
            && stdout(&o).contains("undeclared node 'RecoveryNode' loaded as a generic control")
    );
    let o = arbor(&["tree", "validate", &nav2]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("line 7: tree 'NavigateWithRecovery', at node 'RecoveryNode': unknown node type 'RecoveryNode'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_manifest_declares_foreign_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("nav2.yaml");
    std::fs::write(
        &manifest,
        "nodes:\n  - {id: FollowPath, category: action, ports: [{name: path}, {name: controller_id}, {name: error_code_id, direction: output}, {name: error_msg, direction: output}, {name: tracking_feedback, direction: output}]}\n",
    )
    .unwrap();
    let file = dir.path().join("t.xml");
    std::fs::write(&file, "<root BTCPP_format=\"4\"><BehaviorTree><FollowPath path=\"{path}\" controller_id=\"FollowPath\"/></BehaviorTree></root>").unwrap();
    let o = arbor(&["tree", "validate", "--manifest", manifest.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        &file,
        "<root BTCPP_format=\"4\"><BehaviorTree><FollowPath error_msg=\"literal\"/></BehaviorTree></root>",
    )
    .unwrap();
    let o = arbor(&["tree", "validate", "--manifest", manifest.to_str().unwrap(), file.to_str().unwrap()]);
    // BT.CPP loads an output port with a literal value; arbor too, with a note naming it.
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("output port 'error_msg' of 'FollowPath' has the literal value 'literal'"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn convert_both_ways_and_run_the_converted_tree() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("photographer.xml");
    let yaml = dir.path().join("back.yaml");
    let o = arbor(&["tree", "convert", TREE, xml.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(
        text.contains("<root BTCPP_format=\"4\">") && text.contains("<RetryUntilSuccessful num_attempts=\"4\">"),
        "{text}"
    );
    let o = arbor(&["tree", "convert", xml.to_str().unwrap(), yaml.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The XML form runs the scenario exactly like the YAML original.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (tree, out) in [(TREE, &a), (xml.to_str().unwrap(), &b)] {
        let o = arbor(&[
            "sim",
            "--scenario",
            crate::SCENARIO,
            "--tree",
            tree,
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(a.join("ticks.jsonl")).unwrap(), std::fs::read(b.join("ticks.jsonl")).unwrap());
}

#[test]
fn dot_and_mermaid() {
    let o = arbor(&["tree", "dot", &fixture("door_with_subtree.xml")]);
    let dot = stdout(&o);
    assert!(
        dot.starts_with("digraph")
            && dot.contains("cluster_1")
            && dot.contains("RetryUntilSuccessful\\nnum_attempts=5"),
        "{dot}"
    );
    let o = arbor(&["tree", "dot", "--mermaid", TREE]);
    assert!(stdout(&o).starts_with("flowchart TD"), "{}", stdout(&o));
}

/// One manifest feeds the CLI: `arbor skills --skills`, `arbor tree validate --skills` (and a
/// scenario's `skills:`), `arbor sim` on a scenario of declared skills; a bad manifest is an
/// error naming its file, line, skill and field, before anything runs.
#[test]
fn a_skill_manifest_feeds_skills_validate_and_sim() {
    let o = arbor(&["skills", "--skills", "sim/skills/courier.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("pick (action): pick up an object") && out.contains("-> weight_kg: number (output)"), "{out}");
    assert!(
        out.contains("is_holding (condition)") && out.contains("runs on: sim model, ros2 std_msgs/msg/String"),
        "{out}"
    );
    assert!(!out.contains("capture_photo"), "{out}");
    let o = arbor(&["tree", "validate", "--skills", "sim/skills/courier.yaml", "sim/trees/courier.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = arbor(&["tree", "validate", "--scenario", "sim/scenarios/courier.yaml", "sim/trees/courier.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The photographer's tree names skills this robot does not have.
    let o = arbor(&["tree", "validate", "--skills", "sim/skills/courier.yaml", TREE]);
    assert!(!o.status.success() && stderr(&o).contains("navigate_to"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(root().join("sim/skills/courier.yaml")).unwrap();
    std::fs::write(&bad, text.replace("success_probability: 0.95", "success_probability: 2")).unwrap();
    let o = arbor(&["skills", "--skills", bad.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.yaml:") && err.contains("skill 'open_door': field 'sim.success_probability'"), "{err}");
    let run = dir.path().join("run");
    let o = arbor(&[
        "sim",
        "--scenario",
        "sim/scenarios/courier.yaml",
        "--tree",
        "sim/trees/courier.yaml",
        "--skills",
        bad.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!run.exists(), "nothing ran");
    let o = arbor(&[
        "sim",
        "--scenario",
        "sim/scenarios/courier.yaml",
        "--tree",
        "sim/trees/courier.yaml",
        "--seed",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success() && stdout(&o).contains("outcome   SUCCESS"), "{}\n{}", stdout(&o), stderr(&o));
    let o = arbor(&["replay", run.to_str().unwrap()]);
    assert!(stdout(&o).contains("IDENTICAL"), "{}", stdout(&o));
}
