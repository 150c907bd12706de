//! `arbor memory` over a simulator run: questions answered from the run's memory, stats,
//! facts, the planner's context, forgetting; bad paths, corrupt and locked databases.

use crate::{SCENARIO, TREE, arbor, stderr, stdout};
use std::path::Path;

fn sim(out: &Path) {
    let o = arbor(&["sim", "--scenario", SCENARIO, "--tree", TREE, "--seed", "1", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn memory_cli_answers_questions_about_a_run_and_forgets_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sim(&run);
    let r = run.to_str().unwrap();
    let o = arbor(&["memory", "query", r, "where was bob last seen"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("answer: kitchen\n"), "{}", stdout(&o));

    let o = arbor(&["memory", "query", r, "who did the robot photograph", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "who");
    assert_eq!(v["answer"], "alice, carol, dave");
    assert!(!v["evidence"].as_array().unwrap().is_empty());

    // When of a photo is the photo's time (not the person's latest sighting); a name memory
    // never met has no answer.
    let o = arbor(&["memory", "query", r, "when was carol photographed", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let photo_t = v["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e.to_string().contains("photo of carol"))
        .map(|e| e.to_string())
        .unwrap_or_default();
    let t = v["answer"].as_str().unwrap().trim_start_matches("t=").trim_end_matches('s').to_string();
    assert!(!t.is_empty() && photo_t.contains(&format!("{}", (t.parse::<f64>().unwrap() * 1e6).round() as u64)), "{v}");
    let o = arbor(&["memory", "query", r, "where was frank last seen"]);
    assert!(stdout(&o).starts_with("answer: memory has nothing that answers this"), "{}", stdout(&o));

    let o = arbor(&["memory", "stats", r, "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let events = s["events"].as_u64().unwrap();
    assert!(events > 100, "{s}");
    assert_eq!(s["unembedded_events"], 0, "query brought the file up to date");
    assert!(s["facts"].as_u64().unwrap() >= 10);
    assert_eq!(s["embedding_models"][0], "all-MiniLM-L6-v2-int8");

    let o = arbor(&["memory", "facts", r, "--entity", "dave"]);
    assert!(stdout(&o).contains("dave was seen in the lobby"), "{}", stdout(&o));
    assert!(stdout(&o).contains("usual place lobby"), "{}", stdout(&o));

    let o = arbor(&["memory", "context", r, "photograph bob", "--tokens", "80"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ctx = stdout(&o);
    assert!(ctx.contains("bob"), "{ctx}");
    assert!(ctx.len() <= 80 * 4 + 4 * ctx.lines().count(), "{ctx}");

    let o = arbor(&["memory", "forget", r, "alice", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(f["events"].as_u64().unwrap() > 5, "{f}");
    let o = arbor(&["memory", "query", r, "where was alice last seen", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!v.to_string().to_lowercase().contains("alice came"), "{v}");
    assert!(v["subject"].is_null(), "alice is unknown now: {v}");
    // No trace in any file of the database: its pages (free ones too), the WAL, the
    // full-text index, the embeddings (the run's memory was consolidated and embedded above).
    let files: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("memory.sqlite"))
        .collect();
    assert!(!files.is_empty());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
        let hits = lower.windows(5).filter(|w| *w == b"alice").count();
        assert_eq!(hits, 0, "{}: 'alice' {hits} times after forget", f.display());
    }
}

#[test]
fn bad_memory_databases_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // No database: named, and none created.
    let missing = dir.path().join("nothing");
    let o = arbor(&["memory", "stats", missing.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no memory database at") && stderr(&o).contains("nothing"), "{}", stderr(&o));
    assert!(!missing.exists());
    // Not a database.
    let bad = dir.path().join("memory.sqlite");
    std::fs::write(&bad, vec![b'x'; 4096]).unwrap();
    let o = arbor(&["memory", "query", bad.to_str().unwrap(), "where was bob"]);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(stderr(&o).contains("memory.sqlite"), "{}", stderr(&o));
    // Locked by another writer past the busy timeout: an error naming the file, and what was
    // committed before is intact afterwards.
    let run = dir.path().join("run");
    sim(&run);
    let db = run.join("memory.sqlite");
    let before = {
        let o = arbor(&["memory", "stats", db.to_str().unwrap(), "--json"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["events"].as_u64().unwrap()
    };
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let o = arbor(&["memory", "forget", db.to_str().unwrap(), "bob"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("memory.sqlite") && err.contains("locked"), "{err}");
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    let o = arbor(&["memory", "stats", db.to_str().unwrap(), "--json"]);
    let after = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["events"].as_u64().unwrap();
    assert_eq!(before, after);
    // A damaged page (64 bytes flipped inside a table page): stats says so, exit 2.
    let damaged = dir.path().join("damaged.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    let at = 5 * 4096 + 300;
    assert!(bytes.len() > at + 64);
    for b in &mut bytes[at..at + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    let o = arbor(&["memory", "stats", damaged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("damaged.sqlite: damaged:"), "{}", stderr(&o));
    // Bad arguments.
    let o = arbor(&["memory", "query", db.to_str().unwrap(), "  "]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("the query is empty"), "{}", stderr(&o));
    let o = arbor(&["memory", "retain", db.to_str().unwrap(), "--max-age-s", "NaN"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--max-age-s"), "{}", stderr(&o));
}
