//! Episodic memory: an append-only log of events in SQLite on disk (WAL, batched commits).

use arbor_perception::{EntityId, SimTime};
use rusqlite::{Connection, OptionalExtension, params};
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
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::GoalSet,
        EventKind::EntityAppeared,
        EventKind::EntityLeft,
        EventKind::SkillStarted,
        EventKind::SkillFinished,
        EventKind::Arrived,
        EventKind::Said,
        EventKind::PhotoTaken,
        EventKind::RunFinished,
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

/// One thing that happened, when, where and to whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub t: SimTime,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    pub text: String,
}

impl Event {
    pub fn new(t: SimTime, kind: EventKind, text: impl Into<String>) -> Self {
        Self { t, kind, entity: None, place: None, text: text.into() }
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
";

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
        Ok(Self { conn, path, pending: Vec::new(), batch: 256 })
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
                .prepare_cached("INSERT INTO events (t_us, kind, entity, place, text) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(|e| MemoryError::Sqlite { path: self.path.clone(), source: e })?;
            for ev in &self.pending {
                stmt.execute(params![
                    ev.t.micros() as i64,
                    ev.kind.as_str(),
                    ev.entity.as_ref().map(EntityId::as_str),
                    ev.place.as_deref(),
                    ev.text
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

    fn query(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Event>, MemoryError> {
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
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, t, kind, entity, place, text) = row.map_err(|e| self.err(e))?;
            let kind = kind.parse::<EventKind>().map_err(|()| MemoryError::BadRow {
                path: self.path.clone(),
                row: id,
                kind: kind.clone(),
            })?;
            out.push(Event { t: SimTime(t.max(0) as u64), kind, entity: entity.map(EntityId), place, text });
        }
        Ok(out)
    }

    /// Committed events in order of insertion.
    pub fn all(&self) -> Result<Vec<Event>, MemoryError> {
        self.query("SELECT id, t_us, kind, entity, place, text FROM events ORDER BY id", &[])
    }

    pub fn by_entity(&self, entity: &str) -> Result<Vec<Event>, MemoryError> {
        self.query(
            "SELECT id, t_us, kind, entity, place, text FROM events WHERE entity = ?1 ORDER BY t_us, id",
            &[&entity],
        )
    }

    pub fn by_kind(&self, kind: EventKind) -> Result<Vec<Event>, MemoryError> {
        self.query(
            "SELECT id, t_us, kind, entity, place, text FROM events WHERE kind = ?1 ORDER BY t_us, id",
            &[&kind.as_str()],
        )
    }

    pub fn in_time_range(&self, from: SimTime, to: SimTime) -> Result<Vec<Event>, MemoryError> {
        self.query(
            "SELECT id, t_us, kind, entity, place, text FROM events WHERE t_us >= ?1 AND t_us <= ?2 ORDER BY t_us, id",
            &[&(from.micros() as i64), &(to.micros() as i64)],
        )
    }

    /// The latest committed event about `entity`, if any.
    pub fn last_about(&self, entity: &str) -> Result<Option<Event>, MemoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t_us, kind, place, text FROM events WHERE entity = ?1 ORDER BY t_us DESC, id DESC LIMIT 1",
            )
            .map_err(|e| self.err(e))?;
        let row = stmt
            .query_row([entity], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        match row {
            None => Ok(None),
            Some((t, kind, place, text)) => {
                let k = kind.parse::<EventKind>().map_err(|()| MemoryError::BadRow {
                    path: self.path.clone(),
                    row: -1,
                    kind: kind.clone(),
                })?;
                Ok(Some(Event {
                    t: SimTime(t.max(0) as u64),
                    kind: k,
                    entity: Some(EntityId::new(entity)),
                    place,
                    text,
                }))
            }
        }
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
