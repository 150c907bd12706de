//! Memory at scale (a `--bench` binary): `cargo bench -p arbor-memory --bench memory`.
//! `ARBOR_BENCH_EVENTS` sets the number of events (default 1,000,000).
//!
//! Measures, in one run on one database file:
//! - embedding throughput of the real model (all-MiniLM-L6-v2 int8, ONNX Runtime, 2 threads);
//! - batched insert throughput of episodic events (SQLite WAL + the FTS5 index);
//! - consolidation (facts, profiles) and vector storage throughput, index training time;
//! - top-10 query latency p50/p95 for: arbor's hybrid retrieval (IVF candidates + recency +
//!   named entities, scored), the IVF search alone (with recall@10 against exact), an exact
//!   vector scan, and two plain-SQLite baselines on the same questions: a `LIKE` scan and FTS5
//!   BM25.
//!
//! Events are drawn from a few thousand distinct captions (a robot sees the same things many
//! times); each caption is embedded by the real model and each event's vector is that
//! embedding plus a small seeded perturbation (cosine ~0.99), standing for the variation of
//! real captions, so that near-duplicates do not tie.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "bench code")]

use arbor_core::{EntityId, Rng, SimTime};
use arbor_memory::embed::{Embedder, MiniLm, normalize};
use arbor_memory::{Event, EventKind, Memory, Query};
use std::time::{Duration, Instant};

const NAMES: [&str; 40] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf", "zoe", "amara", "bruno", "chen", "dmitri",
    "elif", "farah", "goran", "hana", "igor", "jonas", "kemal", "lena", "marco", "nadia", "oskar", "priya", "quinn",
    "rosa", "sven",
];
const PLACES: [&str; 12] = [
    "kitchen",
    "office",
    "lobby",
    "hallway",
    "lab",
    "garage",
    "storage room",
    "meeting room",
    "cafeteria",
    "workshop",
    "reception",
    "charging station",
];
const OBJECTS: [&str; 8] = ["mug", "laptop", "backpack", "umbrella", "box", "chair", "bottle", "phone"];

type Caption = (EventKind, Option<&'static str>, Option<&'static str>, String);

fn caption(rng: &mut Rng) -> Caption {
    let n = NAMES[(rng.next_u64() % NAMES.len() as u64) as usize];
    let p = PLACES[(rng.next_u64() % PLACES.len() as u64) as usize];
    let o = OBJECTS[(rng.next_u64() % OBJECTS.len() as u64) as usize];
    match rng.next_u64() % 8 {
        0 => (EventKind::EntityAppeared, Some(n), Some(p), format!("{n} came into view")),
        1 => (EventKind::EntityLeft, Some(n), Some(p), format!("{n} went out of view")),
        2 => (EventKind::PhotoTaken, Some(n), Some(p), format!("photo of {n}")),
        3 => (EventKind::Arrived, None, Some(p), format!("arrived at {p}")),
        4 => (EventKind::Said, Some(n), Some(p), format!("said hello to {n}")),
        5 => (EventKind::EntityAppeared, Some(n), Some(p), format!("{n} is carrying a {o}")),
        6 => (EventKind::EntityAppeared, None, Some(p), format!("a {o} is on the table")),
        _ => (EventKind::EntityAppeared, Some(n), Some(p), format!("{n} waved at the robot")),
    }
}

fn event(t: SimTime, c: &Caption) -> Event {
    let (k, e, p, text) = c;
    let mut ev = Event::new(t, *k, text.clone());
    if let Some(e) = e {
        ev = ev.with_entity(EntityId::new(*e));
    }
    if let Some(p) = p {
        ev = ev.with_place(*p);
    }
    ev
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Row {
    name: &'static str,
    p50: Duration,
    p95: Duration,
    note: String,
}

fn time_queries(n: usize, mut f: impl FnMut(usize) -> usize) -> (Duration, Duration, usize) {
    let mut lat = Vec::with_capacity(n);
    let mut found = 0;
    for i in 0..n {
        let t0 = Instant::now();
        found += f(i);
        lat.push(t0.elapsed());
    }
    (percentile(&mut lat, 0.5), percentile(&mut lat, 0.95), found)
}

fn main() {
    let n_events: usize = std::env::var("ARBOR_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.sqlite");
    let mut rng = Rng::seed_from_u64(2026);
    println!("arbor memory bench: {n_events} events, database {}", path.display());

    // Distinct captions, embedded by the real model.
    let mut captions: Vec<Caption> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut tries = 0;
    while captions.len() < 4000 && tries < 200_000 {
        tries += 1;
        let c = caption(&mut rng);
        if seen.insert(format!("{:?}{:?}{:?}{}", c.0, c.1, c.2, c.3)) {
            captions.push(c);
        }
    }
    let mut model = MiniLm::from_models_dir(2).expect("the embedding model (bash .ci/models)");
    let model_id = model.model_id().to_string();
    let texts: Vec<String> =
        captions.iter().map(|c| arbor_memory::store::embed_text(&event(SimTime::ZERO, c))).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    let caption_vecs = model.embed(&refs).unwrap();
    let embed_s = t0.elapsed().as_secs_f64();
    println!(
        "embedding: {} captions in {embed_s:.1} s = {:.0} texts/s (MiniLM int8, ONNX Runtime, 2 threads, batch 32)",
        refs.len(),
        refs.len() as f64 / embed_s
    );

    // Events: 10 per simulated second, captions drawn at random.
    let mut mem = Memory::open(&path).unwrap();
    mem.episodic.set_batch(10_000);
    mem.episodic.set_source("bench");
    let mut which = Vec::with_capacity(n_events);
    let t0 = Instant::now();
    for i in 0..n_events {
        let c = (rng.next_u64() % captions.len() as u64) as usize;
        which.push(c);
        mem.append(event(SimTime(i as u64 * 100_000), &captions[c])).unwrap();
    }
    mem.flush().unwrap();
    let insert_s = t0.elapsed().as_secs_f64();
    println!(
        "insert: {n_events} events in {insert_s:.1} s = {:.0} events/s (batches of 10,000, WAL, FTS5 index)",
        n_events as f64 / insert_s
    );
    let t0 = Instant::now();
    let rep = arbor_memory::semantic::consolidate(&mut mem.episodic, 10_000).unwrap();
    let cons_s = t0.elapsed().as_secs_f64();
    println!(
        "consolidate: {} events -> {} fact updates in {cons_s:.1} s = {:.0} events/s",
        rep.events,
        rep.facts_touched,
        rep.events as f64 / cons_s
    );

    // Vectors: caption embedding + seeded perturbation, stored under the model's id.
    mem.set_embedder(Box::new(model)).unwrap();
    let t0 = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for (i, &c) in which.iter().enumerate() {
        let mut v: Vec<f32> = caption_vecs[c].iter().map(|x| x + 0.008 * rng.normal() as f32).collect();
        normalize(&mut v);
        batch.push((i as i64 + 1, v));
        if batch.len() == 10_000 {
            mem.put_embeddings(&batch).unwrap();
            batch.clear();
        }
    }
    mem.put_embeddings(&batch).unwrap();
    let store_s = t0.elapsed().as_secs_f64();
    println!("vectors: {n_events} stored (int8, 384-d) in {store_s:.1} s = {:.0}/s", n_events as f64 / store_s);
    let t0 = Instant::now();
    let rep = mem.maintain().unwrap();
    assert_eq!(rep.embedded_events, 0, "every event has its vector ({model_id})");
    println!(
        "maintain: index trained {} ({} lists) + {} facts embedded in {:.1} s",
        rep.index_trained,
        mem.index().lists(),
        rep.embedded_facts,
        t0.elapsed().as_secs_f64()
    );
    drop(mem);
    let t0 = Instant::now();
    let mut mem = Memory::open(&path).unwrap();
    println!(
        "reopen: {} vectors loaded with the saved layout in {:.1} s; file {:.0} MB",
        mem.index().len(),
        t0.elapsed().as_secs_f64(),
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    mem.set_embedder(Box::new(MiniLm::from_models_dir(2).unwrap())).unwrap();
    let mut sizes = mem.index().list_sizes();
    sizes.sort_unstable();
    if !sizes.is_empty() {
        println!(
            "IVF lists: {} (rows per list: median {}, p99 {}, max {}; empty {})",
            sizes.len(),
            sizes[sizes.len() / 2],
            sizes[sizes.len() * 99 / 100],
            sizes[sizes.len() - 1],
            sizes.iter().filter(|&&n| n == 0).count()
        );
    }

    // Questions.
    let questions: Vec<String> = (0..200)
        .map(|i| {
            let n = NAMES[i % NAMES.len()];
            let p = PLACES[i % PLACES.len()];
            let o = OBJECTS[i % OBJECTS.len()];
            match i % 5 {
                0 => format!("where was {n} last seen"),
                1 => format!("photos of {n}"),
                2 => format!("who was in the {p}"),
                3 => format!("who was carrying a {o}"),
                _ => format!("when did {n} wave at the robot"),
            }
        })
        .collect();
    let mut qmodel = MiniLm::from_models_dir(2).unwrap();
    let mut qvecs = Vec::new();
    let mut lat = Vec::new();
    for q in &questions {
        let t0 = Instant::now();
        qvecs.push(qmodel.embed(&[q.as_str()]).unwrap().pop().unwrap());
        lat.push(t0.elapsed());
    }
    let now = SimTime(n_events as u64 * 100_000);
    let mut rows = vec![Row {
        name: "query embedding (MiniLM)",
        p50: percentile(&mut lat, 0.5),
        p95: percentile(&mut lat, 0.95),
        note: "one question, 2 threads".into(),
    }];
    let (p50, p95, _) = time_queries(questions.len(), |i| {
        mem.retrieve_by_vector(&Query::new(questions[i].as_str(), now, 10), &qvecs[i]).unwrap().len()
    });
    rows.push(Row { name: "arbor hybrid top-10", p50, p95, note: "IVF + recency + named entities, scored".into() });
    let index = mem.index();
    let (p50, p95, _) = time_queries(questions.len(), |i| index.search(&qvecs[i], 10).len());
    let mut recall_hits = 0;
    let (ep50, ep95, _) = time_queries(questions.len(), |i| index.search_exact(&qvecs[i], 10).len());
    for q in &qvecs {
        let exact: Vec<i64> = index.search_exact(q, 10).iter().map(|h| h.key).collect();
        recall_hits += index.search(q, 10).iter().filter(|h| exact.contains(&h.key)).count();
    }
    let recall = recall_hits as f64 / (10 * questions.len()) as f64;
    rows.push(Row { name: "IVF vector top-10", p50, p95, note: format!("recall@10 vs exact {recall:.3}") });
    rows.push(Row { name: "exact vector scan top-10", p50: ep50, p95: ep95, note: "int8, one thread".into() });
    let conn = mem.episodic.connection();
    let (p50, p95, _) = time_queries(questions.len(), |i| {
        let word = questions[i].split(' ').rev().find(|w| w.len() > 3).unwrap_or("robot");
        let mut stmt =
            conn.prepare_cached("SELECT id FROM events WHERE text LIKE ?1 ORDER BY t_us DESC LIMIT 10").unwrap();
        stmt.query_map([format!("%{word}%")], |r| r.get::<_, i64>(0)).unwrap().count()
    });
    rows.push(Row { name: "baseline: SQLite LIKE scan", p50, p95, note: "newest 10 matching the key word".into() });
    let (p50, p95, _) = time_queries(questions.len(), |i| mem.episodic.search_text(&questions[i], 10).unwrap().len());
    rows.push(Row { name: "baseline: SQLite FTS5 BM25", p50, p95, note: "top 10 by BM25, words OR-ed".into() });

    println!("\n| query ({n_events} events) | p50 ms | p95 ms | p95 / hybrid p95 | note |\n|---|---|---|---|---|");
    let hybrid_p95 = rows[1].p95;
    for r in &rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.2}x | {} |",
            r.name,
            ms(r.p50),
            ms(r.p95),
            r.p95.as_secs_f64() / hybrid_p95.as_secs_f64(),
            r.note
        );
    }
}
