//! Episodic memory: an append-only log of events in SQLite on disk (WAL, batched commits).

use arbor_core::{EntityId, Point2, SimTime};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("memory database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("memory database {path}: unknown event kind '{kind}' in row {row}")]
    BadRow { path: PathBuf, row: i64, kind: String },
    #[error("memory database {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
}

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    GoalSet,
    EntityAppeared,
    EntityLeft,
    SkillStarted,
    SkillFinished,
    Arrived,
    Said,
    PhotoTaken,
    RunFinished,
    /// A person started attending to the robot (camera perception's attention model).
    AttentionStarted,
    AttentionStopped,
    /// A vision-language model described what the camera saw.
    Described,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::GoalSet,
        EventKind::EntityAppeared,
        EventKind::EntityLeft,
        EventKind::SkillStarted,
        EventKind::SkillFinished,
        EventKind::Arrived,
        EventKind::Said,
        EventKind::PhotoTaken,
        EventKind::RunFinished,
        EventKind::AttentionStarted,
        EventKind::AttentionStopped,
        EventKind::Described,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::GoalSet => "goal_set",
            EventKind::EntityAppeared => "entity_appeared",
            EventKind::EntityLeft => "entity_left",
            EventKind::SkillStarted => "skill_started",
            EventKind::SkillFinished => "skill_finished",
            EventKind::Arrived => "arrived",
            EventKind::Said => "said",
            EventKind::PhotoTaken => "photo_taken",
            EventKind::RunFinished => "run_finished",
            EventKind::AttentionStarted => "attention_started",
            EventKind::AttentionStopped => "attention_stopped",
            EventKind::Described => "described",
        }
    }
}

impl EventKind {
    /// How much an event of this kind matters when memory is searched for a plan, in [0, 1].
    pub fn importance(self) -> f32 {
        match self {
            EventKind::GoalSet => 0.9,
            EventKind::PhotoTaken => 0.8,
            EventKind::RunFinished => 0.7,
            EventKind::Said => 0.6,
            EventKind::EntityAppeared | EventKind::Arrived => 0.5,
            EventKind::EntityLeft => 0.4,
            EventKind::AttentionStarted | EventKind::Described => 0.6,
            EventKind::AttentionStopped => 0.4,
            EventKind::SkillFinished => 0.3,
            EventKind::SkillStarted => 0.2,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

/// The lowercase words of a text (letters, digits and `_`, so entity ids like `person_1` stay
/// whole): how memory decides that a text names an entity.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric() && c != '_').filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// One thing that happened, when, where and to whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub t: SimTime,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// Where it happened (the entity's position for entity events), world frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pose: Option<Point2>,
    pub text: String,
}

impl Event {
    pub fn new(t: SimTime, kind: EventKind, text: impl Into<String>) -> Self {
        Self { t, kind, entity: None, place: None, pose: None, text: text.into() }
    }

    pub fn with_pose(mut self, p: Point2) -> Self {
        self.pose = Some(p);
        self
    }

    pub fn with_entity(mut self, e: EntityId) -> Self {
        self.entity = Some(e);
        self
    }

    pub fn with_place(mut self, p: impl Into<String>) -> Self {
        self.place = Some(p.into());
        self
    }
}

/// The on-disk episodic log. Appends are buffered and committed in batches; `flush`
/// commits what is buffered. Events committed are never rewritten.
pub struct EpisodicStore {
    conn: Connection,
    path: PathBuf,
    pending: Vec<Event>,
    batch: usize,
    source: String,
}

/// A committed event and its row id (ids grow with insertion order).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: i64,
    pub event: Event,
}

impl fmt::Debug for EpisodicStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpisodicStore").field("path", &self.path).field("pending", &self.pending.len()).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    t_us   INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    entity TEXT,
    place  TEXT,
    text   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_t ON events(t_us);
CREATE INDEX IF NOT EXISTS events_entity ON events(entity, t_us);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, t_us);
CREATE INDEX IF NOT EXISTS events_place ON events(place, t_us);
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(text, content='events', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS events_fts_insert AFTER INSERT ON events BEGIN
    INSERT INTO events_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS events_fts_delete AFTER DELETE ON events BEGIN
    INSERT INTO events_fts(events_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
";

/// Columns added after the first release of the log (added in place to older databases).
const LATER_COLUMNS: [(&str, &str); 4] =
    [("x", "REAL"), ("y", "REAL"), ("importance", "REAL NOT NULL DEFAULT 0.5"), ("source", "TEXT")];

const COLUMNS: &str = "id, t_us, kind, entity, place, text, x, y";

impl EpisodicStore {
    /// Opens (creating if needed) the log at `path`, in WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MemoryError> {
        let path = path.as_ref().to_path_buf();
        let err = |source| MemoryError::Sqlite { path: path.clone(), source };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let have: Vec<String> = {
            let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('events')").map_err(err)?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
            names.collect::<Result<_, _>>().map_err(err)?
        };
        for (col, ty) in LATER_COLUMNS {
            if !have.iter().any(|h| h == col) {
                conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {col} {ty}")).map_err(err)?;
            }
        }
        Ok(Self { conn, path, pending: Vec::new(), batch: 256, source: "arbor".into() })
    }

    /// Names where events come from (`sim`, a robot's name); stored with each event.
    pub fn set_source(&mut self, source: impl Into<String>) {
        self.source = source.into();
    }

    /// Events per committed transaction.
    pub fn set_batch(&mut self, batch: usize) {
        self.batch = batch.max(1);
    }

    /// The SQLite connection (the semantic layer and retrieval share the database).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> MemoryError {
        MemoryError::Sqlite { path: self.path.clone(), source }
    }

    /// Buffers an event; commits the buffer when it reaches the batch size.
    /// Events appended but not committed yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn append(&mut self, event: Event) -> Result<(), MemoryError> {
        self.pending.push(event);
        if self.pending.len() >= self.batch {
            self.flush()?;
        }
        Ok(())
    }

    /// Commits every buffered event in one transaction. On error the buffer is kept, so
    /// nothing is lost and the caller may retry.
    pub fn flush(&mut self) -> Result<(), MemoryError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(|e| MemoryError::Sqlite { path: self.path.clone(), source: e })?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO events (t_us, kind, entity, place, text, x, y, importance, source) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(|e| MemoryError::Sqlite { path: self.path.clone(), source: e })?;
            for ev in &self.pending {
                stmt.execute(params![
                    ev.t.micros() as i64,
                    ev.kind.as_str(),
                    ev.entity.as_ref().map(EntityId::as_str),
                    ev.place.as_deref(),
                    ev.text,
                    ev.pose.map(|p| p.x),
                    ev.pose.map(|p| p.y),
                    f64::from(ev.kind.importance()),
                    self.source,
                ])
                .map_err(|e| MemoryError::Sqlite { path: self.path.clone(), source: e })?;
            }
        }
        tx.commit().map_err(|e| MemoryError::Sqlite { path: self.path.clone(), source: e })?;
        self.pending.clear();
        Ok(())
    }

    /// Number of committed events.
    pub fn count(&self) -> Result<u64, MemoryError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    /// Runs a `SELECT {COLUMNS} ...` statement.
    pub(crate) fn query_stored(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Stored>, MemoryError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<f64>>(6)?,
                    r.get::<_, Option<f64>>(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, t, kind, entity, place, text, x, y) = row.map_err(|e| self.err(e))?;
            let kind = kind.parse::<EventKind>().map_err(|()| MemoryError::BadRow {
                path: self.path.clone(),
                row: id,
                kind: kind.clone(),
            })?;
            let pose = x.zip(y).map(|(x, y)| Point2::new(x, y));
            out.push(Stored {
                id,
                event: Event { t: SimTime(t.max(0) as u64), kind, entity: entity.map(EntityId), place, pose, text },
            });
        }
        Ok(out)
    }

    fn query(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Event>, MemoryError> {
        Ok(self.query_stored(sql, args)?.into_iter().map(|s| s.event).collect())
    }

    /// Committed events with ids in `ids` (any order in, id order out).
    pub fn by_ids(&self, ids: &[i64]) -> Result<Vec<Stored>, MemoryError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            out.extend(
                self.query_stored(&format!("SELECT {COLUMNS} FROM events WHERE id IN ({list}) ORDER BY id"), &[])?,
            );
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }

    /// Committed events after row `after_id`, oldest first, at most `limit`.
    pub fn after(&self, after_id: i64, limit: usize) -> Result<Vec<Stored>, MemoryError> {
        self.query_stored(
            &format!("SELECT {COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"),
            &[&after_id, &(limit as i64)],
        )
    }

    /// The `n` latest events (by time), newest first.
    pub fn latest(&self, n: usize) -> Result<Vec<Stored>, MemoryError> {
        self.query_stored(&format!("SELECT {COLUMNS} FROM events ORDER BY t_us DESC, id DESC LIMIT ?1"), &[&(n as i64)])
    }

    /// Full-text search (SQLite FTS5, BM25 order), at most `n`. Words are matched as terms;
    /// FTS5 syntax in `text` is not interpreted.
    pub fn search_text(&self, text: &str, n: usize) -> Result<Vec<Stored>, MemoryError> {
        let terms: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| format!("\"{}\"", w.to_lowercase()))
            .collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let cols = COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
        self.query_stored(
            &format!(
                "SELECT {cols} FROM events_fts f JOIN events e ON e.id = f.rowid \
                 WHERE events_fts MATCH ?1 ORDER BY bm25(events_fts) LIMIT ?2"
            ),
            &[&terms.join(" OR "), &(n as i64)],
        )
    }

    /// Deletes every committed event about `entity` (by entity column or the name as a word in
    /// the text); returns the ids removed. Buffered events about it are dropped too.
    pub fn delete_about(&mut self, entity: &str) -> Result<Vec<i64>, MemoryError> {
        let needle = entity.to_lowercase();
        let mentions = |ev: &Event| {
            ev.entity.as_ref().is_some_and(|e| e.as_str() == entity) || words(&ev.text).any(|w| w == needle)
        };
        self.pending.retain(|ev| !mentions(ev));
        let candidates = self.search_text(entity, usize::MAX >> 1)?;
        let mut ids: Vec<i64> = candidates.iter().filter(|s| mentions(&s.event)).map(|s| s.id).collect();
        ids.extend(
            self.query_stored(&format!("SELECT {COLUMNS} FROM events WHERE entity = ?1"), &[&entity])?
                .iter()
                .map(|s| s.id),
        );
        ids.sort_unstable();
        ids.dedup();
        self.delete_ids(&ids)?;
        Ok(ids)
    }

    /// Deletes committed events older than `before`; returns the ids removed.
    pub fn delete_before(&mut self, before: SimTime) -> Result<Vec<i64>, MemoryError> {
        let ids: Vec<i64> = self
            .query_stored(&format!("SELECT {COLUMNS} FROM events WHERE t_us < ?1"), &[&(before.micros() as i64)])?
            .iter()
            .map(|s| s.id)
            .collect();
        self.delete_ids(&ids)?;
        Ok(ids)
    }

    fn delete_ids(&mut self, ids: &[i64]) -> Result<(), MemoryError> {
        let path = self.path.clone();
        let err = |e| MemoryError::Sqlite { path: path.clone(), source: e };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM events WHERE id = ?1").map_err(err)?;
            for id in ids {
                stmt.execute([id]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Committed events in order of insertion.
    pub fn all(&self) -> Result<Vec<Event>, MemoryError> {
        self.query(&format!("SELECT {COLUMNS} FROM events ORDER BY id"), &[])
    }

    pub fn by_entity(&self, entity: &str) -> Result<Vec<Event>, MemoryError> {
        self.query(&format!("SELECT {COLUMNS} FROM events WHERE entity = ?1 ORDER BY t_us, id"), &[&entity])
    }

    pub fn by_place(&self, place: &str) -> Result<Vec<Event>, MemoryError> {
        self.query(&format!("SELECT {COLUMNS} FROM events WHERE place = ?1 ORDER BY t_us, id"), &[&place])
    }

    pub fn by_kind(&self, kind: EventKind) -> Result<Vec<Event>, MemoryError> {
        self.query(&format!("SELECT {COLUMNS} FROM events WHERE kind = ?1 ORDER BY t_us, id"), &[&kind.as_str()])
    }

    pub fn in_time_range(&self, from: SimTime, to: SimTime) -> Result<Vec<Event>, MemoryError> {
        self.query(
            &format!("SELECT {COLUMNS} FROM events WHERE t_us >= ?1 AND t_us <= ?2 ORDER BY t_us, id"),
            &[&(from.micros() as i64), &(to.micros() as i64)],
        )
    }

    /// The latest committed event about `entity`, if any.
    pub fn last_about(&self, entity: &str) -> Result<Option<Event>, MemoryError> {
        Ok(self
            .query_stored(
                &format!("SELECT {COLUMNS} FROM events WHERE entity = ?1 ORDER BY t_us DESC, id DESC LIMIT 1"),
                &[&entity],
            )?
            .pop()
            .map(|s| s.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_across_reopen_and_queries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.sqlite");
        {
            let mut s = EpisodicStore::open(&path).unwrap();
            s.append(Event::new(SimTime(10), EventKind::GoalSet, "photograph people")).unwrap();
            s.append(
                Event::new(SimTime(20), EventKind::EntityAppeared, "alice came into view")
                    .with_entity(EntityId::new("alice"))
                    .with_place("kitchen"),
            )
            .unwrap();
            s.append(
                Event::new(SimTime(30), EventKind::PhotoTaken, "photo of alice").with_entity(EntityId::new("alice")),
            )
            .unwrap();
            assert_eq!(s.count().unwrap(), 0, "buffered, not committed yet");
            s.flush().unwrap();
        }
        let s = EpisodicStore::open(&path).unwrap();
        assert_eq!(s.count().unwrap(), 3);
        assert_eq!(s.by_entity("alice").unwrap().len(), 2);
        assert_eq!(s.by_kind(EventKind::GoalSet).unwrap()[0].text, "photograph people");
        assert_eq!(s.in_time_range(SimTime(15), SimTime(25)).unwrap().len(), 1);
        let last = s.last_about("alice").unwrap().unwrap();
        assert_eq!(last.kind, EventKind::PhotoTaken);
        assert!(s.last_about("nobody").unwrap().is_none());
        assert_eq!(s.all().unwrap()[1].place.as_deref(), Some("kitchen"));
        assert_eq!(s.by_place("kitchen").unwrap().len(), 1);
        assert_eq!(s.search_text("ALICE view", 10).unwrap().len(), 2, "FTS5, case-insensitive, words OR-ed");
    }

    #[test]
    fn batches_commit_automatically() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = EpisodicStore::open(dir.path().join("m.sqlite")).unwrap();
        for i in 0..300 {
            s.append(Event::new(SimTime(i), EventKind::Said, "x")).unwrap();
        }
        assert_eq!(s.count().unwrap(), 256);
        s.flush().unwrap();
        assert_eq!(s.count().unwrap(), 300);
    }

    #[test]
    fn unopenable_path_names_the_file() {
        let err = EpisodicStore::open("/nonexistent-dir/x/memory.sqlite").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x/memory.sqlite"), "{err}");
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.sqlite");
        std::fs::write(&path, b"this is not a database, just text that is long enough to matter....").unwrap();
        let err = EpisodicStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("bad.sqlite"), "{err}");
    }
}
