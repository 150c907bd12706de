//! Memory answers questions about simulator runs, checked against the simulator's ground
//! truth: "where was X last seen", "when did X arrive", "who did the robot photograph", "where
//! is the <object>", in several phrasings, over randomized episodes (people renamed and moved
//! to random rooms). Retrieval (MiniLM embeddings, hybrid score) finds the evidence; a rule
//! reader composes the answer. Accuracy is printed; the test fails below 85 %.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_core::{Point2, SimTime};
use arbor_memory::{Memory, MiniLm};
use arbor_sim::generate::{self, GoalSpec};
use arbor_sim::{RunConfig, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// First and last time each entity was observed, and where it was last observed.
fn observed(run: &Path) -> BTreeMap<String, (u64, u64, Point2)> {
    let mut out: BTreeMap<String, (u64, u64, Point2)> = BTreeMap::new();
    for line in std::fs::read_to_string(run.join("observations.jsonl")).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = v["t_us"].as_u64().unwrap();
        for o in v["observations"].as_array().unwrap() {
            let id = o["entity"].as_str().unwrap().to_string();
            let p = Point2::new(o["position"]["x"].as_f64().unwrap(), o["position"]["y"].as_f64().unwrap());
            let e = out.entry(id).or_insert((t, t, p));
            e.1 = t;
            e.2 = p;
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    asked: BTreeMap<&'static str, (u32, u32)>,
}

impl Tally {
    fn check(&mut self, family: &'static str, q: &str, got: Option<String>, want: &str, ok: bool) {
        let e = self.asked.entry(family).or_default();
        e.1 += 1;
        if ok {
            e.0 += 1;
        }
        println!("{} {q:?} -> {:?} (truth {want})", if ok { "ok  " } else { "MISS" }, got.unwrap_or_default());
    }
}

#[test]
fn memory_answers_questions_about_simulator_runs() {
    let base_text = std::fs::read_to_string(root().join("sim/scenarios/photographer.yaml")).unwrap();
    let base = Scenario::parse(&base_text, "photographer.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut tally = Tally::default();
    let where_q = ["where was {} last seen?", "Where did you last see {}?", "where is {} now"];
    let when_q = ["when did {} arrive?", "When did you first see {}?", "when did {} first appear"];
    let who_q = ["who did the robot photograph?", "Who did you take pictures of?", "who was photographed"];
    let mut episodes = 0;
    for index in 0..12u64 {
        let ep = generate::episode(&base, 11, index).unwrap();
        // Episodes that photograph people (the others drive to places).
        if matches!(ep.goal, GoalSpec::GoTo(_)) {
            continue;
        }
        episodes += 1;
        let run = dir.path().join(&ep.id);
        let summary = arbor_sim::run(&RunConfig {
            scenario: ep.scenario.clone(),
            scenario_text: ep.scenario_text.clone(),
            tree: generate::expert(&ep),
            tree_source: "expert".into(),
            tree_author: "expert".into(),
            seed: ep.seed,
            out_dir: run.clone(),
            plan: None,
            live: arbor_sim::runner::LiveOptions::default(),
            perception: Default::default(),
        })
        .unwrap();
        let seen = observed(&run);
        let mut mem = Memory::open(run.join("memory.sqlite")).unwrap();
        mem.set_embedder(Box::new(MiniLm::from_models_dir(2).expect("the embedding model (bash .ci/models)"))).unwrap();
        mem.maintain().unwrap();
        let now = mem.episodic.latest(1).unwrap()[0].event.t;
        let scenario: &Scenario = &ep.scenario;
        let k = index as usize;
        for person in &scenario.people {
            let Some(&(first, _, last_pos)) = seen.get(&person.name) else { continue };
            // Where: people who stay put are where the scenario put them; a walker is where
            // the robot last saw them.
            let truth_pos = if matches!(person.motion, arbor_sim::scenario::Motion::Still) {
                Point2::new(person.pose[0], person.pose[1])
            } else {
                last_pos
            };
            let truth = scenario.room_at(truth_pos).unwrap().to_string();
            let q = where_q[k % 3].replace("{}", &person.name);
            let a = mem.answer(&q, now).unwrap();
            tally.check("where was X last seen", &q, a.answer.clone(), &truth, a.answer.as_deref() == Some(&truth));
            let q = when_q[k % 3].replace("{}", &person.name);
            let a = mem.answer(&q, now).unwrap();
            let ok = a.time == Some(SimTime(first));
            tally.check("when did X arrive", &q, a.answer.clone(), &format!("t={:.1}s", first as f64 / 1e6), ok);
        }
        for object in &scenario.objects {
            if !seen.contains_key(&object.name) {
                continue;
            }
            let truth = scenario.room_at(Point2::new(object.at[0], object.at[1])).unwrap().to_string();
            let q = format!("where is the {}?", object.name);
            let a = mem.answer(&q, now).unwrap();
            tally.check("where is the object", &q, a.answer.clone(), &truth, a.answer.as_deref() == Some(&truth));
        }
        let truth: BTreeSet<String> = summary.photos.iter().filter_map(|p| p.subject.clone()).collect();
        if !truth.is_empty() {
            let q = who_q[k % 3];
            let a = mem.answer(q, now).unwrap();
            let got: BTreeSet<String> =
                a.answer.as_deref().unwrap_or("").split(", ").filter(|s| !s.is_empty()).map(String::from).collect();
            let want = truth.iter().cloned().collect::<Vec<_>>().join(", ");
            tally.check("who did the robot photograph", q, a.answer.clone(), &want, got == truth);
        }
    }
    let (mut ok, mut n) = (0, 0);
    println!("\nmemory QA over {episodes} simulator episodes:");
    for (family, (good, total)) in &tally.asked {
        println!("  {family:30} {good}/{total} ({:.0} %)", 100.0 * *good as f64 / *total as f64);
        ok += good;
        n += total;
    }
    let accuracy = ok as f64 / n as f64;
    println!("  {:30} {ok}/{n} ({:.1} %)", "all", 100.0 * accuracy);
    assert!(n >= 40, "too few questions: {n}");
    assert!(accuracy >= 0.85, "memory QA accuracy {accuracy:.3}");
}
