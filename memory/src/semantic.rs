//! Semantic memory: facts (subject, predicate, object) with confidence, first/last seen and
//! provenance (the episode ids they were distilled from), and entity profiles (names,
//! attributes, usual places). Built from the episodic log by [`consolidate`], which is
//! incremental (it resumes after the last event it folded in) and idempotent (the watermark
//! moves in the same transaction as the facts it produced).

use crate::episodic::{EpisodicStore, EventKind, MemoryError, Stored};
use arbor_core::SimTime;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::BTreeMap;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS facts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    subject    TEXT NOT NULL,
    predicate  TEXT NOT NULL,
    object     TEXT NOT NULL,
    confidence REAL NOT NULL,
    first_us   INTEGER NOT NULL,
    last_us    INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    provenance TEXT NOT NULL,
    UNIQUE(subject, predicate, object)
);
CREATE INDEX IF NOT EXISTS facts_subject ON facts(subject);
CREATE INDEX IF NOT EXISTS facts_object ON facts(object);
CREATE TABLE IF NOT EXISTS profiles (
    entity     TEXT PRIMARY KEY,
    names      TEXT NOT NULL,
    attributes TEXT NOT NULL,
    places     TEXT NOT NULL,
    first_us   INTEGER NOT NULL,
    last_us    INTEGER NOT NULL,
    events     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Provenance keeps the latest this many episode ids per fact.
const PROVENANCE_KEEP: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub id: i64,
    pub subject: String,
    pub predicate: String,
    pub object: String,
    pub confidence: f64,
    pub first_seen: SimTime,
    pub last_seen: SimTime,
    pub count: u64,
    /// Episode (event) ids this fact was distilled from, newest last.
    pub provenance: Vec<i64>,
}

impl Fact {
    /// The fact as a sentence (what gets embedded and shown to the planner).
    pub fn sentence(&self) -> String {
        match self.predicate.as_str() {
            "seen_in" => format!("{} was seen in the {}", self.subject, self.object),
            "photographed" => format!("the robot photographed {}", self.object),
            "visited" => format!("the robot went to the {}", self.object),
            "said" => format!("the robot said \"{}\"", self.object),
            "was_asked" => format!("the robot was asked to {}", self.object),
            p => format!("{} {} {}", self.subject, p.replace('_', " "), self.object),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub entity: String,
    pub names: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// Place -> number of sightings there.
    pub places: BTreeMap<String, u64>,
    pub first_seen: SimTime,
    pub last_seen: SimTime,
    pub events: u64,
}

impl Profile {
    /// The place this entity was seen in most often.
    pub fn usual_place(&self) -> Option<&str> {
        self.places.iter().max_by_key(|(p, n)| (**n, std::cmp::Reverse(p.as_str()))).map(|(p, _)| p.as_str())
    }
}

/// What one [`consolidate`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ConsolidateReport {
    pub events: u64,
    pub facts_touched: u64,
    pub profiles_touched: u64,
    pub through_event: i64,
}

/// The facts an event implies: (subject, predicate, object).
fn facts_of(s: &Stored) -> Vec<(String, &'static str, String)> {
    let ev = &s.event;
    let entity = ev.entity.as_ref().map(|e| e.as_str().to_string());
    match (ev.kind, entity, &ev.place) {
        (EventKind::EntityAppeared | EventKind::EntityLeft, Some(e), Some(p)) => vec![(e, "seen_in", p.clone())],
        (EventKind::PhotoTaken, Some(e), _) => vec![("robot".into(), "photographed", e)],
        (EventKind::Arrived, _, Some(p)) => vec![("robot".into(), "visited", p.clone())],
        (EventKind::Said, _, _) => vec![("robot".into(), "said", ev.text.clone())],
        (EventKind::GoalSet, _, _) => vec![("robot".into(), "was_asked", ev.text.clone())],
        _ => Vec::new(),
    }
}

pub(crate) fn meta_get(store: &EpisodicStore, key: &str) -> Result<Option<String>, MemoryError> {
    store
        .connection()
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(|e| MemoryError::Sqlite { path: store.path().to_path_buf(), source: e })
}

/// Folds every committed event after the watermark into facts and profiles, `batch` events
/// per transaction. Running it again changes nothing.
pub fn consolidate(store: &mut EpisodicStore, batch: usize) -> Result<ConsolidateReport, MemoryError> {
    let path = store.path().to_path_buf();
    let err = |e| MemoryError::Sqlite { path: path.clone(), source: e };
    let mut report = ConsolidateReport::default();
    let mut through: i64 = meta_get(store, "consolidated_through")?.and_then(|v| v.parse().ok()).unwrap_or(0);
    loop {
        let events = store.after(through, batch.max(1))?;
        let Some(last) = events.last() else { break };
        let last_id = last.id;
        let tx = store.connection_mut().transaction().map_err(err)?;
        for s in &events {
            let t = s.event.t.micros() as i64;
            for (subj, pred, obj) in facts_of(s) {
                let existing: Option<(i64, String)> = tx
                    .query_row(
                        "SELECT count, provenance FROM facts WHERE subject = ?1 AND predicate = ?2 AND object = ?3",
                        params![subj, pred, obj],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(err)?;
                let (count, mut prov) = match existing {
                    Some((c, p)) => (c + 1, serde_json::from_str::<Vec<i64>>(&p).unwrap_or_default()),
                    None => (1, Vec::new()),
                };
                prov.push(s.id);
                if prov.len() > PROVENANCE_KEEP {
                    prov.drain(..prov.len() - PROVENANCE_KEEP);
                }
                // Repeated evidence raises confidence: 0.6, 0.8, 0.9, ...
                let confidence = 1.0 - 0.4 * 0.5f64.powi((count - 1).min(30) as i32);
                tx.execute(
                    "INSERT INTO facts (subject, predicate, object, confidence, first_us, last_us, count, provenance) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7) \
                     ON CONFLICT(subject, predicate, object) DO UPDATE SET confidence = ?4, \
                     first_us = MIN(first_us, ?5), last_us = MAX(last_us, ?5), count = ?6, provenance = ?7",
                    params![subj, pred, obj, confidence, t, count, serde_json::to_string(&prov).unwrap_or_default()],
                )
                .map_err(err)?;
                report.facts_touched += 1;
            }
            if let Some(e) = &s.event.entity {
                let e = e.as_str();
                let row: Option<(String, String, i64, i64, i64)> = tx
                    .query_row(
                        "SELECT attributes, places, first_us, last_us, events FROM profiles WHERE entity = ?1",
                        [e],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                    )
                    .optional()
                    .map_err(err)?;
                let (mut attrs, mut places, first, last, n) = match row {
                    Some((a, p, f, l, n)) => (
                        serde_json::from_str::<BTreeMap<String, String>>(&a).unwrap_or_default(),
                        serde_json::from_str::<BTreeMap<String, u64>>(&p).unwrap_or_default(),
                        f.min(t),
                        l.max(t),
                        n + 1,
                    ),
                    None => (BTreeMap::new(), BTreeMap::new(), t, t, 1),
                };
                if let Some(p) = &s.event.place
                    && s.event.kind == EventKind::EntityAppeared
                {
                    *places.entry(p.clone()).or_default() += 1;
                }
                if s.event.kind == EventKind::PhotoTaken {
                    let k = attrs.entry("photographed".into()).or_insert_with(|| "0".into());
                    *k = (k.parse::<u64>().unwrap_or(0) + 1).to_string();
                }
                if let Some(p) = &s.event.place {
                    attrs.insert("last_place".into(), p.clone());
                }
                tx.execute(
                    "INSERT INTO profiles (entity, names, attributes, places, first_us, last_us, events) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(entity) DO UPDATE SET \
                     attributes = ?3, places = ?4, first_us = ?5, last_us = ?6, events = ?7",
                    params![
                        e,
                        serde_json::to_string(&[e]).unwrap_or_default(),
                        serde_json::to_string(&attrs).unwrap_or_default(),
                        serde_json::to_string(&places).unwrap_or_default(),
                        first,
                        last,
                        n
                    ],
                )
                .map_err(err)?;
                report.profiles_touched += 1;
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('consolidated_through', ?1) \
             ON CONFLICT(key) DO UPDATE SET value = ?1",
            [last_id.to_string()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        report.events += events.len() as u64;
        through = last_id;
    }
    report.through_event = through;
    Ok(report)
}

fn fact_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fact> {
    let prov: String = r.get(8)?;
    Ok(Fact {
        id: r.get(0)?,
        subject: r.get(1)?,
        predicate: r.get(2)?,
        object: r.get(3)?,
        confidence: r.get(4)?,
        first_seen: SimTime(r.get::<_, i64>(5)?.max(0) as u64),
        last_seen: SimTime(r.get::<_, i64>(6)?.max(0) as u64),
        count: r.get::<_, i64>(7)?.max(0) as u64,
        provenance: serde_json::from_str(&prov).unwrap_or_default(),
    })
}

const FACT_COLUMNS: &str = "id, subject, predicate, object, confidence, first_us, last_us, count, provenance";

/// Facts, optionally only those about `entity` (as subject or object).
pub fn facts(store: &EpisodicStore, entity: Option<&str>) -> Result<Vec<Fact>, MemoryError> {
    let err = |e| MemoryError::Sqlite { path: store.path().to_path_buf(), source: e };
    let conn = store.connection();
    let mut stmt = match entity {
        Some(_) => conn
            .prepare_cached(&format!("SELECT {FACT_COLUMNS} FROM facts WHERE subject = ?1 OR object = ?1 ORDER BY id")),
        None => conn.prepare_cached(&format!("SELECT {FACT_COLUMNS} FROM facts ORDER BY id")),
    }
    .map_err(err)?;
    let rows = match entity {
        Some(e) => stmt.query_map([e], fact_from_row),
        None => stmt.query_map([], fact_from_row),
    }
    .map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

pub fn facts_by_ids(store: &EpisodicStore, ids: &[i64]) -> Result<Vec<Fact>, MemoryError> {
    let err = |e| MemoryError::Sqlite { path: store.path().to_path_buf(), source: e };
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut stmt =
        store.connection().prepare(&format!("SELECT {FACT_COLUMNS} FROM facts WHERE id IN ({list})")).map_err(err)?;
    let rows = stmt.query_map([], fact_from_row).map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

/// Every profile, by entity id.
pub fn profiles(store: &EpisodicStore) -> Result<Vec<Profile>, MemoryError> {
    let err = |e| MemoryError::Sqlite { path: store.path().to_path_buf(), source: e };
    let mut stmt = store
        .connection()
        .prepare_cached(
            "SELECT entity, names, attributes, places, first_us, last_us, events FROM profiles ORDER BY entity",
        )
        .map_err(err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Profile {
                entity: r.get(0)?,
                names: serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default(),
                attributes: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                places: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                first_seen: SimTime(r.get::<_, i64>(4)?.max(0) as u64),
                last_seen: SimTime(r.get::<_, i64>(5)?.max(0) as u64),
                events: r.get::<_, i64>(6)?.max(0) as u64,
            })
        })
        .map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

/// Removes every fact and the profile about `entity`; returns the fact ids removed.
pub fn forget(store: &mut EpisodicStore, entity: &str) -> Result<Vec<i64>, MemoryError> {
    let path = store.path().to_path_buf();
    let err = |e| MemoryError::Sqlite { path: path.clone(), source: e };
    let ids: Vec<i64> = facts(store, Some(entity))?.iter().map(|f| f.id).collect();
    let tx = store.connection_mut().transaction().map_err(err)?;
    let mut ids = ids;
    // Facts that only mention the name in their object text ("said ...") go too.
    let like = format!("%{}%", entity.to_lowercase());
    {
        let mut stmt = tx.prepare("SELECT id FROM facts WHERE lower(object) LIKE ?1").map_err(err)?;
        let more = stmt.query_map([&like], |r| r.get::<_, i64>(0)).map_err(err)?;
        for id in more {
            ids.push(id.map_err(err)?);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    tx.execute("DELETE FROM facts WHERE subject = ?1 OR object = ?1 OR lower(object) LIKE ?2", [entity, &like])
        .map_err(err)?;
    tx.execute("DELETE FROM profiles WHERE entity = ?1", [entity]).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(ids)
}
