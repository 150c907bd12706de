//! The dataset pipeline end to end: generate episodes (resumable), build train/val/preferences
//! with a card, check every line against the schema, Alpaca export/import, name redaction.

use crate::recording::python;
use crate::{SCENARIO, arbor, root, stderr, stdout};
use std::collections::BTreeSet;
use std::process::Command;

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

#[test]
fn generate_then_build_gives_schema_valid_lines_and_preference_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let gen_dir = dir.path().join("gen");
    let g = gen_dir.to_str().unwrap();
    let args = [
        "dataset",
        "generate",
        "--scenario",
        SCENARIO,
        "--episodes",
        "16",
        "--jobs",
        "2",
        "--negatives",
        "0.5",
        "-o",
        g,
    ];
    let o = arbor(&args);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("generated 16 episodes"), "{}", stdout(&o));
    // Resumable: a second call finds everything done.
    let o = arbor(&args);
    assert!(stdout(&o).contains("skipped 16 already done"), "{}", stdout(&o));
    // Other settings in the same directory are refused.
    let mut other = args;
    other[9] = "0.9";
    let o = arbor(&other);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("generate.json"), "{}", stderr(&o));

    let out = dir.path().join("ds");
    let o = arbor(&["dataset", "build", g, "-o", out.to_str().unwrap(), "--outcome", "any", "--val-percent", "25"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let train = lines(&out.join("train.jsonl"));
    let val = lines(&out.join("val.jsonl"));
    let prefs = lines(&out.join("preferences.jsonl"));
    assert!(train.len() + val.len() >= 16, "{} + {}", train.len(), val.len());
    assert!(!prefs.is_empty(), "no preference pairs although perturbed runs failed");
    for l in train.iter().chain(&val) {
        let roles: Vec<&str> = l["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant"]);
        let tree = l["messages"][2]["content"].as_str().unwrap();
        assert_eq!(l["metadata"]["tree_sha256"], arbor_records::dataset::sha256_hex(tree));
        assert!(["success", "failure", "timeout"].contains(&l["metadata"]["outcome"].as_str().unwrap()));
    }
    // No prompt on both sides of the split.
    let prompts = |v: &[serde_json::Value]| -> BTreeSet<String> {
        v.iter().map(|l| l["messages"][1]["content"].as_str().unwrap().to_string()).collect()
    };
    assert!(prompts(&train).is_disjoint(&prompts(&val)));
    for p in &prefs {
        assert_eq!(p["prompt"].as_array().unwrap().len(), 2);
        assert_ne!(p["chosen"][0]["content"], p["rejected"][0]["content"]);
    }
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(card.contains("| perturbed_expert |") && card.contains("preference pairs"), "{card}");

    // The schema check a fine-tuning loader would do, in Python (CI has the venv).
    if let Some(py) = python() {
        let o = Command::new(py)
            .arg(root().join("tests/python/check_jsonl.py"))
            .arg(root().join("tests/schemas/dataset_line.schema.json"))
            .args([out.join("train.jsonl"), out.join("val.jsonl")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), (train.len() + val.len()).to_string());
    } else {
        assert!(std::env::var_os("CI").is_none(), "no Python venv: run `bash .ci/pyenv`");
    }

    // Successful only (the default), names redacted.
    let red = dir.path().join("red");
    let o = arbor(&["dataset", "build", g, "-o", red.to_str().unwrap(), "--redact-names"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let red_lines: Vec<_> = lines(&red.join("train.jsonl")).into_iter().chain(lines(&red.join("val.jsonl"))).collect();
    assert!(red_lines.iter().all(|l| l["metadata"]["success"] == true));
    for l in &red_lines {
        let run = std::path::Path::new(l["metadata"]["run_dir"].as_str().unwrap());
        let sc = arbor_sim::Scenario::load(&run.join("scenario.yaml")).unwrap();
        let said = format!("{}\n{}", l["messages"][1]["content"], l["messages"][2]["content"]);
        assert!(said.contains("person_1"), "{said}");
        for p in sc.people {
            let words: Vec<&str> = said.split(|c: char| !c.is_alphanumeric() && c != '_').collect();
            assert!(!words.contains(&p.name.as_str()), "{} left in {said}", p.name);
        }
    }

    // Retrieved worked examples in every prompt (--examples 1): the nearest other wording of a
    // training goal, with its plan, before the prompt the plain build has.
    let ex = dir.path().join("ex");
    let o = arbor(&["dataset", "build", g, "-o", ex.to_str().unwrap(), "--prompt-style", "compact", "--examples", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ex.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(spec, serde_json::json!({"prompt_style": "compact", "examples": 1}));
    let plain = dir.path().join("plain");
    assert!(arbor(&["dataset", "build", g, "-o", plain.to_str().unwrap()]).status.success());
    let by_run = |v: Vec<serde_json::Value>| -> std::collections::BTreeMap<String, String> {
        v.into_iter()
            .map(|l| {
                (
                    l["metadata"]["run_dir"].as_str().unwrap().to_string(),
                    l["messages"][1]["content"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let plain_users =
        by_run(lines(&plain.join("train.jsonl")).into_iter().chain(lines(&plain.join("val.jsonl"))).collect());
    let ex_train = lines(&ex.join("train.jsonl"));
    // (goal, plan) of every training line -> its own prompt from its goal on.
    let pairs: std::collections::BTreeMap<(String, String), String> = ex_train
        .iter()
        .map(|l| {
            let user = l["messages"][1]["content"].as_str().unwrap();
            let own = &user[user.rfind("Goal: ").unwrap()..];
            let goal = own.lines().next().unwrap().strip_prefix("Goal: ").unwrap().to_string();
            ((goal, l["messages"][2]["content"].as_str().unwrap().to_string()), own.to_string())
        })
        .collect();
    let mut with_remembered = 0;
    let ex_users = by_run(ex_train.into_iter().chain(lines(&ex.join("val.jsonl"))).collect());
    assert_eq!(ex_users.len(), plain_users.len());
    for (run, user) in &ex_users {
        let rest = &plain_users[run];
        let head =
            user.strip_suffix(rest.as_str()).unwrap_or_else(|| panic!("{user}\n-- does not end with --\n{rest}"));
        let mut it = head.lines();
        assert_eq!(it.next(), Some("Example:"), "{head}");
        let g = it.next().and_then(|l| l.strip_prefix("Goal: ")).unwrap_or_else(|| panic!("{head}"));
        // What was remembered about the people the example's goal names, from its own prompt.
        let mut remembered = Vec::new();
        let mut next = it.next();
        if next == Some("Remembered:") {
            next = it.next();
            while let Some(r) = next.and_then(|l| l.strip_prefix("- ")) {
                remembered.push(r);
                next = it.next();
            }
        }
        let p = next.and_then(|l| l.strip_prefix("Plan: ")).unwrap_or_else(|| panic!("{head}"));
        let own = pairs
            .get(&(g.to_string(), p.to_string()))
            .unwrap_or_else(|| panic!("example not a training line: {g} / {p}"));
        for r in &remembered {
            assert!(own.contains(&format!("\n- {r}\n")), "{r:?} is not in the example's own prompt:\n{own}");
            let person = r.split(' ').next().unwrap();
            assert!(g.to_lowercase().contains(person), "{r:?} names nobody of the example's goal {g:?}");
        }
        with_remembered += usize::from(!remembered.is_empty());
        let goal = rest.lines().next().unwrap().strip_prefix("Goal: ").unwrap();
        assert_ne!(g, goal, "a line is its own example");
    }
    assert!(with_remembered > 0, "no example showed where its person was last seen");

    // Alpaca out and back in.
    let alpaca = dir.path().join("alpaca.json");
    let o =
        arbor(&["dataset", "export-alpaca", out.join("train.jsonl").to_str().unwrap(), "-o", alpaca.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let records: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&alpaca).unwrap()).unwrap();
    assert_eq!(records.len(), train.len());
    assert_eq!(records[0]["output"], train[0]["messages"][2]["content"]);
    let back = dir.path().join("back.jsonl");
    let o = arbor(&["dataset", "import-alpaca", alpaca.to_str().unwrap(), "-o", back.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let back = lines(&back);
    assert_eq!(back.len(), train.len());
    assert_eq!(back[0]["messages"], train[0]["messages"]);
    assert_eq!(back[0]["metadata"]["outcome"], "unverified");
}

#[test]
fn build_names_the_bad_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("dataset.jsonl"), "{\"messages\": 3}\n").unwrap();
    let o = arbor(&["dataset", "build", run.to_str().unwrap(), "-o", dir.path().join("out").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("run/dataset.jsonl") && e.contains("line 1"), "{e}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[{\"instruction\": \"x\"}]").unwrap();
    let o =
        arbor(&["dataset", "import-alpaca", bad.to_str().unwrap(), "-o", dir.path().join("o.jsonl").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.json"), "{}", stderr(&o));
}
