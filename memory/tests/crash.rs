//! `kill -9` during heavy writes: a child process appends events in batches and reports each
//! commit; the parent kills it (SIGKILL) mid-stream and checks that the database opens, passes
//! SQLite's integrity check and holds every event the child reported committed, in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_core::SimTime;
use arbor_memory::{EpisodicStore, Event, EventKind};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "ARBOR_MEMORY_CRASH_CHILD_DB";

/// The child: writes until killed. Run only by the parent test (it is `#[ignore]`d, and fails
/// if started without the database path).
#[test]
#[ignore = "child process of killed_writer_loses_nothing_committed"]
fn crash_child_writer() {
    let path = std::env::var(CHILD_ENV).expect("started by killed_writer_loses_nothing_committed");
    let mut store = EpisodicStore::open(&path).expect("open");
    store.set_batch(1_000_000);
    let mut i: u64 = 0;
    loop {
        for _ in 0..200 {
            store
                .append(Event::new(SimTime(i), EventKind::Said, format!("event {i} {}", "x".repeat((i % 50) as usize))))
                .expect("append");
            i += 1;
        }
        store.flush().expect("flush");
        println!("committed {i}");
    }
}

#[test]
fn killed_writer_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut committed = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed < 20_000 && Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(n) = l.strip_prefix("committed ") {
                    committed = n.trim().parse().unwrap();
                }
            }
            _ => break,
        }
    }
    // SIGKILL while it is writing the next batches.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(committed >= 20_000, "the child committed only {committed} events before the deadline");

    let store = EpisodicStore::open(&db).unwrap();
    let ok: String = store.connection().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let n = store.count().unwrap();
    println!("child reported {committed} committed; the database holds {n} after kill -9");
    assert!(n >= committed, "lost committed events: {n} < {committed}");
    assert_eq!(n % 200, 0, "a batch is all or nothing");
    let all = store.all().unwrap();
    for (i, ev) in all.iter().enumerate() {
        assert_eq!(ev.t, SimTime(i as u64));
        assert!(ev.text.starts_with(&format!("event {i} ")), "row {i}: {}", ev.text);
    }
    // And the full-text index agrees with the table.
    assert_eq!(store.search_text("event", usize::MAX >> 1).unwrap().len() as u64, n);
}
